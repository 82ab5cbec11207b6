"""What the viewer shows, as JSON-ready dicts built only from the read API (``epochline.open()``).

The web app (:mod:`epochline.ui.app`) serves these as endpoints and ``epochline report`` inlines
the same dicts into one HTML file, so a page looks the same live and offline. No SQL here: every
value comes from :class:`~epochline.store.reader.Store` and :class:`~epochline.store.reader.RunView`.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from .._json import replace_nonfinite
from ..store.reader import RunView, Store
from .downsample import Envelope, plottable

__all__ = [
    "RunsIndex",
    "SeriesCache",
    "run_detail",
    "run_series",
    "histograms",
    "media_file",
    "compare",
    "groups",
    "group_bands",
    "json_safe",
    "media_hash",
    "DEFAULT_POINTS",
    "MAX_TEXTS",
]

DEFAULT_POINTS = 1000
"""Points per series when the page does not say (about one per pixel of a wide chart)."""
MAX_TEXTS = 5000
"""Text/log lines sent for a run page (the newest); a run page must not carry a 1 GB log."""
SORT_KEYS = ("name", "path", "status", "start_time", "duration", "best", "tags", "id")
FINISHED = ("completed", "failed", "interrupted")

json_safe = replace_nonfinite


def media_hash(path: Path) -> str:
    """The content hash a media file is stored under (``media/ab/<sha256><suffix>``)."""
    return Path(path).name.split(".", 1)[0]


class RunsIndex:
    """The runs table: filter, sort and page all runs of a store, cheaply enough to poll.

    The per-run extras (tags, summary) cost a query each; for a finished run they cannot change
    (a resumed run becomes ``running`` again, which changes its cache key), so they are kept
    and a poll of 10,000 runs costs one list query plus the extras of the running ones.
    """

    def __init__(self, store: Store):
        self.store = store
        self._rows: Dict[str, Tuple[tuple, Dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def row(self, run: RunView) -> Dict[str, Any]:
        """The table row of ``run`` (treat as read-only: a finished run's row is shared)."""
        key = (run.status, run.end_time, run.primary_metric, run.name, run.lost)
        with self._lock:
            cached = self._rows.get(run.id)
        if cached is not None and cached[0] == key and run.status in FINISHED:
            return cached[1]
        summary = run.summary
        best = summary.get(f"best_{run.primary_metric}") if run.primary_metric else None
        row = {
            "id": run.id,
            "name": run.name,
            "path": run.path,
            "alias": run.alias,
            "status": run.status,
            "reason": run.reason,
            "framework": run.framework,
            "start_time": run.start_time,
            "end_time": run.end_time,
            "duration": run.duration,
            "primary_metric": run.primary_metric,
            "lost": run.lost,
            "tags": run.tags,
            "best": best,
        }
        if run.status in FINISHED:
            with self._lock:
                self._rows[run.id] = (key, row)
        return row

    def page(
        self,
        path: Optional[str] = None,
        tag: Optional[str] = None,
        status: Optional[str] = None,
        q: Optional[str] = None,
        sort: str = "start_time",
        desc: bool = True,
        offset: int = 0,
        limit: int = 50,
    ) -> Dict[str, Any]:
        """One page of the filtered, sorted table, plus what the filters can offer."""
        runs = self.store.runs()
        rows = [self.row(r) for r in runs]
        paths: Dict[str, int] = {}
        tags: Dict[str, int] = {}
        statuses: Dict[str, int] = {}
        for row in rows:
            paths[row["path"]] = paths.get(row["path"], 0) + 1
            statuses[row["status"]] = statuses.get(row["status"], 0) + 1
            for t in row["tags"]:
                tags[t] = tags.get(t, 0) + 1
        if path:
            prefix = path.strip("/")
            rows = [r for r in rows if r["path"] == prefix or r["path"].startswith(prefix + "/")]
        if tag:
            rows = [r for r in rows if tag in r["tags"]]
        if status:
            rows = [r for r in rows if r["status"] == status]
        if q:
            needle = q.lower()
            rows = [
                r
                for r in rows
                if any(
                    needle in str(v).lower()
                    for v in (
                        r["name"],
                        r["path"],
                        r["id"],
                        r["alias"] or "",
                        " ".join(r["tags"]),
                        r["reason"] or "",
                    )
                )
            ]
        sort = sort if sort in SORT_KEYS else "start_time"
        keyed = [(_sort_key(r, sort), r) for r in rows]
        present = [kr for kr in keyed if kr[0][0] != 0]
        present.sort(key=lambda kr: kr[0], reverse=desc)
        # missing values last, whichever the direction
        rows = [r for _, r in present] + [r for k, r in keyed if k[0] == 0]
        offset = max(0, int(offset))
        limit = max(1, min(int(limit), 1000))
        return {
            "total": len(rows),
            "offset": offset,
            "limit": limit,
            "sort": sort,
            "desc": desc,
            "runs": rows[offset : offset + limit],
            "paths": paths,
            "tags": tags,
            "statuses": statuses,
            "store": self.store.uri,
        }


def _sort_key(row: Dict[str, Any], column: str) -> tuple:
    value = row.get(column)
    if column == "tags":
        value = ",".join(value or [])
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (0, 0.0, row["id"])
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, float(value), row["id"])
    return (2, str(value).lower(), row["id"])


def run_detail(run: RunView, max_texts: int = MAX_TEXTS) -> Dict[str, Any]:
    """Everything on a run page except the series points (fetched per chart)."""
    out = run.to_dict(full=False)
    texts = run.texts(kind=None)
    lines = [t for t in texts if t.kind != "comment"]
    out.update(
        {
            "params": run.params,
            "ignored_params": run.ignored_params,
            "fingerprint": run.fingerprint,
            "summary": run.summary,
            "epochs": run.epochs(),
            "metric_keys": run.metric_keys(),
            "histogram_keys": run.histogram_keys(),
            "plots": run.plots(),
            "images": [
                {
                    "key": i.key,
                    "step": i.step,
                    "wall_time": i.wall_time,
                    "caption": i.caption,
                    "width": i.width,
                    "height": i.height,
                    "hash": media_hash(i.path),
                }
                for i in run.images()
            ],
            "artifacts": [
                {
                    "name": a.name,
                    "size": a.size,
                    "sha256": a.sha256,
                    "source": a.source,
                    "wall_time": a.wall_time,
                    "hash": media_hash(a.path),
                }
                for a in run.artifacts()
            ],
            "texts": [
                {
                    "wall_time": t.wall_time,
                    "kind": t.kind,
                    "level": t.level,
                    "logger": t.logger,
                    "text": t.text,
                }
                for t in lines[-max_texts:]
            ],
            "texts_total": len(lines),
            "comments": [{"wall_time": t.wall_time, "text": t.text} for t in texts if t.kind == "comment"],
        }
    )
    return out


def run_series(
    run: RunView,
    keys: Optional[Iterable[str]] = None,
    points: int = DEFAULT_POINTS,
    epochs: bool = True,
    cache: Optional[SeriesCache] = None,
) -> Dict[str, Any]:
    """Per metric: downsampled ``step``, ``time`` (seconds since start) and ``value``, and with
    ``epochs`` the last value of each epoch (``{"epoch": [...], "value": [...]}``).

    About ``points`` points per series, in memory bounded by ``points`` whatever the series'
    length. The database first reduces the series to ``points // 2`` step ranges
    (:meth:`RunView.envelope`: min, max and counts per range, one pass over the points); a series of
    at most :data:`EXACT_FACTOR` x ``points`` points is then streamed through the exact min/max
    :class:`~epochline.ui.downsample.Envelope` instead, so short series keep each extreme at its
    own step. ``points <= 0`` sends every point (the chart's "full data" button); ``n`` is the
    stored count. A ``cache`` keeps the result for finished runs.
    """
    available = run.metric_keys()
    wanted = available if keys is None else [k for k in keys if k in available]
    t0 = run.start_time or 0.0
    out: Dict[str, Any] = {}
    cache = cache if cache is not None and run.status in FINISHED and points > 0 else None
    for key in wanted:
        cache_key = (run.id, run.end_time, key, points, epochs)
        hit = cache.get(cache_key) if cache is not None else None
        if hit is not None:
            out[key] = hit
            continue
        ranges = run.envelope(key, max(1, points // 2))
        count = sum(r[8] for r in ranges)
        if not ranges:
            kept: List[Tuple[int, float, Optional[float]]] = []
        elif points > 0 and count > EXACT_FACTOR * points:
            kept = _from_ranges(ranges)
        else:
            env = Envelope(ranges[0][0], ranges[-1][1], points)
            for chunk in run.iter_raw(key):
                env.add(chunk)
            kept = env.points()
        out[key] = {
            "n": count,
            "downsampled": len(kept) < count,
            "step": [p[0] for p in kept],
            "time": [round(p[1] - t0, 3) for p in kept],
            "value": [p[2] for p in kept],
        }
        if epochs:
            per_epoch = run.epoch_values(key)
            out[key]["epochs"] = {
                "epoch": list(per_epoch),
                "value": [plottable(v) for v in per_epoch.values()],
            }
        if cache is not None:
            cache.put(cache_key, out[key])
    return {"id": run.id, "status": run.status, "series": out}


class SeriesCache:
    """Downsampled series of finished runs, newest used kept (``size`` series of about 1,000
    points each: a few MB). A finished run's points cannot change, so reopening a run or a
    compare page costs no database read; a resumed run is ``running`` and never cached."""

    def __init__(self, size: int = 500):
        self.size = size
        self._items: OrderedDict[tuple, Dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> Optional[Dict[str, Any]]:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: tuple, value: Dict[str, Any]) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)


EXACT_FACTOR = 4
"""Series longer than this many times the chart's points are drawn from the database's ranges."""


def _from_ranges(ranges: Sequence[tuple]) -> List[Tuple[int, float, Optional[float]]]:
    """Two points per step range (its min and max at its first and last step), one for a range
    of a single value, a gap for a range of NaN only."""
    kept: List[Tuple[int, float, Optional[float]]] = []
    previous: Optional[float] = None
    for first, last, t_first, t_last, lo, hi, numbers, _sum, _points in ranges:
        low, high = plottable(lo), plottable(hi)
        if not numbers or low is None or high is None:
            kept.append((first, t_first, None))  # the line breaks here
            previous = None
        elif low == high or first == last:
            kept.append((first, t_first, low))
            previous = low
        else:
            # draw the range as a stroke from the end nearer to where the line comes from
            a, b = (
                (high, low)
                if previous is not None and abs(previous - high) < abs(previous - low)
                else (low, high)
            )
            kept += [(first, t_first, a), (last, t_last, b)]
            previous = b
    return kept


def histograms(run: RunView, key: str) -> List[Dict[str, Any]]:
    """Every histogram of ``key``: step, time and its buckets (limits and counts)."""
    return [{"step": step, "wall_time": t, **data} for t, step, data in run.histograms(key)]


def media_file(run: RunView, digest: str) -> Optional[Tuple[Path, Optional[str], str]]:
    """(file, download name or None for an image, kind) of the run's media with that hash.

    Only files the run's own records point at are served: the hash selects among the run's
    images and artifacts; nothing of the request becomes a path.
    """
    for image in run.images():
        if media_hash(image.path) == digest:
            return image.path, None, "image"
    for artifact in run.artifacts():
        if media_hash(artifact.path) == digest:
            return artifact.path, artifact.name, "artifact"
    return None


def compare(
    store: Store,
    runs: Sequence[RunView],
    points: int = DEFAULT_POINTS,
    epochs: bool = True,
    cache: Optional[SeriesCache] = None,
) -> Dict[str, Any]:
    """The compare page: the read API's comparison of ``runs`` plus each run's series."""
    result = store.compare(runs)
    return {
        "compare": result,
        "series": {r.id: run_series(r, points=points, epochs=epochs, cache=cache)["series"] for r in runs},
    }


def groups(
    store: Store,
    path: Optional[str] = None,
    tag: Optional[str] = None,
    by: Any = "fingerprint",
    metrics: Optional[Sequence[str]] = None,
    runs: Optional[Sequence[RunView]] = None,
) -> Dict[str, Any]:
    """The groups page: the read API's aggregate over runs of one configuration."""
    return {"aggregate": store.aggregate(path=path, tag=tag, by=by, metrics=metrics, runs=runs)}


def group_bands(
    store: Store, aggregate: Dict[str, Any], key: str, points: int = DEFAULT_POINTS
) -> Dict[str, Any]:
    """Mean ± std curves of metric ``key`` for each group of an :meth:`Store.aggregate` result.

    The database reduces every counted run of every group at once to its mean in each of
    ``points // 2`` step ranges, one grid for all groups (:meth:`Store.step_means`: one query
    per 500 runs, memory bounded by the ranges whatever the runs' lengths); each group's band is
    then :func:`epochline.insight._bands.mean_band` of its runs' curves, the function
    ``epochline.plot`` draws groups with: mean and sample std across the runs at each x (``n``
    runs there; std 0 for one run). ``runs`` counts the group's runs with a number of ``key``.
    """
    from ..insight._bands import mean_band

    groups = aggregate.get("groups", [])
    ids = [rid for group in groups for rid in group.get("runs") or []]
    curves = store.step_means(ids, key, max(1, points // 2)) if ids else {}
    out: List[Dict[str, Any]] = []
    for group in groups:
        lines = [curves[rid] for rid in group.get("runs") or [] if rid in curves]
        grid, mean, lower, upper, n = mean_band(lines) if lines else ([], [], [], [], [])
        out.append(
            {
                "label": group.get("label") or str(group.get("key")),
                "runs": len(lines),
                "step": grid,
                "mean": mean,
                "upper": upper,
                "lower": lower,
                "n": n,
            }
        )
    return {"metric": key, "groups": out}
