"""The embedded default store: one SQLite file (WAL) plus a media folder, in one directory.

``store=`` may be a directory path (created by the first write of a run; never by reading) or ``sqlite:///path/to/dir``.
Several processes may write the same store at once: each writes whole batches in ``BEGIN
IMMEDIATE`` transactions; while another process holds the lock the writer retries with backoff
(see :meth:`Backend.write`) rather than failing. Readers open the file read-only (``mode=ro``):
they never create, migrate or lock it for writing, so they work on a read-only mount and do not
wait for writers (WAL lets readers and one writer work at once).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Optional
from urllib.parse import quote

from ..errors import StoreNotFoundError
from ..plugins import hookimpl
from . import path_from_uri
from .base import Backend

DB_NAME = "epochline.db"
MEDIA_DIR = "media"
BUSY_TIMEOUT_S = 0.5
"""How long one write attempt waits for another process's lock before the writer's own retry
(with backoff, bounded by the caller's deadline) takes over; readers wait this long at most too."""
_AWAY_WORDS = ("locked", "busy", "full", "disk i/o")


class SQLiteBackend(Backend):
    norowid = " WITHOUT ROWID"
    serial_pk = "INTEGER PRIMARY KEY"
    # no declared type: SQLite keeps each int, float and text value as it was given
    value_columns = "value"
    hash_grouping = False
    retryable = (sqlite3.OperationalError,)
    row_errors = Backend.row_errors + (
        sqlite3.IntegrityError,
        sqlite3.DataError,
        sqlite3.ProgrammingError,
        sqlite3.InterfaceError,
    )
    _POINT_SQL = (
        "INSERT INTO metrics (series, step, wall_time, value) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (series, step) DO UPDATE SET wall_time = excluded.wall_time, "
        "value = excluded.value"
    )
    POINT_COLUMNS = "m.value"
    # points bind as (series, step, wall_time, value): NaN binds as NULL, bools as 0/1

    def __init__(self, directory: Path, uri: Optional[str] = None):
        self.directory = Path(directory)
        self.db_path = self.directory / DB_NAME
        super().__init__(uri or str(self.directory), self.directory / MEDIA_DIR)

    def _connect(self) -> sqlite3.Connection:
        os.makedirs(self.directory / MEDIA_DIR, exist_ok=True)
        conn = sqlite3.connect(
            str(self.db_path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            # In WAL mode NORMAL keeps every committed transaction across a process crash (kill -9);
            # only an OS crash or power loss can cost the last transactions.
            conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect_readonly(self) -> sqlite3.Connection:
        if not self.db_path.is_file():
            raise StoreNotFoundError(f"no store at {self.directory} (nothing recorded there yet)")
        target = "file:" + quote(str(self.db_path.resolve()))
        try:
            conn = self._open_ro(target + "?mode=ro")
        except sqlite3.OperationalError:
            # A WAL database on a read-only directory or mount whose -shm file is gone (the last
            # writer closed cleanly) cannot be opened for shared reading; nothing can write
            # there either, so it is read as an immutable file.
            if os.access(self.directory, os.W_OK) and not _read_only_mount(self.directory):
                raise
            conn = self._open_ro(target + "?mode=ro&immutable=1")
        return conn

    @staticmethod
    def _open_ro(uri: str) -> sqlite3.Connection:
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        except BaseException:
            conn.close()
            raise
        return conn

    def _begin(self, cur) -> None:
        cur.execute("BEGIN IMMEDIATE")

    def _is_away(self, exc: Exception) -> bool:
        text = str(exc).lower()
        return isinstance(exc, sqlite3.OperationalError) and any(w in text for w in _AWAY_WORDS)

    def _is_contention(self, exc: Exception) -> bool:
        text = str(exc).lower()
        return "locked" in text or "busy" in text


def _read_only_mount(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


@hookimpl(trylast=True)
def epochline_store_backend(uri: str, create: bool) -> Optional[Backend]:
    directory = path_from_uri(uri)
    if directory is None:
        return None
    directory = directory.expanduser()
    if not create and not (directory / DB_NAME).is_file():
        raise StoreNotFoundError(
            f"no store at {directory} (nothing recorded there yet); give --store or set EPOCHLINE_STORE"
        )
    return SQLiteBackend(directory, uri)
