"""PostgreSQL: the same schema and code as the embedded store, for teams that share one server.

``store="postgresql://user:password@host:5432/dbname?media=/shared/epochline-media"``. psycopg 3 is
needed (``pip install epochline[postgres]``) and imported only when such a URI is used. Media files
(images, artifacts) live in a directory, not in the database: ``media=`` in the URI, else
``EPOCHLINE_MEDIA``, else ``./epochline-runs/media``; point it at a filesystem all writers share.

Passwords: leave them out of the URI and let libpq find them as it always does, in ``PGPASSWORD``
or the password file (``~/.pgpass``, or ``PGPASSFILE``). A password written in the URI works too,
but is shown and stored only as ``***`` (``epochline ls``, warnings, ``run.store_uri``).

Differences from SQLite: integer metric values read back as floats (one DOUBLE PRECISION column
holds every number); everything else reads back the same.

While the server is down or restarting the writer keeps the run's events in memory (bounded, see
docs/reliability.md) and retries with backoff; readers fail with one clear line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Tuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..plugins import hookimpl
from . import DEFAULT_DIR, redact_text
from .base import Backend

SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")
_LOCK_ID = 0x65706F63  # "epoc": serialises schema migrations across writers
_PERMANENT_WORDS = ("password", "authentication", "pg_hba.conf", "does not exist", "permission denied")
CONNECT_TIMEOUT_S = 2
"""libpq's connect_timeout (seconds; 2 is its minimum): an unreachable server costs one try this
long, then the writer's retry with backoff takes over (readers report it)."""


class PostgresBackend(Backend):
    placeholder = "%s"

    def __init__(self, conninfo: str, uri: str, media_root: Path):
        super().__init__(uri, media_root)
        self.conninfo = conninfo
        import psycopg

        self.retryable = (
            psycopg.errors.SerializationFailure,
            psycopg.errors.DeadlockDetected,
            psycopg.OperationalError,
        )
        self.row_errors = Backend.row_errors + (psycopg.DataError, psycopg.IntegrityError)

    def _connect(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(self.conninfo, autocommit=False, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error as exc:  # libpq's message may quote the conninfo: never its password
            raise type(exc)(redact_text(str(exc), self.conninfo)) from None

    def _is_away(self, exc: Exception) -> bool:
        """Down, restarting, unreachable, disk full: retry. Refused credentials or a database
        that does not exist will not heal by waiting: those fail at once."""
        if not isinstance(exc, self.retryable):
            return False
        text = str(exc).lower()
        return not any(w in text for w in _PERMANENT_WORDS)

    def _connect_readonly(self) -> Any:
        conn = self._connect()
        conn.read_only = True  # every transaction of a reader is READ ONLY: it cannot write
        return conn

    def _begin(self, cur: Any) -> None:
        pass  # psycopg opens a transaction with the first statement

    def _lock_schema(self, cur: Any) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))


def split_uri(uri: str) -> Tuple[str, Optional[str]]:
    """(libpq connection URI without our ``media`` parameter, media directory or None)."""
    parts = urlsplit(uri.replace("postgresql+psycopg://", "postgresql://", 1))
    query = parse_qsl(parts.query, keep_blank_values=True)
    media = next((v for k, v in query if k == "media"), None)
    rest = urlencode([(k, v) for k, v in query if k != "media"])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment)), media


@hookimpl
def epochline_store_backend(uri: str, create: bool) -> Optional[Backend]:
    if not uri.startswith(SCHEMES):
        return None
    conninfo, media = split_uri(uri)
    media_root = Path(media or os.environ.get("EPOCHLINE_MEDIA") or Path(DEFAULT_DIR) / "media")
    return PostgresBackend(conninfo, uri, media_root)
