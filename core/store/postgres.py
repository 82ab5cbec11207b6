"""PostgreSQL: the same schema and code as the embedded store, for teams that share one server.

``store="postgresql://user:password@host:5432/dbname?media=/shared/epochline-media"``. psycopg 3 is
needed (``pip install epochline[postgres]``) and imported only when such a URI is used. Media files
(images, artifacts) live in a directory, not in the database: ``media=`` in the URI, else
``EPOCHLINE_MEDIA``, else ``./epochline-runs/media``; point it at a filesystem all writers share.

Differences from SQLite: integer metric values read back as floats (one DOUBLE PRECISION column
holds every number); everything else reads back the same.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Tuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..plugins import hookimpl
from . import DEFAULT_DIR
from .base import Backend

SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")
_LOCK_ID = 0x65706F63  # "epoc": serialises schema migrations across writers


class PostgresBackend(Backend):
    placeholder = "%s"

    def __init__(self, conninfo: str, uri: str, media_root: Path):
        super().__init__(uri, media_root)
        self.conninfo = conninfo
        import psycopg

        self.retryable = (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected,
                          psycopg.OperationalError)

    def _connect(self) -> Any:
        import psycopg

        return psycopg.connect(self.conninfo, autocommit=False)

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
    if create:
        media_root.mkdir(parents=True, exist_ok=True)
    backend = PostgresBackend(conninfo, uri, media_root)
    backend.migrate(create)
    return backend
