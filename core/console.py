"""Protocol lines on stdout, each whole and at column 0, whatever else writes to stdout.

The line emitters print from the dispatcher thread while the training thread prints too (the
transformers Trainer's ``{'loss': ...}`` dicts). ``print(x)`` is two writes, ``x`` then ``"\\n"``:
a protocol line written between them was glued to the end of the Trainer's line, and consumers
(AiManage, Kogu) read lines only from column 0. So the first protocol line wraps ``sys.stdout`` in
a :class:`LineTracker` that passes every call through and remembers, under one lock, whether the
last text written ended a line; :func:`write_line` then starts with a newline when it did not, and
writes the line in one call. (The Trainer's own pending ``"\\n"`` then ends an empty line.)
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Iterable

_lock = threading.RLock()


class LineTracker:
    """A pass-through wrapper of a text stream that knows whether the last write ended a line."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.at_line_start = True

    def write(self, text: str) -> int:
        with _lock:
            written = self._stream.write(text)
            if text:
                self.at_line_start = text.endswith("\n")
            return written

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __repr__(self) -> str:
        return f"<epochline.console.LineTracker of {self._stream!r}>"


def track_stdout() -> Any:
    """Wrap the current ``sys.stdout`` in a :class:`LineTracker` (once; returns it, or None when
    there is no stdout). ``init`` calls it for a run with line emitters, before the training
    prints anything."""
    with _lock:
        out = sys.stdout
        if out is None:  # pythonw / closed stdout: nothing to print to
            return None
        if not isinstance(out, LineTracker):
            out = sys.stdout = LineTracker(out)
        return out


def write_line(line: str) -> None:
    """Write one protocol line to the current ``sys.stdout``: whole, at column 0, flushed."""
    with _lock:
        out = track_stdout()  # stdout may have been replaced since init (pytest's capture does)
        if out is None:
            return
        out.write(line + "\n" if out.at_line_start else "\n" + line + "\n")
        out.flush()
