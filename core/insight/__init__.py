"""Use what was recorded: compare runs, aggregate seeds, DataFrames, plots, zip export/import.

Pure functions over the read API (:class:`epochline.Store` / :class:`epochline.RunView`); the CLI
and the web viewer call these, so "best", "final" and the group statistics have one definition.
Results of :func:`compare` and :func:`aggregate` are plain dicts and lists that ``json.dumps(...,
allow_nan=False)`` accepts: a statistic that is undefined (no value, one value for a std) is None, a
recorded NaN or infinity is the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"`` (as in
``epochline show --json``).
"""

from __future__ import annotations

import math
from typing import Any, Optional

__all__ = ["jsonable", "best_mode", "compare", "aggregate", "runs_frame", "history", "plot",
           "export_run", "import_run", "export_tensorboard"]


def jsonable(obj: Any) -> Any:
    """``obj`` with non-finite floats as "NaN"/"Infinity"/"-Infinity" and tuples as lists."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "NaN" if obj != obj else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj


def best_mode(key: str, primary_metric: Optional[str] = None, primary_mode: Optional[str] = None) -> str:
    """"min" or "max": the run's primary metric mode for its primary metric, else "min" for names
    ending in ``loss`` and "max" for everything else (accuracy, f1, reward, ...)."""
    if primary_metric and key == primary_metric and primary_mode in ("min", "max"):
        return str(primary_mode)
    return "min" if key.lower().endswith("loss") else "max"


def __getattr__(name: str) -> Any:
    # the functions live in their own modules, imported on first use (plot pulls in matplotlib
    # only when called, frames pandas only when called)
    modules = {"compare": "compare", "aggregate": "aggregate", "runs_frame": "frames",
               "history": "frames", "plot": "plot", "export_run": "archive", "import_run": "archive",
               "export_tensorboard": "tensorboard"}
    if name in modules:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{modules[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
