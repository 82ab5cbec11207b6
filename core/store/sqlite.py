"""The embedded default store: one SQLite file (WAL) plus a media folder, in one directory.

``store=`` may be a directory path (created if missing when a run starts; never when reading) or ``sqlite:///path/to/dir``. Several
processes may write the same store at once: each writes whole batches in ``BEGIN IMMEDIATE``
transactions and waits (``busy_timeout``) rather than failing while another holds the lock.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Optional

from ..errors import StoreNotFoundError
from ..plugins import hookimpl
from . import path_from_uri
from .base import Backend

DB_NAME = "epochline.db"
MEDIA_DIR = "media"
BUSY_TIMEOUT_S = 60.0


class SQLiteBackend(Backend):
    norowid = " WITHOUT ROWID"
    serial_pk = "INTEGER PRIMARY KEY"
    # no declared type: SQLite keeps each int, float and text value as it was given
    value_columns = "value"
    retryable = (sqlite3.OperationalError,)
    _POINT_SQL = ("INSERT INTO metrics (series, step, wall_time, value) VALUES (?, ?, ?, ?) "
                  "ON CONFLICT (series, step) DO UPDATE SET wall_time = excluded.wall_time, "
                  "value = excluded.value")
    POINT_COLUMNS = "m.value"
    # points bind as (series, step, wall_time, value): NaN binds as NULL, bools as 0/1

    def __init__(self, directory: Path, uri: Optional[str] = None):
        self.directory = Path(directory)
        self.db_path = self.directory / DB_NAME
        super().__init__(uri or str(self.directory), self.directory / MEDIA_DIR)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.db_path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL keeps every committed transaction across a process crash (kill -9);
        # only an OS crash or power loss can cost the last transactions.
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _begin(self, cur) -> None:
        cur.execute("BEGIN IMMEDIATE")

    def _is_retryable(self, exc: Exception) -> bool:
        text = str(exc).lower()
        return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


@hookimpl(trylast=True)
def epochline_store_backend(uri: str, create: bool) -> Optional[Backend]:
    directory = path_from_uri(uri)
    if directory is None:
        return None
    directory = directory.expanduser()
    if create:
        os.makedirs(directory / MEDIA_DIR, exist_ok=True)
    elif not (directory / DB_NAME).is_file():
        raise StoreNotFoundError(f"no store at {directory} (nothing recorded there yet); "
                                 "give --store or set EPOCHLINE_STORE")
    backend = SQLiteBackend(directory, uri)
    backend.migrate(create)
    return backend
