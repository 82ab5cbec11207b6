"""epochline: record every training run in an embedded store, and speak Kogu and PROGRESS lines.

    import epochline
    with epochline.init(path="digits/mlp", params={"lr": 0.01}) as run:
        run.log({"loss": 0.5, "accuracy": 0.81}, step=1)

Importing epochline imports no ML framework: adapters live in :mod:`epochline.integrations`.

What is public (everything else, and every module or name starting with ``_``, may change):

* the user API: :func:`init`, :class:`Run` (and :class:`NoOpRun`, what ``init`` returns when
  tracking is off), :func:`open` with :class:`Store` / :class:`RunView` for reading,
  :func:`set_enabled` / :func:`is_enabled`, :func:`new_run_id`, :func:`exit_status`, and the
  errors of :mod:`epochline.errors`;
* the plugin-author API: :data:`hookimpl`, :func:`register` / :func:`unregister`, the hooks of
  :mod:`epochline.hookspecs`, the events of :mod:`epochline.events`, :class:`RunInfo` (what a sink
  learns about a run) and :class:`StoreBackend` (what a storage backend provides).

Adapter authors use the user API plus ``run.phase()`` and ``run.epoch_record()``.
"""

from __future__ import annotations

from typing import Any

from . import events
from .errors import (
    AmbiguousRunError,
    EpochlineError,
    NoBackendError,
    PluginError,
    RunFinishedError,
    RunNotFoundError,
    StoreNotFoundError,
    StoreUnavailableError,
    StoreVersionError,
)
from .lifecycle import init, is_enabled, new_run_id, set_enabled
from .noop import NoOpRun
from .plugins import hookimpl, register, unregister
from .run import Phase, Run, exit_status
from .runinfo import RunInfo
from .store import StoreBackend
from .store.reader import RunView, Store
from .store.reader import open_store as open  # noqa: A004 - epochline.open() reads a store

__all__ = [
    # user API
    "init", "Run", "Phase", "NoOpRun", "open", "Store", "RunView", "set_enabled", "is_enabled",
    "new_run_id", "exit_status", "__version__",
    # errors
    "EpochlineError", "RunFinishedError", "RunNotFoundError", "AmbiguousRunError", "StoreNotFoundError",
    "StoreVersionError", "StoreUnavailableError", "NoBackendError", "PluginError",
    # plugin-author API
    "hookimpl", "register", "unregister", "events", "RunInfo", "StoreBackend",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":  # read once, on first use: importlib.metadata is slow to import
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("epochline")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            value = "0+unknown"
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
