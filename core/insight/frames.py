"""pandas DataFrames: ``store.runs_frame()`` (one row per run) and ``run.history()`` (one row per
step or epoch), the shapes users of MLflow's ``search_runs`` and W&B's ``run.history()`` know.

pandas is optional (``pip install epochline[insight]``) and imported only here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

from ..store.reader import closest

if TYPE_CHECKING:
    from ..store.reader import RunView, Store


def _pandas() -> Any:
    try:
        import pandas
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "DataFrames need pandas: pip install 'epochline[insight]' (or pip install pandas)",
            name="pandas") from exc
    return pandas


def runs_frame(store: "Store", path: Optional[str] = None, tag: Optional[str] = None,
               status: Optional[str] = None) -> Any:
    """One row per run (oldest first): id, name, path, alias, status, reason, framework, start_time,
    end_time, duration, tags (comma separated), fingerprint, primary_metric, then one column
    ``params.<key>`` per param and ``summary.<key>`` per summary value (as MLflow's
    ``params.``/``metrics.`` columns). Non-scalar values (lists, dicts) stay Python objects."""
    pd = _pandas()
    views = store.runs(path=path, tag=tag, status=status)
    params = store.params_of([v.id for v in views])
    rows: List[Dict[str, Any]] = []
    for view in views:
        row = view.to_dict(full=False)
        row["tags"] = ",".join(row["tags"])
        from ..identity import fingerprint

        row["fingerprint"] = fingerprint(*params[view.id])
        row.update({f"params.{k}": v for k, v in params[view.id][0].items()})
        row.update({f"summary.{k}": v for k, v in view.summary.items()})
        rows.append(row)
    columns = ["id", "name", "path", "alias", "status", "reason", "framework", "host", "pid",
               "start_time", "end_time", "duration", "lost", "tags", "fingerprint", "primary_metric"]
    extra = sorted({k for r in rows for k in r if k not in columns},
                   key=lambda k: (not k.startswith("params."), k))
    return pd.DataFrame(rows, columns=columns + extra)


def history(run: "RunView", keys: Optional[Sequence[str]] = None, by: str = "step") -> Any:
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
                columns[key] = pd.Series({r["epoch"]: r["values"].get(key) for r in records
                                          if key in r["values"]}, dtype=object)
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
    series = []
    for key in wanted:
        steps: List[int] = []
        values: List[Any] = []
        for chunk in run.iter_raw(key):
            steps.extend([r[0] for r in chunk])
            values.extend([r[2] for r in chunk])
        kind = run.series_kind(key)
        column = pd.Series(values, index=pd.Index(steps, name="step"), name=key)
        column = _typed(pd, column, kind)
        series.append(column)
    if not series:
        return pd.DataFrame(index=pd.Index([], name="step", dtype="int64"))
    frame = pd.concat(series, axis=1) if len(series) > 1 else series[0].to_frame()
    frame.index.name = "step"
    return frame


def _typed(pd: Any, column: Any, kind: Optional[str]) -> Any:
    """float64 when every value is a number or NaN (None), bool for bool series, else object."""
    if kind == "bool":
        return column.map(lambda v: None if v is None else bool(v)).astype(object)
    try:
        return column.astype("float64")
    except (TypeError, ValueError):
        return column.astype(object)


def _numeric(pd: Any, frame: Any) -> Any:
    for name in frame.columns:
        try:
            frame[name] = frame[name].astype("float64")
        except (TypeError, ValueError):
            pass
    return frame
