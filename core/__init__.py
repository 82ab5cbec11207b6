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

from typing import TYPE_CHECKING, Any

from . import errors as _errors  # a few small classes, no imports: loaded at once
from .errors import *  # noqa: F403 - the errors are public under their own names

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time the names load on first use
    from . import events
    from .insight.plot import plot
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
    "init",
    "Run",
    "Phase",
    "NoOpRun",
    "open",
    "Store",
    "RunView",
    "set_enabled",
    "is_enabled",
    "new_run_id",
    "exit_status",
    "plot",
    "__version__",  # noqa: F405 - read from the package metadata on first use (__getattr__)
    # plugin-author API
    "hookimpl",
    "register",
    "unregister",
    "events",
    "RunInfo",
    "StoreBackend",
]
__all__ += _errors.__all__  # the errors of epochline.errors, under their own names

# Where each public name lives. ``import epochline`` loads none of these modules (a script, and
# every CLI call, would otherwise pay for msgspec, pluggy and the store before doing anything);
# each loads on first use of a name from it, e.g. when ``epochline.init`` is looked up.
_LAZY = {
    "events": (".events", None),
    **{name: (".lifecycle", name) for name in ("init", "is_enabled", "new_run_id", "set_enabled")},
    "NoOpRun": (".noop", "NoOpRun"),
    **{name: (".plugins", name) for name in ("hookimpl", "register", "unregister")},
    **{name: (".run", name) for name in ("Phase", "Run", "exit_status")},
    "RunInfo": (".runinfo", "RunInfo"),
    "StoreBackend": (".store", "StoreBackend"),
    "RunView": (".store.reader", "RunView"),
    "Store": (".store.reader", "Store"),
    "open": (".store.reader", "open_store"),
    "plot": (".insight.plot", "plot"),  # matplotlib is imported only when it plots
}


def __getattr__(name: str) -> Any:
    value: Any
    if name == "__version__":  # importlib.metadata is slow to import: read on first use
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("epochline")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            value = "0+unknown"
    elif name in _LAZY:
        from importlib import import_module

        module, attr = _LAZY[name]
        value = import_module(module, __name__)
        if attr is not None:
            value = getattr(value, attr)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later lookups are plain module attributes
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(__all__))
