"""The SQL backend shared by SQLite and PostgreSQL: schema, migrations, writes and reads.

A dialect subclass supplies a DB-API connection, its placeholder and the few DDL words that differ.
All SQL is parameterised; table and column names are constants of this module.
"""

from __future__ import annotations

import json
import math
import operator
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import msgspec

from .. import events as ev
from ..errors import StoreNotFoundError, StoreVersionError
from . import context as _context
from . import redact

SCHEMA_VERSION = 2

# Each entry upgrades the schema from version i to i+1; never edit a released entry, append one.
# "{norowid}", "{serial_pk}" and "{value_columns}" are filled in by the dialect.
MIGRATIONS: List[List[str]] = [
    [
        """CREATE TABLE runs (
            id TEXT PRIMARY KEY, name TEXT NOT NULL, path TEXT NOT NULL, alias TEXT,
            framework TEXT, status TEXT NOT NULL, reason TEXT, host TEXT, pid BIGINT,
            pid_start DOUBLE PRECISION, start_time DOUBLE PRECISION, end_time DOUBLE PRECISION,
            heartbeat DOUBLE PRECISION, lost BIGINT NOT NULL DEFAULT 0,
            primary_metric TEXT, primary_mode TEXT)""",
        "CREATE INDEX runs_path ON runs (path)",
        "CREATE TABLE tags (run_id TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (run_id, tag))",
        """CREATE TABLE params (run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
            counts SMALLINT NOT NULL, PRIMARY KEY (run_id, key))""",
        # one row per (run, metric name); points refer to it by a small integer
        """CREATE TABLE series (id {serial_pk}, run_id TEXT NOT NULL, key TEXT NOT NULL,
            kind SMALLINT NOT NULL, stage TEXT, UNIQUE (run_id, key))""",
        # one row per point: as few columns as possible, since binding them is the write cost
        """CREATE TABLE metrics (series BIGINT NOT NULL, step BIGINT NOT NULL,
            wall_time DOUBLE PRECISION NOT NULL, {value_columns},
            PRIMARY KEY (series, step)){norowid}""",
        # the epoch of a step, written only when an epoch was given
        """CREATE TABLE steps (run_id TEXT NOT NULL, step BIGINT NOT NULL, epoch BIGINT NOT NULL,
            PRIMARY KEY (run_id, step)){norowid}""",
        """CREATE TABLE media (run_id TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
            step BIGINT, wall_time DOUBLE PRECISION NOT NULL, path TEXT NOT NULL, caption TEXT,
            width BIGINT, height BIGINT, size BIGINT, sha256 TEXT, source TEXT)""",
        "CREATE INDEX media_run ON media (run_id, kind, key)",
        """CREATE TABLE texts (run_id TEXT NOT NULL, wall_time DOUBLE PRECISION NOT NULL,
            kind TEXT NOT NULL, level TEXT, logger TEXT, text TEXT NOT NULL)""",
        "CREATE INDEX texts_run ON texts (run_id, wall_time)",
        """CREATE TABLE histograms (run_id TEXT NOT NULL, key TEXT NOT NULL, step BIGINT NOT NULL,
            wall_time DOUBLE PRECISION NOT NULL, data TEXT NOT NULL, PRIMARY KEY (run_id, key, step))""",
        """CREATE TABLE plots (run_id TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,
            y_label TEXT, metrics TEXT NOT NULL, PRIMARY KEY (run_id, name))""",
        """CREATE TABLE summary (run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (run_id, key))""",
        """CREATE TABLE epochs (run_id TEXT NOT NULL, epoch BIGINT NOT NULL,
            total_epochs BIGINT, wall_time DOUBLE PRECISION NOT NULL, vals TEXT NOT NULL,
            percent TEXT NOT NULL, PRIMARY KEY (run_id, epoch))""",
    ],
    _context.MIGRATION,  # records: env, datasets, models, config files, code, param metadata
]

KIND_NUMBER, KIND_BOOL = 0, 1

_SERIES_STEP = operator.itemgetter(0, 1)
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 2.0
"""Backoff while the store is away: 0.05 s, doubling, at most 2 s between tries."""
CONTENTION_PATIENCE_S = 60.0
"""While other writers hold the lock, a full queue waits this long (back-pressure) before dropping:
several processes writing one store must lose nothing."""
MAX_FAILED_ROWS = 100
"""Isolating bad rows stops after this many: a batch where nothing writes is lost whole."""


class StoreAway(OSError):
    """The store did not take a write before the deadline (locked, server down, disk full)."""


class PartialWrite(Exception):
    """Some rows of a batch could not be written and were dropped; the rest was written.

    ``lost`` counts what was dropped (one per metric value, one per other event), so the
    dispatcher reports exactly that rather than the whole batch.
    """

    def __init__(self, lost: int, cause: BaseException):
        super().__init__(f"{lost} rows could not be written ({type(cause).__name__}: {_one_line(cause)})")
        self.lost = lost
        self.cause = cause


class Backend:
    """A store: one database plus a media folder. Subclasses provide :meth:`_connect`.

    Metric values: a dialect either has one dynamically typed ``value`` column (SQLite keeps
    int, float and text apart by itself) or a ``value`` number and a ``text`` column. NaN is
    stored as NULL (SQLite turns NaN into NULL anyway); infinities are stored as they are. In a
    series whose first value was a bool, 0 and 1 read back as False and True.
    """

    placeholder = "?"
    norowid = ""
    serial_pk = "BIGSERIAL PRIMARY KEY"
    value_columns = "value DOUBLE PRECISION, text TEXT"
    hash_grouping = True
    """Whether a ``GROUP BY`` over many points costs one pass (a hash aggregate, as PostgreSQL's).
    SQLite sorts every point first, so readers that reduce millions of points ask it per range
    instead (:meth:`~epochline.store.reader.Store.step_means`)."""
    retryable: Tuple[type, ...] = ()
    row_errors: Tuple[type, ...] = (ValueError, TypeError, OverflowError)

    def _point(self, series: int, step: int, wall_time: float, value: Any) -> tuple:
        """The metrics row of one point (two value columns: number and text)."""
        t = type(value)
        if t is float or t is int or t is bool:
            return (series, step, wall_time, None if value != value else float(value), None)
        return (series, step, wall_time, None, str(value))

    _POINT_SQL = (
        "INSERT INTO metrics (series, step, wall_time, value, text) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (series, step) DO UPDATE SET wall_time = excluded.wall_time, "
        "value = excluded.value, text = excluded.text"
    )
    POINT_COLUMNS = "m.value, m.text"

    @staticmethod
    def read_point(kind: int, value: Any, text: Optional[str] = None) -> Any:
        """The Python value of a stored point (columns as in :attr:`POINT_COLUMNS`)."""
        if text is not None:
            return text
        if value is None:
            return math.nan
        if kind == KIND_BOOL and value in (0, 1) and type(value) is not str:
            return bool(value)
        return value

    def __init__(self, uri: str, media_root: Path):
        self.uri = redact(uri)
        """Where the store is, as it may be shown: any password is replaced by ``***``."""
        self.media_root = Path(media_root)
        self._writer: Any = None
        self._reader: Any = None
        self._schema_ready = False
        self.recorded: Set[str] = set()
        """Runs whose start this backend has written (their rows exist)."""
        self._unrecorded: Set[str] = set()

    # -- dialect --------------------------------------------------------------------------
    def _connect(self):  # pragma: no cover - abstract
        """A new DB-API connection (writers use :meth:`connect_for_writing`)."""
        raise NotImplementedError

    def _connect_readonly(self):  # pragma: no cover - abstract
        """A connection that cannot write: readers never change a store nor wait for a writer."""
        raise NotImplementedError

    def _begin(self, cur) -> None:
        cur.execute("BEGIN")

    def _lock_schema(self, cur: Any) -> None:
        """Keep two processes from migrating at once (SQLite's BEGIN IMMEDIATE already does)."""

    def _sql(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def _is_away(self, exc: Exception) -> bool:
        """The store is there but cannot take writes now (locked, server down, disk full): retry."""
        return isinstance(exc, self.retryable)

    def _is_contention(self, exc: Exception) -> bool:
        """The store is busy with other writers (a lock held for a moment), not away."""
        return False

    def _is_row_error(self, exc: Exception) -> bool:
        """The error comes from some rows' values, not from the store: isolate those rows."""
        return isinstance(exc, self.row_errors)

    # -- schema ---------------------------------------------------------------------------
    def migrate(self) -> None:
        """Create or upgrade the schema (``epochline upgrade``); refuse a store of a newer epochline.

        Writers do this lazily on their first connection; readers never do (see :meth:`query`).
        """
        conn = self._connect()
        try:
            self._migrate_on(conn)
        finally:
            conn.close()

    def connect_for_writing(self) -> Any:
        """A new write connection, with the schema created or upgraded on the first one."""
        conn = self._connect()
        try:
            if not self._schema_ready:
                self._migrate_on(conn)
                self._schema_ready = True
        except BaseException:
            conn.close()
            raise
        return conn

    def _migrate_on(self, conn: Any) -> None:
        cur = conn.cursor()
        self._begin(cur)
        try:
            self._lock_schema(cur)
            cur.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            cur.execute(self._sql("SELECT value FROM meta WHERE key = ?"), ("schema_version",))
            row = cur.fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StoreVersionError(
                    f"the store at {self.uri} has schema version {version}, newer than this "
                    f"epochline understands ({SCHEMA_VERSION}); upgrade epochline to read it"
                )
            for target in range(version, SCHEMA_VERSION):
                for stmt in MIGRATIONS[target]:
                    cur.execute(
                        stmt.format(
                            norowid=self.norowid, serial_pk=self.serial_pk, value_columns=self.value_columns
                        )
                    )
            if version < SCHEMA_VERSION:
                cur.execute(self._sql("DELETE FROM meta WHERE key = ?"), ("schema_version",))
                cur.execute(
                    self._sql("INSERT INTO meta (key, value) VALUES (?, ?)"),
                    ("schema_version", str(SCHEMA_VERSION)),
                )
            conn.commit()
        except BaseException:
            conn.rollback()
            raise

    def _check_schema(self, conn: Any) -> None:
        """Readers read the schema they find: refuse one they cannot read, never change it."""
        cur = conn.cursor()
        try:
            cur.execute(self._sql("SELECT value FROM meta WHERE key = ?"), ("schema_version",))
            row = cur.fetchone()
        except Exception:  # no meta table: nothing of epochline's was ever committed here
            conn.rollback()
            raise StoreNotFoundError(
                f"no epochline store at {self.uri} (nothing recorded there yet)"
            ) from None
        finally:
            conn.rollback()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise StoreVersionError(
                f"the store at {self.uri} has schema version {version}, newer than this epochline "
                f"understands ({SCHEMA_VERSION}); upgrade epochline to read it"
            )
        if version < SCHEMA_VERSION:
            raise StoreVersionError(
                f"the store at {self.uri} has schema version {version}, older than this epochline's "
                f"({SCHEMA_VERSION}); upgrade it with: epochline upgrade --store {self.uri}"
            )

    # -- writing (the dispatcher thread only) ---------------------------------------------
    give_up_at: Optional[float] = None
    """While the store is away, writes are retried with backoff until this time (None: for ever).
    :meth:`epochline.Run.finish` sets it, so a store that never comes back cannot hang the exit."""
    away_since: Optional[float] = None
    """When the store stopped answering (locked, down, full), or None while it answers."""
    patience_s: Optional[float] = None
    """How long the dispatcher lets a full queue wait for this store before it drops values: set
    to :data:`CONTENTION_PATIENCE_S` while the store is only busy with other writers (the lock
    changes hands, the store makes progress), None (the dispatcher's own, short) otherwise."""

    def write(self, events: Sequence[ev.Event], deadline: Optional[float] = None) -> None:
        """Write a batch of events in one transaction, in order.

        While the store is away (locked by another process, server down, disk full) the batch is
        retried with backoff until ``deadline`` (else :attr:`give_up_at`, else for ever); then
        :class:`StoreAway`. A batch that fails because of some rows is retried in halves until
        only the events that truly cannot be written are left: those are dropped, and
        :class:`PartialWrite` says how many. A run whose start could not be written is never
        written in part: its later events are dropped too (and counted).
        """
        refused = 0
        if self._unrecorded:
            kept = [e for e in events if e.run_id not in self._unrecorded]
            refused = sum(ev.weight(e) for e in events if e.run_id in self._unrecorded)
            events = kept
        try:
            if events:
                self._write_retrying(events, deadline)
        except Exception as exc:
            if not self._is_row_error(exc):
                if not (isinstance(exc, StoreAway) and deadline is not None):
                    self._started_lost(events)  # else the caller queues the events again
                raise
            lost, first = self._isolate(events, deadline)
            if lost:
                raise PartialWrite(lost + refused, first) from first
        else:
            self._started_ok(events)
        if refused:
            raise PartialWrite(refused, RuntimeError("its run's start was never recorded"))

    def _started_ok(self, events: Sequence[ev.Event]) -> None:
        for e in events:
            if type(e) is ev.RunStarted:
                self.recorded.add(e.run_id)

    def _started_lost(self, events: Sequence[ev.Event]) -> None:
        for e in events:
            if type(e) is ev.RunStarted and e.run_id not in self.recorded:
                self._unrecorded.add(e.run_id)

    def _write_retrying(self, events: Sequence[ev.Event], deadline: Optional[float]) -> None:
        groups = _groups(events)
        if not groups:
            return
        delay = RETRY_FIRST_S
        while True:
            try:
                self._write_groups(groups)
                self.away_since = self.patience_s = None
                return
            except Exception as exc:
                self._reset_writer()
                if not self._is_away(exc):
                    raise
                contention = self._is_contention(exc)
                self.patience_s = CONTENTION_PATIENCE_S if contention else None
                now = time.time()
                if self.away_since is None:
                    self.away_since = now
                limit = deadline if deadline is not None else self.give_up_at
                if limit is not None and now + delay > limit:
                    raise StoreAway(
                        f"the store {self.uri} did not answer for "
                        f"{now - self.away_since:.1f} s ({type(exc).__name__}: "
                        f"{_one_line(exc)})"
                    ) from exc
                time.sleep(delay)
                if not contention:  # a busy lock is tried again at once: it changes hands often
                    delay = min(delay * 2, RETRY_MAX_S)

    def _isolate(self, events: Sequence[ev.Event], deadline: Optional[float]) -> Tuple[int, Exception]:
        """Write what can be written of a batch that failed on some rows: (events lost, first error).

        Bisects the batch (a metrics event into its single points), so a few bad rows cost a few
        extra transactions. Store-level errors (away, read-only) stop the search: the rest is lost.
        """
        lost = 0
        first: Optional[Exception] = None
        failed_leaves = 0
        pending: List[Sequence[ev.Event]] = [events]
        while pending:
            part = pending.pop()
            try:
                self._write_retrying(part, deadline)
                self._started_ok(part)
                continue
            except Exception as exc:
                if not self._is_row_error(exc) or failed_leaves >= MAX_FAILED_ROWS:
                    # the store itself failed (or nothing writes): everything not yet written is lost
                    rest = list(part) + [e for p in pending for e in p]
                    if not (isinstance(exc, StoreAway) and deadline is not None):
                        self._started_lost(rest)
                    return lost + sum(map(ev.weight, rest)), first or exc
                error = exc
            if len(part) > 1:
                half = len(part) // 2
                pending.append(part[half:])  # popped last: keeps the order of writes
                pending.append(part[:half])
                continue
            event = part[0]
            if type(event) is ev.Metrics and len(event.values) > 1:
                pending.extend(
                    [msgspec.structs.replace(event, values={k: v})]
                    for k, v in reversed(list(event.values.items()))
                )
                continue
            failed_leaves += 1
            first = first or error
            self._started_lost(part)
            lost += 1
        return lost, first  # type: ignore[return-value]

    def _write_groups(self, groups: List[Tuple[str, List[Any]]]) -> None:
        if self._writer is None:
            self._writer = self.connect_for_writing()
            self._series: Dict[str, Dict[str, Tuple[int, Optional[str]]]] = {}
        conn = self._writer
        cur = conn.cursor()
        self._begin(cur)
        try:
            for sql, rows in groups:
                if sql is _METRICS:
                    self._write_points(cur, rows)
                else:
                    cur.executemany(self._sql(sql), rows)
            conn.commit()
        except BaseException:
            conn.rollback()
            self._series = {}  # ids created in the rolled-back transaction are gone
            raise

    def _write_points(self, cur: Any, events: List[ev.Metrics]) -> None:
        cache = self._series
        points: List[tuple] = []
        append = points.append
        epochs: List[tuple] = []
        for e in events:
            run_id, step, t, stage = e.run_id, e.step, e.wall_time, e.stage
            series = cache.get(run_id)
            if series is None:
                series = cache[run_id] = {}
            for key, value in e.values.items():
                known = series.get(key)
                if known is None or (stage is not None and known[1] != stage):
                    known = series[key] = self._series_id(cur, run_id, key, value, stage)
                append((known[0], step, t, value))
            if e.epoch is not None:
                epochs.append((run_id, step, e.epoch))
        if len(cache[run_id]) > 8:
            # many series: insert each series' steps together (one B-tree region at a time); a
            # stable sort keeps "the later value of a step wins"
            points.sort(key=_SERIES_STEP)
        if self.value_columns != "value":
            point = self._point
            points = [point(*p) for p in points]
        cur.executemany(self._sql(self._POINT_SQL), points)
        if epochs:
            cur.executemany(
                self._sql(
                    "INSERT INTO steps (run_id, step, epoch) VALUES (?, ?, ?) "
                    "ON CONFLICT (run_id, step) DO UPDATE SET epoch = excluded.epoch"
                ),
                epochs,
            )

    def _series_id(
        self, cur: Any, run_id: str, key: str, value: Any, stage: Optional[str]
    ) -> Tuple[int, Optional[str]]:
        kind = KIND_BOOL if type(value) is bool else KIND_NUMBER
        cur.execute(
            self._sql(
                "INSERT INTO series (run_id, key, kind, stage) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (run_id, key) DO NOTHING"
            ),
            (run_id, key, kind, stage),
        )
        if stage is not None:
            cur.execute(
                self._sql("UPDATE series SET stage = ? WHERE run_id = ? AND key = ?"), (stage, run_id, key)
            )
        cur.execute(self._sql("SELECT id, stage FROM series WHERE run_id = ? AND key = ?"), (run_id, key))
        row = cur.fetchone()
        return int(row[0]), row[1] if stage is None else stage

    def _reset_writer(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:
                pass
            self._writer = None

    def close(self) -> None:
        self._reset_writer()
        if self._reader is not None:
            try:
                self._reader.close()
            except Exception:
                pass
            self._reader = None

    # -- reading --------------------------------------------------------------------------
    def open_reader(self) -> Any:
        """The read-only connection (opened on first use): refuses a store it cannot read."""
        if self._reader is None:
            conn = self._connect_readonly()
            try:
                self._check_schema(conn)
            except BaseException:
                conn.close()
                raise
            self._reader = conn
        return self._reader

    def query(self, sql: str, params: Iterable[Any] = ()) -> List[tuple]:
        """Rows of one read. Readers open the store read-only: no schema change, no write lock,
        so reading works on a read-only mount and never waits for a writer."""
        cur = self.open_reader().cursor()
        try:
            cur.execute(self._sql(sql), tuple(params))
            rows = cur.fetchall()
        finally:
            self._reader.commit()  # end the read transaction so the next query sees new writes
        return rows

    def resume_point(self, run_id: str) -> Optional[Dict[str, Any]]:
        """Name, path, last step and epoch records of an existing run (to resume it), or None."""
        rows = self.query("SELECT name, path FROM runs WHERE id = ?", (run_id,))
        if not rows:
            return None
        step = self.query(
            "SELECT MAX(m.step) FROM metrics m JOIN series s ON s.id = m.series "
            "WHERE s.run_id = ? AND (s.stage IS NULL OR s.stage <> ?)",
            (run_id, _context.SYSTEM_STAGE),
        )[0][0]
        samples = self.query(
            "SELECT MAX(m.step) FROM metrics m JOIN series s ON s.id = m.series "
            "WHERE s.run_id = ? AND s.stage = ?",
            (run_id, _context.SYSTEM_STAGE),
        )[0][0]
        epochs = {
            int(e): (ev.loads_value(v), total)
            for e, v, total in self.query(
                "SELECT epoch, vals, total_epochs FROM epochs WHERE run_id = ? ORDER BY epoch", (run_id,)
            )
        }
        totals = [t for _, t in epochs.values() if t is not None]
        return {
            "name": rows[0][0],
            "path": rows[0][1],
            "step": -1 if step is None else int(step),
            "system_step": -1 if samples is None else int(samples),
            "epochs": {e: v for e, (v, _) in epochs.items()},
            "total_epochs": int(totals[-1]) if totals else None,
        }


def _groups(events: Sequence[ev.Event]) -> List[Tuple[str, List[Any]]]:
    """Consecutive events of one kind as (sql, rows) groups, in order: one executemany each."""
    groups: List[Tuple[str, List[Any]]] = []
    metrics, system = ev.Metrics, ev.SystemMetrics
    for event in events:
        if type(event) is metrics or type(event) is system:  # the bulk: expanded in _write_points
            if groups and groups[-1][0] is _METRICS:
                groups[-1][1].append(event)
            else:
                groups.append((_METRICS, [event]))
            continue
        handler = _WRITERS.get(type(event))
        if handler is None:
            continue
        for sql, rows in handler(event):
            if groups and groups[-1][0] == sql:
                groups[-1][1].extend(rows)
            else:
                groups.append((sql, list(rows)))
    return groups


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# -- one writer per event type: (sql, rows) pairs ------------------------------------------------
_METRICS = "metrics"
"""Marker: this group holds Metrics events, expanded into points by Backend._write_points."""
_RUN_UPSERT = """INSERT INTO runs (id, name, path, alias, framework, status, host, pid, pid_start,
    start_time, heartbeat) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET status = 'running', reason = NULL, end_time = NULL,
    host = excluded.host, pid = excluded.pid, pid_start = excluded.pid_start,
    heartbeat = excluded.heartbeat"""
_PARAM_UPSERT = """INSERT INTO params (run_id, key, value, counts) VALUES (?, ?, ?, ?)
    ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, counts = excluded.counts"""
_TAG_INSERT = "INSERT INTO tags (run_id, tag) VALUES (?, ?) ON CONFLICT (run_id, tag) DO NOTHING"
_SUMMARY_UPSERT = """INSERT INTO summary (run_id, key, value) VALUES (?, ?, ?)
    ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value"""
_MEDIA_INSERT = """INSERT INTO media (run_id, kind, key, step, wall_time, path, caption, width,
    height, size, sha256, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
_TEXT_INSERT = "INSERT INTO texts (run_id, wall_time, kind, level, logger, text) VALUES (?, ?, ?, ?, ?, ?)"


def _w_run_started(e: ev.RunStarted):
    yield (
        _RUN_UPSERT,
        [
            (
                e.run_id,
                e.name,
                e.path,
                e.alias,
                e.framework,
                e.host,
                e.pid,
                e.pid_start,
                e.wall_time,
                e.wall_time,
            )
        ],
    )
    if e.tags:
        yield _TAG_INSERT, [(e.run_id, t) for t in e.tags]


def _w_params(e: ev.Params):
    ignored = set(e.ignored)
    yield (
        _PARAM_UPSERT,
        [(e.run_id, k, ev.dumps_value(v), 0 if k in ignored else 1) for k, v in e.params.items()],
    )


def _w_image(e: ev.Image):
    yield (
        _MEDIA_INSERT,
        [
            (
                e.run_id,
                "image",
                e.key,
                e.step,
                e.wall_time,
                e.media,
                e.caption,
                e.width,
                e.height,
                None,
                None,
                None,
            )
        ],
    )


def _w_artifact(e: ev.Artifact):
    yield (
        _MEDIA_INSERT,
        [
            (
                e.run_id,
                "artifact",
                e.name,
                None,
                e.wall_time,
                e.media,
                None,
                None,
                None,
                e.size,
                e.sha256,
                e.source,
            )
        ],
    )


def _w_text(e: ev.Text):
    yield _TEXT_INSERT, [(e.run_id, e.wall_time, "text", e.level, e.logger, e.text)]


def _w_comment(e: ev.Comment):
    yield _TEXT_INSERT, [(e.run_id, e.wall_time, "comment", None, None, e.text)]


def _w_tag(e: ev.Tag):
    yield _TAG_INSERT, [(e.run_id, e.tag)]


def _w_untag(e: ev.Untag):
    yield "DELETE FROM tags WHERE run_id = ? AND tag = ?", [(e.run_id, e.tag)]


def _w_rename(e: ev.Rename):
    yield "UPDATE runs SET name = ? WHERE id = ?", [(e.name, e.run_id)]


def _w_plot(e: ev.PlotDeclared):
    yield (
        """INSERT INTO plots (run_id, name, kind, y_label, metrics) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (run_id, name) DO UPDATE SET kind = excluded.kind,
           y_label = excluded.y_label, metrics = excluded.metrics""",
        [(e.run_id, e.name, e.kind, e.y_label, json.dumps(list(e.metrics)))],
    )


def _w_histogram(e: ev.Histogram):
    data = {
        "min": e.min,
        "max": e.max,
        "num": e.num,
        "bucket_limits": list(e.bucket_limits),
        "bucket_counts": list(e.bucket_counts),
        "sum": e.sum,
        "sum_squares": e.sum_squares,
    }
    yield (
        """INSERT INTO histograms (run_id, key, step, wall_time, data) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (run_id, key, step) DO UPDATE SET wall_time = excluded.wall_time,
           data = excluded.data""",
        [(e.run_id, e.key, e.step, e.wall_time, ev.dumps_value(data))],
    )


def _w_summary(e: ev.SummaryUpdate):
    yield _SUMMARY_UPSERT, [(e.run_id, k, ev.dumps_value(v)) for k, v in e.values.items()]


def _w_primary(e: ev.PrimaryMetric):
    yield ("UPDATE runs SET primary_metric = ?, primary_mode = ? WHERE id = ?", [(e.name, e.mode, e.run_id)])


def _w_epoch(e: ev.EpochEnd):
    yield (
        """INSERT INTO epochs (run_id, epoch, total_epochs, wall_time, vals, percent)
           VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, epoch) DO UPDATE SET
           total_epochs = excluded.total_epochs, wall_time = excluded.wall_time,
           vals = excluded.vals, percent = excluded.percent""",
        [
            (
                e.run_id,
                e.epoch,
                e.total_epochs,
                e.wall_time,
                ev.dumps_value(e.values),
                json.dumps(list(e.percent)),
            )
        ],
    )


def _w_finished(e: ev.RunFinished):
    yield (
        "UPDATE runs SET status = ?, reason = ?, end_time = ?, heartbeat = ?, lost = lost + ? WHERE id = ?",
        [(e.status, e.reason, e.wall_time, e.wall_time, e.lost, e.run_id)],
    )


def _w_heartbeat(e: ev.Heartbeat):
    yield "UPDATE runs SET heartbeat = ? WHERE id = ?", [(e.wall_time, e.run_id)]


_WRITERS: Dict[type, Callable[[Any], Iterable[Tuple[str, List[tuple]]]]] = {
    ev.RunStarted: _w_run_started,
    ev.Params: _w_params,
    ev.Image: _w_image,
    ev.Artifact: _w_artifact,
    ev.Text: _w_text,
    ev.Comment: _w_comment,
    ev.Tag: _w_tag,
    ev.Untag: _w_untag,
    ev.Rename: _w_rename,
    ev.PlotDeclared: _w_plot,
    ev.Histogram: _w_histogram,
    ev.SummaryUpdate: _w_summary,
    ev.PrimaryMetric: _w_primary,
    ev.EpochEnd: _w_epoch,
    ev.RunFinished: _w_finished,
    ev.Heartbeat: _w_heartbeat,
    **_context.WRITERS,  # type: ignore[dict-item]  # msgspec Struct classes are types at run time
}
