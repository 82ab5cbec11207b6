"""``store.aggregate()``: runs of one configuration (e.g. seeds) grouped, with statistics.

A group is the runs that share the parameter fingerprint (params marked ``ignore_params``, e.g.
the seed, do not count) or, with ``by=["lr", "model"]``, the same values of the named params. For
each group and metric: n, mean, std, standard error, 95 % Student-t interval, min and max of the
best and of the final value of each run. Only runs with ``status`` (default ``completed``) count;
the others of the group are listed under ``excluded`` rather than mixed in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Union

from ..events import dumps_value
from ..identity import fingerprint
from . import best_mode, jsonable
from ._stats import describe
from .compare import check_metrics, differing_params

if TYPE_CHECKING:
    from ..store.reader import RunView, Store


def aggregate(
    store: Store,
    path: Optional[str] = None,
    tag: Optional[str] = None,
    by: Union[str, Sequence[str]] = "fingerprint",
    metrics: Optional[Sequence[str]] = None,
    status: Optional[str] = "completed",
    runs: Optional[Iterable[Union[str, RunView]]] = None,
) -> Dict[str, Any]:
    """Group runs and describe each metric's best and final values per group.

    ``runs`` (refs or paths, see :meth:`Store.select`) replaces the ``path``/``tag`` selection.
    ``status=None`` counts every run. Returns ``{"by", "status", "metrics", "groups": [{"key",
    "label", "params", "runs", "excluded", "metrics": {key: {"mode", "best": stats, "final":
    stats}}}]}`` where stats is ``{n, mean, std, sem, ci: [lo, hi], min, max, dropped}`` (see
    :func:`epochline.insight._stats.describe`); groups are ordered by first start time. Cost:
    a few aggregate queries per 500 runs, independent of the number of points.
    """
    views = store.select(runs) if runs is not None else store.runs(path=path, tag=tag)
    if tag and runs is not None:
        views = [v for v in views if tag in v.tags]
    names = None if by == "fingerprint" else ([by] if isinstance(by, str) else list(by))
    params = store.params_of([v.id for v in views])
    groups: Dict[str, Dict[str, Any]] = {}
    for view in views:
        values, ignored = params[view.id]
        if names is None:
            key: Any = fingerprint(values, ignored)
            common = {k: v for k, v in values.items() if k not in set(ignored)}
        else:
            key = {n: values.get(n) for n in names}
            common = key
        group = groups.setdefault(dumps_value(key), {"key": key, "params": common, "members": []})
        group["members"].append(view)
    counted_ids = [
        v.id for g in groups.values() for v in g["members"] if status is None or v.status == status
    ]
    views_by_id = {v.id: v for v in views}

    def extreme(run_id: str, key: str) -> str:
        view = views_by_id[run_id]
        return best_mode(key, view.primary_metric, view.primary_mode)

    stats = store.metric_stats(counted_ids, extreme=extreme)
    keys = check_metrics(metrics, (k for s in stats.values() for k in s))
    differing = differing_params([g["params"] for g in groups.values()])
    out: List[Dict[str, Any]] = []
    for group in groups.values():
        members = group["members"]
        counted = [v for v in members if status is None or v.status == status]
        per_metric: Dict[str, Any] = {}
        for key in keys:
            modes = {best_mode(key, v.primary_metric, v.primary_mode) for v in counted} or {best_mode(key)}
            mode = modes.pop() if len(modes) == 1 else "mixed"
            best, final = [], []
            for view in counted:
                s = stats[view.id].get(key)
                if s is None:
                    continue
                run_mode = best_mode(key, view.primary_metric, view.primary_mode)
                best.append(s["min"] if run_mode == "min" else s["max"])
                final.append(s["last"])
            per_metric[key] = {"mode": mode, "best": describe(best), "final": describe(final)}
        common = group["params"]
        label = ", ".join(f"{k}={common.get(k)}" for k in differing if k in common) or (
            str(group["key"]) if names is None else ", ".join(f"{k}={v}" for k, v in group["key"].items())
        )
        out.append(
            {
                "key": group["key"],
                "label": label,
                "params": common,
                "runs": [v.id for v in counted],
                "excluded": [
                    {"id": v.id, "status": v.status, "reason": v.reason} for v in members if v not in counted
                ],
                "metrics": per_metric,
            }
        )
    return jsonable(
        {"by": "fingerprint" if names is None else names, "status": status, "metrics": keys, "groups": out}
    )
