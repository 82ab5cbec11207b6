"""epochline: record every training run in an embedded store, and speak Kogu and PROGRESS lines.

    import epochline
    with epochline.init(path="digits/mlp", params={"lr": 0.01}) as run:
        run.log({"loss": 0.5, "accuracy": 0.81}, step=1)

Importing epochline imports no ML framework: adapters live in :mod:`epochline.integrations`.
"""

from __future__ import annotations

from . import events
from .errors import RunFinishedError
from .lifecycle import init, is_enabled, new_run_id, set_enabled
from .noop import NoOpRun
from .plugins import hookimpl, register, unregister
from .run import Run, exit_status
from .store.reader import RunView, Store, open_store as open

__version__ = "0.1.0"

__all__ = [
    "init", "new_run_id", "open", "plot", "register", "unregister", "hookimpl", "set_enabled", "is_enabled", "Run",
    "NoOpRun", "RunView", "Store", "RunFinishedError", "events", "exit_status", "__version__",
]


def __getattr__(name: str):
    # epochline.plot lives in epochline.insight (imported on first use, matplotlib when called)
    if name == "plot":
        from .insight.plot import plot

        return plot
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
