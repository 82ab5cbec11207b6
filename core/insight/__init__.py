"""Use what was recorded: compare runs, aggregate seeds, DataFrames, plots, zip export/import.

Pure functions over the read API (:class:`epochline.Store` / :class:`epochline.RunView`); the CLI
and the web viewer call these, so "best", "final" and the group statistics have one definition.
Results of :func:`compare` and :func:`aggregate` are plain dicts and lists that ``json.dumps(...,
allow_nan=False)`` accepts: a statistic that is undefined (no value, one value for a std) is None, a
recorded NaN or infinity is the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"`` (as in
``epochline show --json``).
"""

from __future__ import annotations

from typing import Any, Optional

from .._json import replace_nonfinite

__all__ = [
    "jsonable",
    "best_mode",
    "compare",
    "aggregate",
    "runs_frame",
    "history",
    "plot",
    "export_run",
    "import_run",
    "export_tensorboard",
]


def jsonable(obj: Any) -> Any:
    """``obj`` with non-finite floats as "NaN"/"Infinity"/"-Infinity" and tuples as lists (the
    project's one rule, :func:`epochline._json.replace_nonfinite`)."""
    return replace_nonfinite(obj)


def best_mode(key: str, primary_metric: Optional[str] = None, primary_mode: Optional[str] = None) -> str:
    """ "min" or "max": the run's primary metric mode for its primary metric, else "min" for names
    ending in ``loss`` and "max" for everything else (accuracy, f1, reward, ...)."""
    if primary_metric and key == primary_metric and primary_mode in ("min", "max"):
        return str(primary_mode)
    return "min" if key.lower().endswith("loss") else "max"


# imported after jsonable/best_mode, which these modules use; none imports pandas, matplotlib or
# tensorboardX before it is called
from .aggregate import aggregate  # noqa: E402
from .archive import export_run, import_run  # noqa: E402
from .compare import compare  # noqa: E402
from .frames import history, runs_frame  # noqa: E402
from .plot import plot  # noqa: E402
from .tensorboard import export_tensorboard  # noqa: E402
