"""The read API: runs, their params, metrics as ``(wall_time, step, value)``, media and status.

A run whose process died without finishing (kill -9, OOM, power loss) is reported as ``crashed``:
on the same host when its process (pid and start time) is gone, elsewhere when its heartbeat is
older than :data:`STALE_AFTER_S`.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from .. import events as ev
from ..identity import fingerprint
from ..procinfo import is_alive
from . import media_path, open_backend
from .context import ContextReads

STALE_AFTER_S = 120.0
_RUN_COLUMNS = ("id, name, path, alias, framework, status, reason, host, pid, pid_start, "
                "start_time, end_time, heartbeat, lost, primary_metric, primary_mode")


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


def effective_status(status: str, host: Optional[str], pid: Optional[int],
                     pid_start: Optional[float], heartbeat: Optional[float],
                     now: Optional[float] = None) -> Tuple[str, Optional[str]]:
    """('running' or 'crashed', reason) for a run stored as running."""
    if status != "running":
        return status, None
    now = time.time() if now is None else now
    last = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(heartbeat or 0))
    if host == socket.gethostname() and pid:
        if is_alive(int(pid), pid_start):
            return "running", None
        return "crashed", f"process {pid} on {host} ended without finishing (last sign of life {last})"
    if heartbeat is None or now - heartbeat > STALE_AFTER_S:
        return "crashed", f"no heartbeat from {host}:{pid} since {last}"
    return "running", None


class RunView(ContextReads):
    """One stored run, read lazily."""

    def __init__(self, store: "Store", row: tuple):
        self._store = store
        (self.id, self.name, self.path, self.alias, self.framework, stored_status, stored_reason,
         self.host, self.pid, pid_start, self.start_time, self.end_time, self.heartbeat, self.lost,
         self.primary_metric, self.primary_mode) = row
        self.status, reason = effective_status(stored_status, self.host, self.pid, pid_start,
                                               self.heartbeat)
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

    def metrics(self, key: str) -> List[Tuple[float, int, Any]]:
        """``[(wall_time, step, value), ...]`` ordered by step (one value per step: the last logged)."""
        backend = self._store.backend
        rows = self._q(f"SELECT m.wall_time, m.step, s.kind, {backend.POINT_COLUMNS} FROM metrics m "
                       "JOIN series s ON s.id = m.series WHERE s.run_id = ? AND s.key = ? "
                       "ORDER BY m.step", key)
        read = backend.read_point
        return [(r[0], r[1], read(*r[2:])) for r in rows]

    def metric_rows(self, key: str) -> List[Dict[str, Any]]:
        """Like :meth:`metrics`, with the epoch of each step and the stage the metric was logged in."""
        backend = self._store.backend
        rows = self._q(f"SELECT m.wall_time, m.step, st.epoch, s.stage, s.kind, {backend.POINT_COLUMNS} "
                       "FROM metrics m JOIN series s ON s.id = m.series LEFT JOIN steps st "
                       "ON st.run_id = s.run_id AND st.step = m.step "
                       "WHERE s.run_id = ? AND s.key = ? ORDER BY m.step", key)
        read = backend.read_point
        return [{"wall_time": r[0], "step": r[1], "epoch": r[2], "stage": r[3], "value": read(*r[4:])}
                for r in rows]

    def last(self, key: str) -> Any:
        rows = self.metrics(key)
        return rows[-1][2] if rows else None

    def histogram_keys(self) -> List[str]:
        return [r[0] for r in self._q("SELECT DISTINCT key FROM histograms WHERE run_id = ? ORDER BY key")]

    def histograms(self, key: str) -> List[Tuple[float, int, Dict[str, Any]]]:
        rows = self._q("SELECT wall_time, step, data FROM histograms WHERE run_id = ? AND key = ? "
                       "ORDER BY step", key)
        return [(t, s, ev.loads_value(d)) for t, s, d in rows]

    def images(self, key: Optional[str] = None) -> List[ImageRecord]:
        rows = self._q("SELECT key, step, wall_time, path, caption, width, height FROM media "
                       "WHERE run_id = ? AND kind = 'image' ORDER BY key, step, wall_time")
        root = self._store.backend.media_root
        return [ImageRecord(k, s, t, media_path(root, p), c, w or 0, h or 0)
                for k, s, t, p, c, w, h in rows if key is None or k == key]

    def artifacts(self) -> List[ArtifactRecord]:
        rows = self._q("SELECT key, wall_time, path, size, sha256, source FROM media "
                       "WHERE run_id = ? AND kind = 'artifact' ORDER BY wall_time, key")
        root = self._store.backend.media_root
        return [ArtifactRecord(n, t, media_path(root, p), z or 0, h or "", s or "")
                for n, t, p, z, h, s in rows]

    def texts(self, kind: Optional[str] = "text") -> List[TextRecord]:
        rows = self._q("SELECT wall_time, kind, level, logger, text FROM texts WHERE run_id = ? "
                       "ORDER BY wall_time")
        return [TextRecord(*r) for r in rows if kind is None or r[1] == kind]

    def comments(self) -> List[str]:
        return [t.text for t in self.texts("comment")]

    def plots(self) -> List[Dict[str, Any]]:
        rows = self._q("SELECT name, kind, y_label, metrics FROM plots WHERE run_id = ? ORDER BY name")
        return [{"name": n, "kind": k, "y_label": y, "metrics": json.loads(m)} for n, k, y, m in rows]

    def epochs(self) -> List[Dict[str, Any]]:
        rows = self._q("SELECT epoch, total_epochs, wall_time, vals, percent FROM epochs "
                       "WHERE run_id = ? ORDER BY epoch")
        return [{"epoch": e, "total_epochs": n, "wall_time": t, "values": ev.loads_value(v),
                 "percent": json.loads(p)} for e, n, t, v, p in rows]

    def to_dict(self, full: bool = True) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            "id": self.id, "name": self.name, "path": self.path, "alias": self.alias,
            "status": self.status, "reason": self.reason, "framework": self.framework,
            "host": self.host, "pid": self.pid, "start_time": self.start_time,
            "end_time": self.end_time, "duration": self.duration, "lost": self.lost,
            "tags": self.tags, "primary_metric": self.primary_metric,
        }
        if full:
            out.update({
                "params": self.params, "fingerprint": self.fingerprint, "summary": self.summary,
                "metrics": {k: [list(p) for p in self.metrics(k)] for k in self.metric_keys()},
                "epochs": self.epochs(),
                "images": [{"key": i.key, "step": i.step, "path": str(i.path), "caption": i.caption}
                           for i in self.images()],
                "artifacts": [{"name": a.name, "path": str(a.path), "size": a.size}
                              for a in self.artifacts()],
                "texts": [t.text for t in self.texts()], "comments": self.comments(),
                "plots": self.plots(),
            })
            out.update(self.context_dict())
        return out


class Store:
    """A store opened for reading: ``epochline.open()``."""

    def __init__(self, backend: Any):
        self.backend = backend

    @property
    def uri(self) -> str:
        return self.backend.uri

    def runs(self, path: Optional[str] = None, tag: Optional[str] = None,
             status: Optional[str] = None, fingerprint: Optional[str] = None) -> List[RunView]:
        """Runs, oldest first. ``path`` matches the path and everything below it."""
        sql = f"SELECT {_RUN_COLUMNS} FROM runs"
        where, params = [], []
        if path:
            path = path.strip("/")
            where.append("(path = ? OR path LIKE ? ESCAPE '!')")
            escaped = path.replace("!", "!!").replace("%", "!%").replace("_", "!_")
            params += [path, escaped + "/%"]
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

    def run(self, ref: str) -> RunView:
        """A run by id, unique id prefix, name or alias; or the latest run at path ``ref``."""
        rows = self.backend.query(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (ref,))
        if not rows:
            escaped = ref.replace("!", "!!").replace("%", "!%").replace("_", "!_")
            rows = self.backend.query(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE id LIKE ? ESCAPE '!' OR name = ? OR alias = ?",
                (escaped + "%", ref, ref))
        if not rows:
            rows = self.backend.query(f"SELECT {_RUN_COLUMNS} FROM runs WHERE path = ? "
                                      "ORDER BY start_time DESC, id DESC LIMIT 1", (ref.strip("/"),))
        if not rows:
            raise KeyError(f"no run {ref!r} in {self.uri}")
        if len(rows) > 1:
            ids = ", ".join(r[0] for r in rows[:5])
            raise KeyError(f"{ref!r} matches several runs ({ids}); give more of the id")
        return RunView(self, rows[0])

    __getitem__ = run

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open_store(store: Any = None) -> Store:
    """Open a store for reading (default: ``EPOCHLINE_STORE`` or ``./epochline-runs``)."""
    return Store(open_backend(store))
