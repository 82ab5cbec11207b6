"""``store.compare(runs)``: runs side by side, the params that differ, best and final metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Union

from ..store.reader import closest
from . import best_mode, jsonable

if TYPE_CHECKING:
    from ..store.reader import RunView, Store


def metric_summary(stats: Dict[str, Any], mode: str) -> Dict[str, Any]:
    """best/final of one series from :meth:`Store.metric_stats` (best None when no number)."""
    return {
        "best": stats["min"] if mode == "min" else stats["max"],
        "mode": mode,
        "final": stats["last"],
        "final_step": stats["last_step"],
        "count": stats["count"],
    }


def check_metrics(wanted: Optional[Sequence[str]], present: Iterable[str]) -> List[str]:
    """The metric keys to report: ``wanted`` (each must exist in some run) or all ``present``."""
    present = sorted(set(present))
    if wanted is None:
        return present
    wanted = [wanted] if isinstance(wanted, str) else list(dict.fromkeys(wanted))
    for key in wanted:
        if key not in present:
            raise KeyError(closest(key, present, "metric"))
    return wanted


def differing_params(params: Sequence[Dict[str, Any]]) -> List[str]:
    """Keys whose value is not the same in every dict (absent counts as a value)."""
    keys = sorted({k for p in params for k in p})
    return [k for k in keys if len({repr(p[k]) if k in p else "<absent>" for p in params}) > 1]


def compare(
    store: Store, runs: Iterable[Union[str, RunView]], metrics: Optional[Sequence[str]] = None
) -> Dict[str, Any]:
    """Compare runs (ids, prefixes, names, aliases, paths or RunViews; see :meth:`Store.run`).

    Returns ``{"runs": [...], "params": {"differing": [...], "same": {...}}, "metrics": [...],
    "epochs": [{"epoch": e, "values": [record or None per run]}]}``; each run entry has id, name,
    path, status, reason, start_time, duration, tags, params, summary, primary_metric, and
    ``metrics[key] = {best, mode, final, final_step, count}`` (None when the run lacks the key).
    Best is per the run's primary metric mode, else min for ``*loss``, max otherwise. Costs two
    aggregate queries plus a few small ones per run, never reading a series point by point.
    """
    views = [store.run(r) for r in ([runs] if isinstance(runs, str) else runs)]
    views = list({v.id: v for v in views}.values())
    stats = store.metric_stats([v.id for v in views])
    keys = check_metrics(metrics, (k for s in stats.values() for k in s))
    params = store.params_of([v.id for v in views])
    entries: List[Dict[str, Any]] = []
    epoch_records: List[Dict[int, Dict[str, Any]]] = []
    for view in views:
        run_stats = stats[view.id]
        entries.append(
            {
                "id": view.id,
                "name": view.name,
                "path": view.path,
                "alias": view.alias,
                "status": view.status,
                "reason": view.reason,
                "start_time": view.start_time,
                "duration": view.duration,
                "tags": view.tags,
                "params": params[view.id][0],
                "fingerprint": view.fingerprint,
                "summary": view.summary,
                "primary_metric": view.primary_metric,
                "metrics": {
                    k: metric_summary(run_stats[k], best_mode(k, view.primary_metric, view.primary_mode))
                    if k in run_stats
                    else None
                    for k in keys
                },
            }
        )
        epoch_records.append({r["epoch"]: r["values"] for r in view.epochs()})
    all_params = [e["params"] for e in entries]
    differing = differing_params(all_params)
    same = {k: v for k, v in (all_params[0].items() if all_params else ()) if k not in differing}
    epochs = sorted({e for records in epoch_records for e in records})
    return jsonable(
        {
            "runs": entries,
            "params": {"differing": differing, "same": same},
            "metrics": keys,
            "epochs": [{"epoch": e, "values": [records.get(e) for records in epoch_records]} for e in epochs],
        }
    )
