"""pandas DataFrames: ``store.runs_frame()`` (one row per run) and ``run.history()`` (one row per
step or epoch), the shapes users of MLflow's ``search_runs`` and W&B's ``run.history()`` know.

pandas is optional (``pip install epochline[insight]``) and imported only here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

from ..identity import fingerprint
from ..store.reader import closest

if TYPE_CHECKING:
    from ..store.reader import RunView, Store


def _pandas() -> Any:
    try:
        import pandas
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "DataFrames need pandas: pip install 'epochline[insight]' (or pip install pandas)", name="pandas"
        ) from exc
    return pandas


def runs_frame(
    store: Store, path: Optional[str] = None, tag: Optional[str] = None, status: Optional[str] = None
) -> Any:
    """One row per run (oldest first): id, name, path, alias, status, reason, framework, start_time,
    end_time, duration, tags (comma separated), fingerprint, primary_metric, then one column
    ``params.<key>`` per param, ``metrics.<key>`` per metric (its final value: the value at its
    last step) and ``summary.<key>`` per summary value, as MLflow's ``search_runs`` columns.
    Non-scalar values (lists, dicts) stay Python objects. Final values are index lookups, so the
    frame costs no pass over the points."""
    pd = _pandas()
    views = store.runs(path=path, tag=tag, status=status)
    params = store.params_of([v.id for v in views])
    finals = store.metric_stats([v.id for v in views], extreme=lambda run_id, key: None)
    rows: List[Dict[str, Any]] = []
    for view in views:
        row = view.to_dict(full=False)
        row["tags"] = ",".join(row["tags"])
        row["fingerprint"] = fingerprint(*params[view.id])
        row.update({f"params.{k}": v for k, v in params[view.id][0].items()})
        row.update({f"metrics.{k}": s["last"] for k, s in finals[view.id].items()})
        row.update({f"summary.{k}": v for k, v in view.summary.items()})
        rows.append(row)
    columns = [
        "id",
        "name",
        "path",
        "alias",
        "status",
        "reason",
        "framework",
        "host",
        "pid",
        "start_time",
        "end_time",
        "duration",
        "lost",
        "tags",
        "fingerprint",
        "primary_metric",
    ]
    order = {"params": 0, "metrics": 1, "summary": 2}
    extra = sorted(
        {k for r in rows for k in r if k not in columns}, key=lambda k: (order.get(k.split(".", 1)[0], 3), k)
    )
    return pd.DataFrame(rows, columns=columns + extra)


def history(run: RunView, keys: Optional[Sequence[str]] = None, by: str = "step") -> Any:
    """One row per step (``by="step"``, index ``step``) or per epoch (``by="epoch"``, index
    ``epoch``), one column per metric; a metric not logged at a row is NaN.

    By step, series are read in chunks straight into arrays (no Python tuple per point). By
    epoch, the run's epoch records (``end_epoch``) give their fields (accuracies in percent, as
    recorded), and other metrics logged with ``epoch=`` give their last value of each epoch.
    Unknown keys raise :class:`KeyError` naming the closest existing ones.
    """
    pd = _pandas()
    if by not in ("step", "epoch"):
        raise ValueError(f"by must be 'step' or 'epoch', got {by!r}")
    available = run.metric_keys()
    if by == "epoch":
        records = run.epochs()
        fields = list(dict.fromkeys(k for r in records for k in r["values"]))
        wanted = list(keys) if keys is not None else fields + [k for k in available if k not in fields]
        for key in wanted:
            if key not in fields and key not in available:
                raise KeyError(closest(key, fields + available, "metric"))
        columns: Dict[str, Any] = {}
        for key in wanted:
            if key in fields:
                columns[key] = pd.Series(
                    {r["epoch"]: r["values"].get(key) for r in records if key in r["values"]}, dtype=object
                )
            else:
                values = run.epoch_values(key)
                if values or keys is not None:
                    columns[key] = pd.Series(values, dtype=object)
        frame = pd.DataFrame(columns)
        frame = _numeric(pd, frame)
        frame.index.name = "epoch"
        return frame.sort_index()
    wanted = list(keys) if keys is not None else available
    for key in wanted:
        if key not in available:
            raise KeyError(closest(key, available, "metric"))
    import numpy as np

    series = []
    for key in wanted:
        kind = run.series_kind(key)
        step_parts: List[Any] = []
        value_parts: List[Any] = []
        numeric = kind != "bool"
        for chunk in run.iter_raw(key):
            step_parts.append(np.fromiter((r[0] for r in chunk), dtype=np.int64, count=len(chunk)))
            raw = [r[2] for r in chunk]
            if numeric:
                try:  # None (a stored NaN) becomes NaN; a text value makes the column object
                    value_parts.append(np.array(raw, dtype=np.float64))
                    continue
                except (TypeError, ValueError):
                    numeric = False
                    value_parts = [np.array(list(p), dtype=object) for p in value_parts]
            value_parts.append(
                np.array(
                    [None if v is None else (bool(v) if kind == "bool" else v) for v in raw], dtype=object
                )
            )
        steps = np.concatenate(step_parts) if step_parts else np.array([], dtype=np.int64)
        column = np.concatenate(value_parts) if value_parts else np.array([], dtype=np.float64)
        series.append(pd.Series(column, index=pd.Index(steps, name="step"), name=key))
    if not series:
        return pd.DataFrame(index=pd.Index([], name="step", dtype="int64"))
    frame = pd.concat(series, axis=1) if len(series) > 1 else series[0].to_frame()
    frame.index.name = "step"
    return frame


def _numeric(pd: Any, frame: Any) -> Any:
    for name in frame.columns:
        try:
            frame[name] = frame[name].astype("float64")
        except (TypeError, ValueError):
            pass
    return frame
