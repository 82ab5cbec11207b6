"""The read API: runs, their params, metrics as ``(wall_time, step, value)``, media and status.

A run whose process died without finishing (kill -9, OOM, power loss) is reported as ``crashed``:
on the same host when its process (pid and start time) is gone, elsewhere when its heartbeat is
older than :data:`STALE_AFTER_S`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from .. import events as ev
from ..errors import AmbiguousRunError, RunNotFoundError
from ..identity import fingerprint
from ..procinfo import is_alive
from . import media_path, open_backend
from .context import ContextReads

STALE_AFTER_S = 120.0
_RUN_COLUMNS = (
    "id, name, path, alias, framework, status, reason, host, pid, pid_start, "
    "start_time, end_time, heartbeat, lost, primary_metric, primary_mode"
)
CHUNK_POINTS = 50_000
"""Points per chunk of :meth:`RunView.iter_metrics`: what a reader holds in memory at once."""
_ENVELOPE_GROUPED = 100
"""RunView.envelope groups a series of up to this many steps per bucket in one query (below it
the per-bucket queries cost more in round trips than the grouped sort)."""
_IN_BATCH = 500
"""Ids per ``IN (...)`` list, well below every backend's limit on bound parameters."""


def closest(word: str, choices: Iterable[str], what: str) -> str:
    """A sentence naming ``word`` as unknown and the closest of ``choices`` (or all of few)."""
    choices = sorted(set(choices))
    import difflib

    near = difflib.get_close_matches(word, choices, n=3, cutoff=0.5)
    if near:
        hint = "closest: " + ", ".join(near)
    elif choices and len(choices) <= 10:
        hint = "there are: " + ", ".join(choices)
    elif choices:
        hint = f"{len(choices)} exist, e.g. " + ", ".join(choices[:5])
    else:
        hint = f"there are no {what}s"
    return f"no {what} {word!r} ({hint})"


def _number(read: Any, kind: int, value: Any) -> Any:
    return None if value is None or isinstance(value, str) else read(kind, value)


def _like_prefix(text: str) -> str:
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


@dataclass(frozen=True)
class ImageRecord:
    key: str
    step: Optional[int]
    wall_time: float
    path: Path
    caption: Optional[str]
    width: int
    height: int


@dataclass(frozen=True)
class ArtifactRecord:
    name: str
    wall_time: float
    path: Path
    size: int
    sha256: str
    source: str


@dataclass(frozen=True)
class TextRecord:
    wall_time: float
    kind: str
    level: Optional[str]
    logger: Optional[str]
    text: str


def effective_status(
    status: str,
    host: Optional[str],
    pid: Optional[int],
    pid_start: Optional[float],
    heartbeat: Optional[float],
    now: Optional[float] = None,
) -> Tuple[str, Optional[str]]:
    """('running' or 'crashed', reason) for a run stored as running."""
    if status != "running":
        return status, None
    now = time.time() if now is None else now
    last = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(heartbeat or 0))
    import socket

    if host == socket.gethostname() and pid:
        if is_alive(int(pid), pid_start):
            return "running", None
        return "crashed", f"process {pid} on {host} ended without finishing (last sign of life {last})"
    if heartbeat is None or now - heartbeat > STALE_AFTER_S:
        return "crashed", f"no heartbeat from {host}:{pid} since {last}"
    return "running", None


class RunView(ContextReads):
    """One stored run, read lazily."""

    def __init__(self, store: Store, row: tuple):
        self._store = store
        (
            self.id,
            self.name,
            self.path,
            self.alias,
            self.framework,
            stored_status,
            stored_reason,
            self.host,
            self.pid,
            pid_start,
            self.start_time,
            self.end_time,
            self.heartbeat,
            self.lost,
            self.primary_metric,
            self.primary_mode,
        ) = row
        self.status, reason = effective_status(stored_status, self.host, self.pid, pid_start, self.heartbeat)
        self.reason = reason or stored_reason

    def __repr__(self) -> str:
        return f"<RunView {self.id} {self.path} {self.status}>"

    def _q(self, sql: str, *params: Any) -> List[tuple]:
        return self._store.backend.query(sql, (self.id,) + params)

    @property
    def tags(self) -> List[str]:
        return [r[0] for r in self._q("SELECT tag FROM tags WHERE run_id = ? ORDER BY tag")]

    @property
    def params(self) -> Dict[str, Any]:
        rows = self._q("SELECT key, value FROM params WHERE run_id = ? ORDER BY key")
        return {k: ev.loads_value(v) for k, v in rows}

    @property
    def ignored_params(self) -> List[str]:
        return [r[0] for r in self._q("SELECT key FROM params WHERE run_id = ? AND counts = 0")]

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.params, self.ignored_params)

    @property
    def summary(self) -> Dict[str, Any]:
        rows = self._q("SELECT key, value FROM summary WHERE run_id = ? ORDER BY key")
        return {k: ev.loads_value(v) for k, v in rows}

    @property
    def duration(self) -> Optional[float]:
        end = self.end_time or self.heartbeat
        return None if end is None or self.start_time is None else max(0.0, end - self.start_time)

    def metric_keys(self) -> List[str]:
        return [r[0] for r in self._q("SELECT key FROM series WHERE run_id = ? ORDER BY key")]

    def metrics(
        self, key: str, start: Optional[int] = None, stop: Optional[int] = None
    ) -> List[Tuple[float, int, Any]]:
        """``[(wall_time, step, value), ...]`` ordered by step (one value per step: the last logged).

        ``start``/``stop`` select steps ``start <= step < stop`` in the database, so a window of a
        long run costs only that window; for a whole long series prefer :meth:`iter_metrics`.
        An unknown key gives ``[]``.
        """
        out: List[Tuple[float, int, Any]] = []
        for chunk in self.iter_metrics(key, start, stop):
            out.extend(chunk)
        return out

    def iter_metrics(
        self,
        key: str,
        start: Optional[int] = None,
        stop: Optional[int] = None,
        chunk_size: int = CHUNK_POINTS,
    ) -> Iterator[List[Tuple[float, int, Any]]]:
        """Chunks (lists) of ``(wall_time, step, value)`` in step order, at most ``chunk_size`` each.

        Memory stays bounded by the chunk whatever the length of the series: each chunk is one
        indexed range query (``step > last step of the previous chunk``), so no cursor or
        transaction is held open between chunks and a writer is never kept waiting.
        """
        series = self._store._series_ids(self.id).get(key)
        if series is None:
            return
        kind = series[1]
        read = self._store.backend.read_point
        for rows in self.iter_raw(key, start, stop, chunk_size):
            yield [(t, s, read(kind, v)) for s, t, v in rows]

    def iter_raw(
        self,
        key: str,
        start: Optional[int] = None,
        stop: Optional[int] = None,
        chunk_size: int = CHUNK_POINTS,
    ) -> Iterator[List[Tuple[int, float, Any]]]:
        """Like :meth:`iter_metrics` but the stored form ``(step, wall_time, value)``: NaN as None,
        bools as 0/1 (see :meth:`series_kind`). For bulk readers (frames, export, plots) that
        convert whole columns at once instead of one value at a time."""
        series = self._store._series_ids(self.id).get(key)
        if series is None:
            return
        backend = self._store.backend
        columns = backend.POINT_COLUMNS.replace("m.", "")
        two = "," in columns  # a number and a text column (PostgreSQL)
        lo = start
        while True:
            where, params = ["series = ?"], [series[0]]
            if lo is not None:
                where.append("step >= ?")
                params.append(int(lo))
            if stop is not None:
                where.append("step < ?")
                params.append(int(stop))
            rows = backend.query(
                f"SELECT step, wall_time, {columns} FROM metrics WHERE "
                + " AND ".join(where)
                + " ORDER BY step LIMIT ?",
                params + [int(chunk_size)],
            )
            if not rows:
                return
            if two:
                rows = [(s, t, v if x is None else x) for s, t, v, x in rows]
            yield rows
            if len(rows) < chunk_size:
                return
            lo = rows[-1][0] + 1

    def series_kind(self, key: str) -> Optional[str]:
        """``"number"``, ``"bool"`` (stored 0/1) or None for an unknown key."""
        series = self._store._series_ids(self.id).get(key)
        return None if series is None else ("bool" if series[1] == 1 else "number")

    def epoch_values(self, key: str) -> Dict[int, Any]:
        """``{epoch: last value of metric key logged in that epoch}``, for points logged with
        ``epoch=`` (one aggregate query; no point is read that is not returned)."""
        series = self._store._series_ids(self.id).get(key)
        if series is None:
            return {}
        backend = self._store.backend
        rows = backend.query(
            f"SELECT st.epoch, {backend.POINT_COLUMNS} FROM metrics m JOIN steps st "
            "ON st.run_id = ? AND st.step = m.step WHERE m.series = ? AND m.step IN "
            "(SELECT MAX(m2.step) FROM metrics m2 JOIN steps s2 ON s2.run_id = ? AND s2.step = m2.step "
            "WHERE m2.series = ? GROUP BY s2.epoch) ORDER BY st.epoch",
            (self.id, series[0], self.id, series[0]),
        )
        return {int(r[0]): backend.read_point(series[1], *r[1:]) for r in rows}

    def envelope(
        self, key: str, buckets: int
    ) -> List[Tuple[int, int, float, float, Any, Any, int, float, int]]:
        """The series ``key`` reduced by the database to ``buckets`` equal step ranges: per
        non-empty range ``(first step, last step, wall_time at the first step, wall_time at the
        last step, min, max, count of numbers, their sum, count of points)`` in step order (NaN
        is a point but not a number; min/max None when a range has only NaN).

        A chart of a 10 M-point series reads ``buckets`` rows, not 10 M (the viewer draws long
        series from it; ``[]`` for an unknown key). The database looks at each point once, for
        the five aggregates only: a short series is grouped in one query; a long one is read as
        one indexed range aggregate per bucket, which spares the database the sort of a
        ``GROUP BY`` over every point, with the range's ends found by index seeks rather than
        by four more aggregates over its points (1 M points: 0.13 s against 0.23 s with them
        and 0.74 s grouped, on SQLite; see docs/performance.md).
        """
        series = self._store._series_ids(self.id).get(key)
        if series is None:
            return []
        sid = series[0]
        backend = self._store.backend
        # two subqueries: each is one index seek, where MIN and MAX in one query scan the series
        lo, hi = backend.query(
            "SELECT (SELECT MIN(step) FROM metrics WHERE series = ?), "
            "(SELECT MAX(step) FROM metrics WHERE series = ?)",
            (sid, sid),
        )[0]
        if lo is None:
            return []
        lo, buckets = int(lo), max(1, int(buckets))
        span = int(hi) - lo + 1  # bucket b holds steps lo + ceil(b*span/buckets) .. before b+1's
        numbers = "MIN(value), MAX(value), COUNT(value), SUM(value), COUNT(*)"
        rows: List[tuple] = []
        if span <= _ENVELOPE_GROUPED * buckets:
            rows = backend.query(
                f"SELECT MIN(step), MAX(step), {numbers} FROM metrics WHERE series = ? "
                "GROUP BY ((step - CAST(? AS BIGINT)) * CAST(? AS BIGINT)) / CAST(? AS BIGINT) ORDER BY 1",
                (sid, lo, buckets, span),
            )
        else:
            within = "FROM metrics WHERE series = ? AND step >= ? AND step < ?"
            for b in range(buckets):
                start = lo + (b * span + buckets - 1) // buckets
                stop = lo + ((b + 1) * span + buckets - 1) // buckets
                bounds = (sid, start, stop)
                row = backend.query(
                    f"SELECT (SELECT MIN(step) {within}), (SELECT MAX(step) {within}), {numbers} {within}",
                    bounds * 3,
                )[0]
                if row[6]:
                    rows.append(row)
        times: Dict[int, float] = {}
        ends = sorted({int(r[i]) for r in rows for i in (0, 1)})
        for i in range(0, len(ends), _IN_BATCH):
            part = ends[i : i + _IN_BATCH]
            times.update(
                backend.query(
                    f"SELECT step, wall_time FROM metrics WHERE series = ? AND step IN ({', '.join('?' * len(part))})",
                    [sid, *part],
                )
            )
        kind = series[1]
        read = backend.read_point
        return [
            (
                int(r[0]),
                int(r[1]),
                times[int(r[0])],
                times[int(r[1])],
                _number(read, kind, r[2]),
                _number(read, kind, r[3]),
                int(r[4]),
                float(r[5] or 0.0),
                int(r[6]),
            )
            for r in rows
        ]

    def metric_count(self, key: str) -> int:
        """How many points (steps) the series ``key`` has, without reading them."""
        return self.metric_stats([key]).get(key, {}).get("count", 0)

    def metric_stats(self, keys: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, Any]]:
        """Per metric key: count, first/last step, min/max (numbers only), the last value.

        Computed by the database (one aggregate query), so it costs no memory per point; the
        basis of "best" and "final" in compare and aggregate.
        """
        return self._store.metric_stats([self.id], keys).get(self.id, {})

    def history(self, keys: Optional[Sequence[str]] = None, by: str = "step") -> Any:
        """A pandas DataFrame: one row per step (or epoch), one column per metric (see
        :func:`epochline.insight.frames.history`)."""
        from ..insight.frames import history

        return history(self, keys=keys, by=by)

    def export(self, path: Union[str, Path], progress: Any = None) -> Path:
        """Write this run as one zip (see :func:`epochline.insight.archive.export_run`)."""
        from ..insight.archive import export_run

        return export_run(self, path, progress=progress)

    def export_tensorboard(self, directory: Union[str, Path]) -> Path:
        """Write scalars, images and histograms as TensorBoard event files under ``directory``."""
        from ..insight.tensorboard import export_tensorboard

        return export_tensorboard(self, directory)

    def metric_rows(self, key: str) -> List[Dict[str, Any]]:
        """Like :meth:`metrics`, with the epoch of each step and the stage the metric was logged in."""
        backend = self._store.backend
        rows = self._q(
            f"SELECT m.wall_time, m.step, st.epoch, s.stage, s.kind, {backend.POINT_COLUMNS} "
            "FROM metrics m JOIN series s ON s.id = m.series LEFT JOIN steps st "
            "ON st.run_id = s.run_id AND st.step = m.step "
            "WHERE s.run_id = ? AND s.key = ? ORDER BY m.step",
            key,
        )
        read = backend.read_point
        return [
            {"wall_time": r[0], "step": r[1], "epoch": r[2], "stage": r[3], "value": read(*r[4:])}
            for r in rows
        ]

    def last(self, key: str) -> Any:
        return self.metric_stats([key]).get(key, {}).get("last")

    def histogram_keys(self) -> List[str]:
        return [r[0] for r in self._q("SELECT DISTINCT key FROM histograms WHERE run_id = ? ORDER BY key")]

    def histograms(self, key: str) -> List[Tuple[float, int, Dict[str, Any]]]:
        rows = self._q(
            "SELECT wall_time, step, data FROM histograms WHERE run_id = ? AND key = ? ORDER BY step", key
        )
        return [(t, s, ev.loads_value(d)) for t, s, d in rows]

    def images(self, key: Optional[str] = None) -> List[ImageRecord]:
        rows = self._q(
            "SELECT key, step, wall_time, path, caption, width, height FROM media "
            "WHERE run_id = ? AND kind = 'image' ORDER BY key, step, wall_time"
        )
        root = self._store.backend.media_root
        return [
            ImageRecord(k, s, t, media_path(root, p), c, w or 0, h or 0)
            for k, s, t, p, c, w, h in rows
            if key is None or k == key
        ]

    def artifacts(self) -> List[ArtifactRecord]:
        rows = self._q(
            "SELECT key, wall_time, path, size, sha256, source FROM media "
            "WHERE run_id = ? AND kind = 'artifact' ORDER BY wall_time, key"
        )
        root = self._store.backend.media_root
        return [
            ArtifactRecord(n, t, media_path(root, p), z or 0, h or "", s or "") for n, t, p, z, h, s in rows
        ]

    def texts(self, kind: Optional[str] = "text") -> List[TextRecord]:
        rows = self._q(
            "SELECT wall_time, kind, level, logger, text FROM texts WHERE run_id = ? ORDER BY wall_time"
        )
        return [TextRecord(*r) for r in rows if kind is None or r[1] == kind]

    def comments(self) -> List[str]:
        return [t.text for t in self.texts("comment")]

    def plots(self) -> List[Dict[str, Any]]:
        rows = self._q("SELECT name, kind, y_label, metrics FROM plots WHERE run_id = ? ORDER BY name")
        return [{"name": n, "kind": k, "y_label": y, "metrics": json.loads(m)} for n, k, y, m in rows]

    def epochs(self) -> List[Dict[str, Any]]:
        rows = self._q(
            "SELECT epoch, total_epochs, wall_time, vals, percent FROM epochs WHERE run_id = ? ORDER BY epoch"
        )
        return [
            {
                "epoch": e,
                "total_epochs": n,
                "wall_time": t,
                "values": ev.loads_value(v),
                "percent": json.loads(p),
            }
            for e, n, t, v, p in rows
        ]

    def to_dict(self, full: bool = True) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "path": self.path,
            "alias": self.alias,
            "status": self.status,
            "reason": self.reason,
            "framework": self.framework,
            "host": self.host,
            "pid": self.pid,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "duration": self.duration,
            "lost": self.lost,
            "tags": self.tags,
            "primary_metric": self.primary_metric,
        }
        if full:
            out.update(
                {
                    "params": self.params,
                    "fingerprint": self.fingerprint,
                    "summary": self.summary,
                    "metrics": {k: [list(p) for p in self.metrics(k)] for k in self.metric_keys()},
                    "epochs": self.epochs(),
                    "images": [
                        {"key": i.key, "step": i.step, "path": str(i.path), "caption": i.caption}
                        for i in self.images()
                    ],
                    "artifacts": [
                        {"name": a.name, "path": str(a.path), "size": a.size} for a in self.artifacts()
                    ],
                    "texts": [t.text for t in self.texts()],
                    "comments": self.comments(),
                    "plots": self.plots(),
                }
            )
            out.update(self.context_dict())
        return out


class Store:
    """A store opened for reading: ``epochline.open()``."""

    def __init__(self, backend: Any):
        self.backend = backend

    @property
    def uri(self) -> str:
        return self.backend.uri

    def runs(
        self,
        path: Optional[str] = None,
        tag: Optional[str] = None,
        status: Optional[str] = None,
        fingerprint: Optional[str] = None,
    ) -> List[RunView]:
        """Runs, oldest first. ``path`` matches the path and everything below it."""
        sql = f"SELECT {_RUN_COLUMNS} FROM runs"
        where, params = [], []
        if path:
            path = path.strip("/")
            where.append("(path = ? OR path LIKE ? ESCAPE '!')")
            params += [path, _like_prefix(path) + "/%"]
        if tag:
            where.append("id IN (SELECT run_id FROM tags WHERE tag = ?)")
            params.append(tag)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY start_time, id"
        runs = [RunView(self, row) for row in self.backend.query(sql, params)]
        if status:
            runs = [r for r in runs if r.status == status]
        if fingerprint:
            runs = [r for r in runs if r.fingerprint == fingerprint]
        return runs

    def run(self, ref: Union[str, RunView]) -> RunView:
        """A run by id, unique id prefix, name or alias; or the latest run at path ``ref``.

        An unknown ``ref`` raises :class:`KeyError` naming the closest ids, names and paths.
        """
        if isinstance(ref, RunView):
            return ref
        rows = self.backend.query(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (ref,))
        if not rows:
            rows = self.backend.query(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE id LIKE ? ESCAPE '!' OR name = ? OR alias = ?",
                (_like_prefix(ref) + "%", ref, ref),
            )
        if not rows:
            rows = self.backend.query(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE path = ? ORDER BY start_time DESC, id DESC LIMIT 1",
                (ref.strip("/"),),
            )
        if not rows:
            import difflib  # here: only a failed lookup needs it

            known = self.backend.query("SELECT id, name, path, alias FROM runs")
            near = difflib.get_close_matches(ref, {n for row in known for n in row if n}, n=3, cutoff=0.5)
            hint = (
                "closest: " + ", ".join(near)
                if near
                else f"{len(known)} runs, at " + ", ".join(sorted({r[2] for r in known})[:5])
                if known
                else "the store has no runs"
            )
            raise RunNotFoundError(f"no run {ref!r} in {self.uri} ({hint})")
        if len(rows) > 1:
            ids = ", ".join(r[0] for r in rows[:5])
            raise AmbiguousRunError(f"{ref!r} matches several runs ({ids}); give more of the id")
        return RunView(self, rows[0])

    def select(self, refs: Union[str, RunView, Iterable[Union[str, RunView]]]) -> List[RunView]:
        """Runs for ``refs``: each a :class:`RunView`, or a path (every run at it or below it), or
        anything :meth:`run` accepts. Order kept, duplicates dropped."""
        if isinstance(refs, (str, RunView)):
            refs = [refs]
        out: Dict[str, RunView] = {}
        for ref in refs:
            found = [ref] if isinstance(ref, RunView) else self.runs(path=ref) or [self.run(ref)]
            for run in found:
                out.setdefault(run.id, run)
        return list(out.values())

    def _series_ids(self, run_id: str) -> Dict[str, Tuple[int, int]]:
        rows = self.backend.query("SELECT key, id, kind FROM series WHERE run_id = ?", (run_id,))
        return {k: (int(i), int(kind)) for k, i, kind in rows}

    def params_of(self, run_ids: Sequence[str]) -> Dict[str, Tuple[Dict[str, Any], List[str]]]:
        """``{run_id: (params, ignored param keys)}`` for many runs in one query per 500 runs."""
        out: Dict[str, Tuple[Dict[str, Any], List[str]]] = {rid: ({}, []) for rid in run_ids}
        ids = list(out)
        for i in range(0, len(ids), _IN_BATCH):
            batch = ids[i : i + _IN_BATCH]
            for rid, key, value, counts in self.backend.query(
                f"SELECT run_id, key, value, counts FROM params WHERE run_id IN "
                f"({', '.join('?' * len(batch))}) ORDER BY run_id, key",
                batch,
            ):
                out[rid][0][key] = ev.loads_value(value)
                if not counts:
                    out[rid][1].append(key)
        return out

    def metric_stats(
        self,
        run_ids: Sequence[str],
        keys: Optional[Sequence[str]] = None,
        *,
        extreme: Optional[Callable[[str, str], Optional[str]]] = None,
    ) -> Dict[str, Dict[str, Dict[str, Any]]]:
        """``{run_id: {key: {count, first_step, last_step, min, max, last, last_wall_time, stage,
        kind}}}`` computed by the database, so memory does not grow with the points.

        min/max ignore NaN (stored as NULL) and are None for a series without a number; ``last``
        is the value at the last step (NaN included). Steps and last values are index lookups;
        min, max and count need a pass over the series' points. ``extreme(run_id, key)`` ->
        "min" or "max" computes only that one (the other and ``count`` are None): one pass with
        one comparison per point, what ``aggregate`` needs on a big store; -> None computes
        neither (steps and last values only: index lookups, no pass at all).
        """
        backend = self.backend
        read = backend.read_point
        out: Dict[str, Dict[str, Dict[str, Any]]] = {rid: {} for rid in run_ids}
        key_sql, key_params = "", []
        if keys is not None:
            keys = list(dict.fromkeys(keys))
            if not keys:
                return out
            key_sql = f" AND s.key IN ({', '.join('?' * len(keys))})"
            key_params = keys
        ids = list(out)
        for i in range(0, len(ids), _IN_BATCH):
            batch = ids[i : i + _IN_BATCH]
            marks = ", ".join("?" * len(batch))
            by_sid: Dict[int, Tuple[int, Dict[str, Any], str, str]] = {}
            for rid, key, sid, kind, stage, first, last in backend.query(
                "SELECT s.run_id, s.key, s.id, s.kind, s.stage, "
                "(SELECT MIN(step) FROM metrics WHERE series = s.id), "
                "(SELECT MAX(step) FROM metrics WHERE series = s.id) "
                f"FROM series s WHERE s.run_id IN ({marks}){key_sql}",
                batch + key_params,
            ):
                if first is None:
                    continue  # a series row without points (its batch was rolled back)
                entry = out[rid][key] = {
                    "count": None,
                    "first_step": int(first),
                    "last_step": int(last),
                    "min": None,
                    "max": None,
                    "last": None,
                    "last_wall_time": None,
                    "stage": stage,
                    "kind": "bool" if kind == 1 else "number",
                }
                by_sid[int(sid)] = (int(kind), entry, rid, key)
            if not by_sid:
                continue
            for sid, wall, *value in backend.query(
                f"SELECT s.id, m.wall_time, {backend.POINT_COLUMNS} FROM series s "
                "JOIN metrics m ON m.series = s.id "
                f"WHERE s.run_id IN ({marks}){key_sql} AND m.step = "
                "(SELECT MAX(step) FROM metrics WHERE series = s.id)",
                batch + key_params,
            ):
                kind, entry, _, _ = by_sid[int(sid)]
                entry.update(last=read(kind, *value), last_wall_time=wall)
            self._fill_extremes(by_sid, extreme)
        return out

    def _fill_extremes(
        self,
        by_sid: Dict[int, Tuple[int, Dict[str, Any], str, str]],
        extreme: Optional[Callable[[str, str], Optional[str]]],
    ) -> None:
        """min/max (and count without ``extreme``) of the series in ``by_sid``, in place."""
        backend = self.backend
        read = backend.read_point
        sids = list(by_sid)
        if extreme is None:
            for j in range(0, len(sids), _IN_BATCH):
                part = sids[j : j + _IN_BATCH]
                for sid, n, lo, hi in backend.query(
                    "SELECT series, COUNT(*), MIN(value), MAX(value) FROM metrics WHERE series "
                    f"IN ({', '.join('?' * len(part))}) GROUP BY series",
                    part,
                ):
                    kind, entry, _, _ = by_sid[int(sid)]
                    entry.update(count=int(n), min=_number(read, kind, lo), max=_number(read, kind, hi))
            return
        wanted: Dict[str, List[int]] = {"min": [], "max": []}
        for sid, (_, _, rid, key) in by_sid.items():
            which = extreme(rid, key)
            if which is not None:
                wanted["min" if which == "min" else "max"].append(sid)
        for func, part_ids in wanted.items():
            for j in range(0, len(part_ids), _IN_BATCH):
                part = part_ids[j : j + _IN_BATCH]
                for sid, value in backend.query(
                    f"SELECT s.id, (SELECT {func.upper()}(value) FROM metrics WHERE series = s.id) "
                    f"FROM series s WHERE s.id IN ({', '.join('?' * len(part))})",
                    part,
                ):
                    kind, entry, _, _ = by_sid[int(sid)]
                    entry[func] = _number(read, kind, value)

    def step_means(
        self, run_ids: Sequence[str], key: str, buckets: int
    ) -> Dict[str, Tuple[List[float], List[float]]]:
        """``{run_id: (xs, ys)}``: metric ``key`` of each run as the mean of its numbers in each of
        ``buckets`` equal step ranges, on one grid for all ``run_ids`` (from the smallest first
        step to the largest last step), x being the range's middle step. Ranges without a number
        are left out; so are runs without one.

        What a band across runs needs (:func:`epochline.insight._bands.mean_band`), computed by
        the database in one query per 500 runs, so memory is bounded by the buckets whatever the
        runs' lengths. A range of one step has that step as x: a series shorter than ``buckets``
        comes back point for point.
        """
        stats = self.metric_stats(run_ids, [key], extreme=lambda run_id, k: None)  # index seeks
        ends = [(s[key]["first_step"], s[key]["last_step"]) for s in stats.values() if key in s]
        if not ends:
            return {}
        lo = min(e[0] for e in ends)
        span = max(e[1] for e in ends) - lo + 1
        buckets = max(1, min(int(buckets), span))  # every range holds at least one step
        backend = self.backend
        starts = [lo + (b * span + buckets - 1) // buckets for b in range(buckets + 1)]
        middle = [(starts[b] + starts[b + 1] - 1) / 2 for b in range(buckets)]
        sums: Dict[str, Tuple[List[float], List[float]]] = {}
        ids = [rid for rid, s in stats.items() if key in s]
        for i in range(0, len(ids), _IN_BATCH):
            batch = ids[i : i + _IN_BATCH]
            owner = {
                int(sid): rid
                for sid, rid in backend.query(
                    f"SELECT id, run_id FROM series WHERE key = ? AND run_id IN ({', '.join('?' * len(batch))})",
                    [key, *batch],
                )
            }
            sids = list(owner)
            if not sids:
                continue
            marks = ", ".join("?" * len(sids))
            if backend.hash_grouping:
                rows = backend.query(
                    "SELECT series, ((step - CAST(? AS BIGINT)) * CAST(? AS BIGINT)) / CAST(? AS BIGINT) AS b, "
                    f"AVG(value) FROM metrics WHERE series IN ({marks}) GROUP BY series, b",
                    [lo, buckets, span, *sids],
                )
            else:
                # one indexed range aggregate per series and range, all in one statement: no sort
                # of every point; series by series (CROSS JOIN keeps that loop order: each series
                # read front to back, 20 % faster than the planner's order); numbers only (in
                # SQLite every number sorts before any text)
                rows = backend.query(
                    "WITH RECURSIVE r(b, a, z) AS (SELECT 0, ?, ? UNION ALL "
                    "SELECT b + 1, z, ? + ((b + 2) * ? + ? - 1) / ? FROM r WHERE b + 1 < ?) "
                    "SELECT s.id, r.b, (SELECT AVG(value) FROM metrics WHERE series = s.id "
                    "AND step >= r.a AND step < r.z AND value < '') "
                    f"FROM series s CROSS JOIN r WHERE s.id IN ({marks})",
                    [lo, lo + (span + buckets - 1) // buckets, lo, span, buckets, buckets, buckets, *sids],
                )
            for sid, b, mean in rows:
                if mean is not None:
                    xs, ys = sums.setdefault(owner[int(sid)], ([], []))
                    xs.append(middle[int(b)])
                    ys.append(float(mean))
        out: Dict[str, Tuple[List[float], List[float]]] = {}
        for rid, (xs, ys) in sums.items():
            order = sorted(range(len(xs)), key=xs.__getitem__)
            out[rid] = ([xs[j] for j in order], [ys[j] for j in order])
        return out

    def compare(
        self, runs: Iterable[Union[str, RunView]], metrics: Optional[Sequence[str]] = None
    ) -> Dict[str, Any]:
        """Side by side: see :func:`epochline.insight.compare.compare`."""
        from ..insight.compare import compare

        return compare(self, runs, metrics=metrics)

    def aggregate(
        self,
        path: Optional[str] = None,
        tag: Optional[str] = None,
        by: Union[str, Sequence[str]] = "fingerprint",
        metrics: Optional[Sequence[str]] = None,
        status: Optional[str] = "completed",
        runs: Optional[Iterable[Union[str, RunView]]] = None,
    ) -> Dict[str, Any]:
        """Groups of runs of one configuration: see :func:`epochline.insight.aggregate.aggregate`."""
        from ..insight.aggregate import aggregate

        return aggregate(self, path=path, tag=tag, by=by, metrics=metrics, status=status, runs=runs)

    def runs_frame(
        self, path: Optional[str] = None, tag: Optional[str] = None, status: Optional[str] = None
    ) -> Any:
        """A pandas DataFrame, one row per run: see :func:`epochline.insight.frames.runs_frame`."""
        from ..insight.frames import runs_frame

        return runs_frame(self, path=path, tag=tag, status=status)

    def import_run(
        self, archive: Union[str, Path], new_id: bool = False, progress: Any = None, limits: Any = None
    ) -> RunView:
        """Restore a run from :meth:`RunView.export`'s zip: see
        :func:`epochline.insight.archive.import_run`."""
        from ..insight.archive import import_run

        return import_run(self, archive, new_id=new_id, progress=progress, limits=limits)

    def delete_run(self, run: Union[str, RunView]) -> Dict[str, int]:
        """Remove a run and the media files no other run uses; ``{runs, points, media_files}``.

        A run that is still running is refused (its writer would go on adding rows to it).
        """
        from .admin import delete_run

        view = self.run(run)
        if view.status == "running":
            raise RuntimeError(
                f"run {view.id} is still running (pid {view.pid} on {view.host}); "
                "stop it first, or wait until it is reported crashed"
            )
        return delete_run(self.backend, view.id)

    __getitem__ = run

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open_store(store: Any = None, *, create: bool = False) -> Store:
    """Open a store for reading (default: ``EPOCHLINE_STORE`` or ``./epochline-runs``).

    Read-only, for every reader (this API, the CLI, the viewer): nothing is created, migrated or
    locked for writing, so a read-only directory or mount works and a writer is never waited for.
    A directory without a store raises :class:`~epochline.errors.StoreNotFoundError`; a store of
    another schema version :class:`~epochline.errors.StoreVersionError`, saying what to do (an
    older one: ``epochline upgrade``). ``create=True`` makes an empty store first, for a store
    that only receives imported runs (``store.import_run``).
    """
    backend = open_backend(store, create=create)
    if create and hasattr(backend, "migrate"):
        backend.migrate()
    if hasattr(backend, "open_reader"):
        backend.open_reader()
    return Store(backend)
