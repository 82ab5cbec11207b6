"""Starting runs, the global off switch, and ending runs the user did not end.

A run the user forgets to finish is finished when the interpreter exits: ``failed`` with the
exception's type and message if an uncaught exception ended the program (``interrupted`` for
Ctrl-C), ``completed`` otherwise (its reason says ``finish()`` was not called). A process killed
outright (kill -9, OOM) cannot do that; readers then see it as ``crashed`` (see the store reader).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
import warnings
from typing import Any, Iterable, Mapping, NoReturn, Optional, Sequence, Union

from . import _sigterm
from . import events as ev
from .console import track_stdout
from .context import _start as context_start
from .context._run import name_from_params
from .dispatch import FLUSH_INTERVAL_S, MAX_QUEUE, Dispatcher
from .noop import NoOpRun
from .options import check_init_options, check_path
from .plugins import get_plugin_manager
from .procinfo import process_start
from .run import Run, exit_status
from .runinfo import RunInfo
from .store import open_backend, redact, redact_text, resolve_uri
from .store.base import Backend, StoreAway
from .store.unavailable import UnavailableBackend
from .values import flatten_params

_enabled = True
_active: set[Run] = set()
_lock = threading.Lock()
_hooks_installed = False
_uncaught: Optional[BaseException] = None

START_TIMEOUT_S = 1.0
"""The longest ``init`` waits to make a run's start durable when the store does not answer at once."""

RANK_ENV_VARS = ("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "LOCAL_RANK")


def set_enabled(enabled: bool) -> None:
    """Turn tracking off (``init`` then returns a no-op run) or back on, for the whole process."""
    global _enabled
    _enabled = bool(enabled)


def is_enabled() -> bool:
    return _enabled and os.environ.get("EPOCHLINE_DISABLED", "").strip().lower() not in (
        "1",
        "true",
        "yes",
        "on",
    )


def global_rank() -> int:
    """This process's rank in a distributed job (0 when not distributed)."""
    dist = sys.modules.get("torch.distributed")
    try:
        if dist is not None and dist.is_available() and dist.is_initialized():
            return int(dist.get_rank())
    except Exception:
        pass
    for name in RANK_ENV_VARS:
        value = os.environ.get(name)
        if value and value.strip().lstrip("-").isdigit():
            return int(value)
    return 0


def new_run_id() -> str:
    """Sortable by start time, readable, and unique enough for concurrent starts."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(4).hex()}"  # secrets.token_hex(4), without importing secrets


_clean_path = check_path


def resolve_emit(emit: Union[str, Iterable[str], None], default: Union[str, Iterable[str]] = "") -> frozenset:
    """Which line emitters print for a run: ``emit=``, else ``EPOCHLINE_EMIT``, else ``default``
    (none for plain ``init``; framework adapters pass their own default)."""
    if emit is None:
        emit = os.environ.get("EPOCHLINE_EMIT")
    if emit is None:
        emit = default
    if isinstance(emit, str):
        emit = emit.split(",")
    names = frozenset(e.strip().lower() for e in emit if e and e.strip())
    return frozenset() if names <= {"none"} else names - {"none"}


def init(
    path: str = "default",
    *,
    name: Optional[str] = None,
    alias: Optional[str] = None,
    params: Any = None,
    ignore_params: Iterable[str] = (),
    tags: Iterable[str] = (),
    store: Any = None,
    run_id: Optional[str] = None,
    framework: Optional[str] = None,
    emit: Union[str, Iterable[str], None] = None,
    default_emit: Union[str, Iterable[str]] = "",
    total_epochs: Optional[int] = None,
    accuracy_scale: str = "fraction",
    scales: Optional[Mapping[str, str]] = None,
    field_map: Optional[Mapping[str, str]] = None,
    all_ranks: bool = False,
    flush_interval: float = FLUSH_INTERVAL_S,
    max_queue: int = MAX_QUEUE,
    param_parents: Optional[Mapping[str, str]] = None,
    name_params: Sequence[str] = (),
    capture_env: bool = True,
    snapshot_code: Union[bool, str, os.PathLike[str]] = False,
    capture_console: bool = False,
    tqdm_mode: str = "smart",
    system_metrics: bool = False,
    system_interval: float = 10.0,
) -> Union[Run, NoOpRun]:
    """Start (or, with ``run_id`` of an existing run, resume) a run and return it.

    ``accuracy_scale``, ``scales`` (per metric, e.g. ``{"top1": "percent"}``) and ``field_map``
    (e.g. ``{"acc@1": "val_accuracy"}``) say how epoch records read the logged names
    (:mod:`epochline.epochs`). ``flush_interval`` (seconds between background writes) and
    ``max_queue`` (how much may wait for the writer before ``log`` waits for it) tune the
    dispatcher (:mod:`epochline.dispatch`). ``param_parents``/``name_params``: legm's parameter
    model (see ``Run.log_params``); ``capture_env``, ``snapshot_code``, ``capture_console``/
    ``tqdm_mode`` and ``system_metrics``/``system_interval``: what the run records beside its
    metrics (docs/api.md). Returns a :class:`NoOpRun` when tracking is off (``set_enabled(False)``, ``EPOCHLINE_DISABLED=1``)
    or on a non-zero rank of a distributed job (unless ``all_ranks=True``).
    """
    checked = check_init_options(
        {
            "path": path,
            "name": name,
            "alias": alias,
            "ignore_params": ignore_params,
            "tags": tags,
            "store": store,
            "run_id": run_id,
            "framework": framework,
            "emit": emit,
            "default_emit": default_emit,
            "total_epochs": total_epochs,
            "accuracy_scale": accuracy_scale,
            "scales": scales,
            "field_map": field_map,
            "flush_interval": flush_interval,
            "max_queue": max_queue,
            "param_parents": param_parents,
            "name_params": name_params,
            "capture_env": capture_env,
            "snapshot_code": snapshot_code,
            "capture_console": capture_console,
            "tqdm_mode": tqdm_mode,
            "system_metrics": system_metrics,
            "system_interval": system_interval,
        }
    )
    path, tags, ignore_params = checked["path"], checked["tags"], checked["ignore_params"]
    scales, field_map = checked["scales"], checked["field_map"]
    if not is_enabled() or (not all_ranks and global_rank() != 0):
        return NoOpRun()
    try:
        backend = open_backend(store)
    except (ValueError, TypeError):
        raise
    except Exception as exc:  # a broken store must not stop the training
        shown = redact(resolve_uri(store))
        warnings.warn(
            f"epochline: the store {shown} cannot be opened ({type(exc).__name__}: "
            f"{redact_text(str(exc), store)}); training goes on, this run's events are "
            "counted as lost",
            RuntimeWarning,
            stacklevel=2,
        )
        backend = UnavailableBackend(shown, exc)
    start_step = -1
    resumed = None
    if run_id is not None:
        resumed = _resume_point(backend, run_id)
        if resumed is not None:
            start_step = resumed["step"]
    run_id = run_id or new_run_id()
    named = name is not None or alias is not None  # a resumed run's name was printed before
    if name is None and not resumed and alias is None and name_params and params is not None:
        name = name_from_params(flatten_params(params), name_params)
        named = name is not None
    if name is None:
        name = resumed["name"] if resumed else (alias or f"{path.rsplit('/', 1)[-1]}-{run_id[-8:]}")
    if total_epochs is None and resumed:
        total_epochs = resumed["total_epochs"]
    emitters = resolve_emit(emit, default_emit)
    if emitters:
        track_stdout()  # protocol lines start at column 0 whatever the training prints
    prior_epochs = resumed["epochs"] if resumed else {}
    info = RunInfo(id=run_id, path=path, store=backend, emit=emitters, prior_epochs=prior_epochs)
    pid = os.getpid()
    import socket  # here: one name per run, not an import for every `import epochline`

    started = ev.RunStarted(
        run_id=run_id,
        wall_time=time.time(),
        name=name,
        path=path,
        alias=alias,
        tags=tuple(tags),
        host=socket.gethostname(),
        pid=pid,
        pid_start=process_start(pid),
        framework=framework,
        named=named,
        resumed=resumed is not None,
        total_epochs=total_epochs,
    )
    _write_start(backend, started)
    pm = get_plugin_manager()
    dispatcher = Dispatcher(info, pm.hook, flush_interval=flush_interval, max_queue=max_queue)
    run = Run(
        info,
        dispatcher,
        name=name,
        start_step=start_step,
        on_finish=_forget,
        accuracy_scale=accuracy_scale,
        scales=scales,
        field_map=field_map,
        total_epochs=total_epochs,
        epochs_done=max(prior_epochs, default=0),
    )
    dispatcher.put(started)  # every sink sees the start (the store writes it again: an upsert)
    run._set_name_params(name_params, auto=not named and not resumed)
    if params is not None or ignore_params or param_parents:
        run.log_params(params, ignore=ignore_params, param_parents=param_parents)
    context_start.start(
        run,
        capture_env=capture_env,
        snapshot_code=snapshot_code,
        capture_console=capture_console,
        tqdm_mode=tqdm_mode,
        system_metrics=system_metrics,
        system_interval=system_interval,
        system_start=resumed["system_step"] + 1 if resumed else 0,
    )
    with _lock:
        _active.add(run)
    _install_exit_hooks()
    return run


def _resume_point(backend: Any, run_id: str) -> Optional[dict]:
    """Where a stored run stopped, or None (a new run with this id, or a store not readable now)."""
    try:
        return backend.resume_point(run_id)
    except FileNotFoundError:  # no store yet: nothing to resume
        return None
    except Exception as exc:
        warnings.warn(
            f"epochline: run {run_id} cannot be read from the store {backend.uri} to resume "
            f"it ({type(exc).__name__}: {redact_text(str(exc), backend.uri)}); it goes on "
            "from step 0",
            RuntimeWarning,
            stacklevel=3,
        )
        return None


def _write_start(backend: Any, started: ev.RunStarted) -> None:
    """Make the run's start durable before ``init`` returns, so a process killed in its first
    second still leaves its run (read back as ``crashed``).

    Waits at most :data:`START_TIMEOUT_S`: a store that is locked, down or full then gets the start
    from the writer thread, first of all the run's events, as soon as it answers; the training
    does not wait for it. A store that refuses writes for good (read-only, corrupt) is warned
    about here, and the run is reported as not recorded at finish.
    """
    if not isinstance(backend, Backend):
        return  # a third-party backend gets the start through the queue, like every event
    try:
        backend.write([started], deadline=time.time() + START_TIMEOUT_S)
    except StoreAway as exc:
        warnings.warn(
            f"epochline: {exc}; training goes on and run {started.run_id} is kept in "
            "memory and written, start first, when the store answers (see the finish "
            "report)",
            RuntimeWarning,
            stacklevel=3,
        )
    except Exception as exc:
        warnings.warn(
            f"epochline: run {started.run_id} cannot be written to the store {backend.uri} "
            f"({type(exc).__name__}: {redact_text(str(exc), backend.uri)}); training goes "
            "on, nothing of this run will be stored",
            RuntimeWarning,
            stacklevel=3,
        )


def _forget(run: Run) -> None:
    with _lock:
        _active.discard(run)


def _finish_active(status: str, reason: Optional[str]) -> None:
    with _lock:
        runs = list(_active)
    for run in runs:
        try:
            run.finish(status, reason)
        except Exception:  # never let our exit handling mask the program's own outcome
            pass


def _excepthook(exc_type: Any, exc: BaseException, tb: Any) -> None:
    global _uncaught
    _uncaught = exc
    _finish_active(*exit_status(exc))
    _previous_excepthook(exc_type, exc, tb)


def _exit(status: Any = None) -> NoReturn:
    """``sys.exit`` as installed by epochline: remembers the status, then exits as before.

    An uncaught ``SystemExit`` reaches neither ``sys.excepthook`` nor ``atexit``, so this is how
    a run left open learns that ``sys.exit(3)`` ended the program (``failed``, reason
    ``SystemExit: 3``) rather than a normal end. ``raise SystemExit(3)`` written out is not seen.
    """
    global _exit_requested
    if threading.current_thread() is threading.main_thread():
        _exit_requested = SystemExit(status)
    _previous_exit(status)


def _at_exit() -> None:
    if _uncaught is not None:
        return
    with _lock:
        runs = list(_active)
    for run in runs:
        try:
            reason = run._unfinished_reason()
            if _exit_requested is not None:
                run.finish(*exit_status(_exit_requested))
            elif reason is not None:
                run.finish("failed", reason)
            else:
                run.finish("completed", "finish() was not called; finished at interpreter exit")
        except Exception:
            pass


_previous_excepthook = sys.excepthook
_previous_exit = sys.exit
_exit_requested: Optional[SystemExit] = None


def _install_exit_hooks() -> None:
    """Chain ``sys.excepthook`` and ``sys.exit`` (keeping whatever was there) and register
    ``atexit`` once; chain a SIGTERM handler (see :mod:`epochline._sigterm`)."""
    global _hooks_installed, _previous_excepthook, _previous_exit
    _sigterm.install(_finish_active)
    if _hooks_installed:
        return
    _hooks_installed = True
    _previous_excepthook = sys.excepthook
    sys.excepthook = _excepthook
    _previous_exit = sys.exit
    sys.exit = _exit
    atexit.register(_at_exit)
