"""Is the process that wrote a run still alive? Used to tell a running run from a crashed one."""

from __future__ import annotations

import os
from typing import Optional


def process_start(pid: int) -> Optional[float]:
    """The process's start time in clock ticks since boot (Linux), or None where unknown.

    Together with the pid it identifies a process even after the pid is reused.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    try:
        return float(fields[19])  # field 22 overall; fields[0] is field 3 (state)
    except (IndexError, ValueError):
        return None


def _state(pid: int) -> Optional[str]:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().decode("ascii", "replace").rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return None


def is_alive(pid: int, start: Optional[float]) -> bool:
    """Whether process ``pid`` (started at ``start``, if known) still runs on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    except OSError:
        return False
    state = _state(pid)
    if state in ("Z", "X"):  # zombie: killed but not yet reaped
        return False
    if start is not None:
        now_start = process_start(pid)
        if now_start is not None and now_start != start:
            return False  # the pid was reused by another process
    return True
