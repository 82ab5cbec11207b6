"""Checkpoint files a framework wrote -> run artifacts, and the best checkpoint per monitor.

All three adapters store checkpoints the same way, so the rules live here once: a file (or a
checkpoint folder) is copied into the store at most once per version of it (its mtime), so a
checkpoint announced again (a later stage, a second callback, a framework that saves twice at the
last step) is not copied twice; and the best file of each monitoring callback is remembered per
monitor, where a periodic callback's latest file (monitor ``""``) never replaces it. Which files a
framework's checkpoint callback wrote is the adapter's (or its framework module's) business; the
summary keys each adapter writes are documented per framework and stay in the adapter.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, Optional, Tuple

__all__ = ["Checkpoints"]


class Checkpoints:
    """The checkpoints one run has seen: what was stored (path -> (mtime, stored path)) and the best
    file per monitor (monitor -> (absolute path, score))."""

    def __init__(self) -> None:
        self.stored: Dict[str, Tuple[float, Optional[str]]] = {}
        self.best: Dict[str, Tuple[str, Optional[float]]] = {}
        self.last: Optional[str] = None  # the last path stored or noted

    def store(self, run: Any, path: Any, name: Optional[str] = None) -> Optional[str]:
        """Copy ``path`` into the run's store as artifact ``name`` unless this version of it was
        copied already; the stored path (None if ``path`` is gone or could not be stored)."""
        path = os.path.abspath(os.fspath(path))
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            return None
        self.last = path
        done = self.stored.get(path)
        if done is not None and done[0] == mtime:
            return done[1]
        stored = run.log_artifact(path, name=name)
        self.stored[path] = (mtime, stored)
        return stored

    def saved(self, run: Any, path: str, *, copy: bool, logger: str) -> bool:
        """A checkpoint the framework says it saved at ``path``: its path recorded as a text
        record (the files stay where they are unless ``copy``), or a WARNING record when it is not
        there. False for the same path again (some frameworks announce the last one twice)."""
        if path == self.last:
            return False
        if not os.path.exists(path):
            run.log_text(f"checkpoint not found at {path}", level="WARNING", logger=logger)
            return False
        self.last = path
        run.log_text(f"checkpoint saved: {path}", logger=logger)
        if copy:
            self.store(run, path, name=os.path.basename(path))
        return True

    def store_newest(self, run: Any, paths: Iterable[Any]) -> Optional[Tuple[str, Optional[str]]]:
        """Store the newest (by mtime) of ``paths`` that exist: (its absolute path, stored path),
        or None when none exists (a checkpoint callback that wrote nothing, a wrong path)."""
        files = [os.path.abspath(os.fspath(p)) for p in paths if os.path.exists(p)]
        if not files:
            return None
        newest = max(files, key=os.path.getmtime)
        return newest, self.store(run, newest)

    def note_best(self, monitor: Optional[str], path: Any, score: Any = None) -> None:
        """The best file of the callback watching ``monitor`` (None or ``""``: a periodic one)."""
        self.best[monitor or ""] = (os.path.abspath(os.fspath(path)), None if score is None else float(score))

    def monitored(self) -> Dict[str, Tuple[str, Optional[float]]]:
        """The best of each monitoring callback; only when there is none, the periodic latest."""
        return {m: best for m, best in self.best.items() if m} or dict(self.best)

    def best_summary(self) -> Dict[str, Any]:
        """The run summary of the best checkpoint (a monitoring callback's, never a periodic
        one's latest file when there is one): ``best_checkpoint`` and its score, and with several
        monitoring callbacks each one's as ``best_checkpoints.<monitor>``."""
        monitored = self.monitored()
        if not monitored:
            return {}
        (path, score), *_ = monitored.values()
        summary: Dict[str, Any] = {"best_checkpoint": path, "best_checkpoint_score": score}
        if len(monitored) > 1:
            for monitor, (other, value) in monitored.items():
                summary[f"best_checkpoints.{monitor}"] = other
                summary[f"best_checkpoints.{monitor}_score"] = value
        return summary
