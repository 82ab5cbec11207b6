"""Fixtures of the insight tests; ``backend_uri`` (SQLite and the test PostgreSQL) is the shared one
of tests/conftest.py."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def prefix():
    """A path prefix no other test uses (PostgreSQL tests share one database)."""
    return f"t{uuid.uuid4().hex[:12]}"
