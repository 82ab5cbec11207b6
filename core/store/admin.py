"""Whole-run maintenance SQL: dump a run's rows, insert a run in bulk, delete a run.

Used by zip export/import and ``epochline rm`` (:mod:`epochline.insight.archive`); kept here so
that all SQL stays under ``store/``. Rows are moved in their stored form (params, summary, epoch
values and histograms as the JSON text the writer stored), so a round trip is exact. Each
operation is one transaction on a connection of its own: it either happens completely or not
at all.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterable, Iterator, List, Tuple

from ..errors import RunNotFoundError
from . import media_path

RUN_COLUMNS = (
    "id",
    "name",
    "path",
    "alias",
    "framework",
    "status",
    "reason",
    "host",
    "pid",
    "pid_start",
    "start_time",
    "end_time",
    "heartbeat",
    "lost",
    "primary_metric",
    "primary_mode",
)
# table -> stored columns of one run's rows (besides run_id); the order is the archive's order
TABLES: Dict[str, Tuple[str, ...]] = {
    "tags": ("tag",),
    "params": ("key", "value", "counts"),
    "summary": ("key", "value"),
    "texts": ("wall_time", "kind", "level", "logger", "text"),
    "plots": ("name", "kind", "y_label", "metrics"),
    "epochs": ("epoch", "total_epochs", "wall_time", "vals", "percent"),
    "histograms": ("key", "step", "wall_time", "data"),
    "steps": ("step", "epoch"),
    "media": (
        "kind",
        "key",
        "step",
        "wall_time",
        "path",
        "caption",
        "width",
        "height",
        "size",
        "sha256",
        "source",
    ),
    "records": ("kind", "name", "wall_time", "data"),  # env, datasets, models, config, code
}
_ORDER = {
    "texts": "wall_time",
    "epochs": "epoch",
    "histograms": "key, step",
    "steps": "step",
    "media": "kind, key, step, wall_time",
    "records": "kind, name",
}
SERIES_COLUMNS = ("key", "kind", "stage")


@contextmanager
def _transaction(backend: Any) -> Iterator[Any]:
    """A cursor in one write transaction: committed when the block ends, rolled back if it raises
    (a run is imported or deleted whole, or not at all)."""
    conn = backend.connect_for_writing()
    try:
        cur = conn.cursor()
        backend._begin(cur)
        yield cur
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()


def dump_run(backend: Any, run_id: str) -> Dict[str, Any]:
    """Every stored row of a run except its metric points: ``{"run": {...}, table: [[...]],
    "series": [{"key", "kind", "stage"}]}`` in stored form."""
    rows = backend.query(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE id = ?", (run_id,))
    if not rows:
        raise KeyError(f"no run {run_id!r} in {backend.uri}")
    out: Dict[str, Any] = {"run": dict(zip(RUN_COLUMNS, rows[0]))}
    for table, columns in TABLES.items():
        order = _ORDER.get(table, columns[0])
        out[table] = [
            list(r)
            for r in backend.query(
                f"SELECT {', '.join(columns)} FROM {table} WHERE run_id = ? ORDER BY {order}", (run_id,)
            )
        ]
    out["series"] = [
        dict(zip(SERIES_COLUMNS, r))
        for r in backend.query("SELECT key, kind, stage FROM series WHERE run_id = ? ORDER BY key", (run_id,))
    ]
    return out


def run_exists(backend: Any, run_id: str) -> bool:
    return bool(backend.query("SELECT 1 FROM runs WHERE id = ?", (run_id,)))


def insert_run(
    backend: Any, record: Dict[str, Any], points: Callable[[str], Iterable[List[Tuple[int, float, Any]]]]
) -> None:
    """Insert a whole run (a :func:`dump_run` record, ``run["id"]`` as its id) in one transaction.

    ``points(key)`` yields chunks of ``(step, wall_time, value)`` of each series in ``record
    ["series"]`` (value None for NaN). An existing run id is refused (``FileExistsError``) inside
    the same transaction, so two imports cannot both succeed.
    """
    run = record["run"]
    with _transaction(backend) as cur:
        sql = backend._sql
        cur.execute(sql("SELECT 1 FROM runs WHERE id = ?"), (run["id"],))
        if cur.fetchone():
            raise FileExistsError(f"a run {run['id']!r} exists already in {backend.uri}")
        cur.execute(
            sql(f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({', '.join('?' * len(RUN_COLUMNS))})"),
            [run.get(c) for c in RUN_COLUMNS],
        )
        for table, columns in TABLES.items():
            rows = record.get(table) or []
            if rows:
                cur.executemany(
                    sql(
                        f"INSERT INTO {table} (run_id, {', '.join(columns)}) VALUES "
                        f"(?, {', '.join('?' * len(columns))})"
                    ),
                    [(run["id"], *row) for row in rows],
                )
        for series in record.get("series", []):
            cur.execute(
                sql("INSERT INTO series (run_id, key, kind, stage) VALUES (?, ?, ?, ?)"),
                (run["id"], series["key"], int(series["kind"]), series.get("stage")),
            )
            cur.execute(sql("SELECT id FROM series WHERE run_id = ? AND key = ?"), (run["id"], series["key"]))
            sid = int(cur.fetchone()[0])
            for chunk in points(series["key"]):
                _insert_points(backend, cur, sid, chunk)


def _insert_points(backend: Any, cur: Any, sid: int, chunk: List[Tuple[int, float, Any]]) -> None:
    if backend.value_columns == "value":  # one dynamically typed column: bind as it is
        cur.executemany(
            backend._sql("INSERT INTO metrics (series, step, wall_time, value) VALUES (?, ?, ?, ?)"),
            [(sid, s, t, v) for s, t, v in chunk],
        )
        return
    nan = math.nan
    point = backend._point
    rows = [point(sid, s, t, nan if v is None else v) for s, t, v in chunk]
    if hasattr(cur, "copy"):  # psycopg: COPY is an order of magnitude faster than executemany
        with cur.copy("COPY metrics (series, step, wall_time, value, text) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        cur.executemany(
            backend._sql("INSERT INTO metrics (series, step, wall_time, value, text) VALUES (?, ?, ?, ?, ?)"),
            rows,
        )


def delete_run(backend: Any, run_id: str) -> Dict[str, int]:
    """Delete a run's rows in one transaction, then the media files no other run refers to.

    Returns ``{"runs": 1, "points": n, "media_files": removed}``. Media are content addressed, so
    two runs that logged the same image share one file: it goes with the last run using it.
    """
    sql = backend._sql
    with _transaction(backend) as cur:
        cur.execute(sql("SELECT 1 FROM runs WHERE id = ?"), (run_id,))
        if not cur.fetchone():
            raise RunNotFoundError(f"no run {run_id!r} in {backend.uri}")
        cur.execute(
            sql("SELECT COUNT(*) FROM metrics WHERE series IN (SELECT id FROM series WHERE run_id = ?)"),
            (run_id,),
        )
        points = int(cur.fetchone()[0])
        cur.execute(sql("SELECT DISTINCT path FROM media WHERE run_id = ?"), (run_id,))
        paths = [r[0] for r in cur.fetchall()]
        cur.execute(
            sql("DELETE FROM metrics WHERE series IN (SELECT id FROM series WHERE run_id = ?)"), (run_id,)
        )
        for table in ("series", *TABLES):
            cur.execute(sql(f"DELETE FROM {table} WHERE run_id = ?"), (run_id,))
        cur.execute(sql("DELETE FROM runs WHERE id = ?"), (run_id,))
        orphans = []
        for path in paths:
            cur.execute(sql("SELECT 1 FROM media WHERE path = ? LIMIT 1"), (path,))
            if cur.fetchone() is None:
                orphans.append(path)
    removed = 0
    for path in orphans:
        try:
            media_path(backend.media_root, path).unlink()
            removed += 1
        except (FileNotFoundError, ValueError):
            pass
    return {"runs": 1, "points": points, "media_files": removed}


__all__ = ["dump_run", "insert_run", "delete_run", "run_exists", "TABLES", "RUN_COLUMNS"]
