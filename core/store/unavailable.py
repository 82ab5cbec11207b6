"""Stands in for a store that could not be opened, so the training runs on and losses are counted."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence, Set

from ..errors import StoreUnavailableError


class UnavailableBackend:
    def __init__(self, uri: str, error: BaseException):
        self.uri = uri
        self.error = error
        self.recorded: Set[str] = set()
        """Always empty: a run on this store is reported as not recorded at finish."""

    @property
    def media_root(self) -> Path:
        """Images and artifacts fail like every other write (warned once, counted as lost)."""
        raise StoreUnavailableError(f"store {self.uri} is unavailable: {self.error}")

    def write(self, events: Sequence[Any], deadline: Optional[float] = None) -> None:
        raise StoreUnavailableError(f"store {self.uri} is unavailable: {self.error}")

    def resume_point(self, run_id: str) -> Optional[dict]:
        return None

    def close(self) -> None:
        pass
