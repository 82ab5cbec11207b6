"""The ``logging`` handler of :meth:`epochline.Run.logging_handler` (its own module: importing
``logging`` is left to the runs that use it)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from .run import Run


class RunLogHandler(logging.Handler):
    def __init__(self, run: Run, level: int = logging.INFO, fmt: Optional[str] = None):
        super().__init__(level)
        self._run = run
        if fmt:
            self.setFormatter(logging.Formatter(fmt))

    def emit(self, record: logging.LogRecord) -> None:
        if self._run.finished:
            return
        try:
            self._run.log_text(self.format(record), level=record.levelname, logger=record.name)
        except Exception:
            self.handleError(record)
