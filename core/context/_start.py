"""What ``init`` starts for issue 17: environment capture, code snapshot, console, system sampler.

The environment and the code snapshot are taken once, in ``init`` itself (a few milliseconds;
``git`` is bounded by a short timeout): no thread outlives a run that is never finished, and the
records are queued before the training's first event. The console capture and the system
sampler run until the run finishes; ``finish`` stops them before the run's last events are
dispatched. A failure in any of them warns once and the training goes on.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any, Mapping

from .. import events as ev
from ._limits import SYSTEM_INTERVAL_S, TQDM_MODES


def check_options(options: Mapping[str, Any]) -> None:
    """Check the context keywords present in ``options`` (``init``'s or an adapter constructor's),
    raising at the call that is wrong: before anything is started."""
    for key in ("capture_env", "capture_console", "system_metrics"):
        if key in options and type(options[key]) is not bool:
            raise TypeError(f"{key} must be True or False, got {options[key]!r}")
    if "tqdm_mode" in options or "system_interval" in options or "snapshot_code" in options:
        check(
            options.get("tqdm_mode", "smart"),
            options.get("system_interval", SYSTEM_INTERVAL_S),
            options.get("snapshot_code", False),
        )
    names = options.get("name_params", ())
    if isinstance(names, str):
        names = (names,)
    for key in names:
        if type(key) is not str or not key:
            raise TypeError(f"name_params must be parameter names, got {key!r}")
    parents = options.get("param_parents")
    if parents is not None and (
        not isinstance(parents, Mapping)
        or not all(type(k) is str and type(v) is str and k and v for k, v in parents.items())
    ):
        raise TypeError(
            f"param_parents must map child -> parent names, e.g. {{'momentum': 'optimizer'}}, got {parents!r}"
        )


def check(tqdm_mode: str, system_interval: float, snapshot_code: Any) -> None:
    """Raise at ``init`` for options that cannot work (before anything is started)."""
    if not isinstance(snapshot_code, (bool, str, os.PathLike)) and snapshot_code is not None:
        raise TypeError(f"snapshot_code must be True/False or a folder path, got {snapshot_code!r}")
    if tqdm_mode not in TQDM_MODES:
        raise ValueError(f"tqdm_mode must be one of {', '.join(TQDM_MODES)}; got {tqdm_mode!r}")
    if (
        isinstance(system_interval, bool)
        or not isinstance(system_interval, (int, float))
        or not system_interval > 0
    ):
        raise ValueError(f"system_interval must be a positive number of seconds, got {system_interval!r}")


def _store_dirs(run: Any) -> list:
    """The store's own folders, left out of the code snapshot."""
    out = []
    for attr in ("directory", "media_root"):
        try:
            value = getattr(run._info.store, attr, None)
        except OSError:  # an unavailable store
            value = None
        if value is not None:
            out.append(Path(value))
    return out


def _once(run: Any, capture_env: bool, snapshot_code: Any) -> None:
    from . import _code, _env

    run_id, put = run.id, run._put
    if capture_env:
        try:
            put(ev.Record(run_id=run_id, wall_time=time.time(), kind="env", name="env", data=_env.capture()))
        except Exception as exc:
            run._lose(("env", type(exc).__name__), f"epochline: environment not captured: {exc}")
    if snapshot_code:
        root = os.getcwd() if snapshot_code is True else snapshot_code
        try:
            record, stored = _code.snapshot(root, run._info.store.media_root, _store_dirs(run))
        except Exception as exc:
            run._lose(("code", type(exc).__name__), f"epochline: code snapshot not stored: {exc}")
            return
        if stored is not None:
            put(
                ev.Artifact(
                    run_id=run_id,
                    wall_time=time.time(),
                    name="code.zip",
                    media=stored[0],
                    size=stored[1],
                    sha256=stored[2],
                    source=record["root"],
                )
            )
        else:
            warnings.warn(
                f"epochline: code snapshot not stored: {record['refused']}", RuntimeWarning, stacklevel=2
            )
        put(ev.Record(run_id=run_id, wall_time=time.time(), kind="code", name="code", data=record))


def start(
    run: Any,
    *,
    capture_env: bool = True,
    snapshot_code: Any = False,
    capture_console: bool = False,
    tqdm_mode: str = "smart",
    system_metrics: bool = False,
    system_interval: float = SYSTEM_INTERVAL_S,
    system_start: int = 0,
) -> None:
    """Start what was asked for on ``run`` and register how each one stops at finish."""
    if capture_env or snapshot_code:
        _once(run, capture_env, snapshot_code)
    if capture_console:
        from . import _console

        run._on_finish_context(_console.capture(_console.recorder(run._put, run.id), tqdm_mode))
    if system_metrics:
        from . import _system

        sampler = _system.Sampler(run._put, run.id, system_interval, system_start).start()
        run._on_finish_context(sampler.stop)
