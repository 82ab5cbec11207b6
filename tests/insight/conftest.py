"""Stores for the insight tests: the embedded SQLite store and, when EPOCHLINE_TEST_POSTGRES is set,
the CI's PostgreSQL server (each test gets its own database schema-free namespace: runs are found
by a unique path prefix)."""

from __future__ import annotations

import os
import uuid

import pytest

PG = os.environ.get("EPOCHLINE_TEST_POSTGRES")


@pytest.fixture(params=["sqlite", "postgres"])
def backend_uri(request, tmp_path, monkeypatch):
    """A store URI of each backend (PostgreSQL skipped without EPOCHLINE_TEST_POSTGRES)."""
    monkeypatch.delenv("EPOCHLINE_EMIT", raising=False)
    if request.param == "sqlite":
        return str(tmp_path / "store")
    if not PG:
        pytest.skip("EPOCHLINE_TEST_POSTGRES is not set")
    sep = "&" if "?" in PG else "?"
    return f"{PG}{sep}media={tmp_path / 'media'}"


@pytest.fixture
def prefix():
    """A path prefix no other test uses (PostgreSQL tests share one database)."""
    return f"t{uuid.uuid4().hex[:12]}"
