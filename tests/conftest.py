"""Shared fixtures. Every test gets its own store directory: tests run in parallel (xdist)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("KERAS_BACKEND", "torch")


@pytest.fixture
def store_dir(tmp_path, monkeypatch):
    """A fresh store directory, also set as EPOCHLINE_STORE so default init() lands there."""
    path = tmp_path / "store"
    monkeypatch.setenv("EPOCHLINE_STORE", str(path))
    monkeypatch.delenv("EPOCHLINE_EMIT", raising=False)
    monkeypatch.delenv("EPOCHLINE_DISABLED", raising=False)
    return path


@pytest.fixture
def store(store_dir):
    """The read API over ``store_dir`` (opened after the test's runs have finished)."""
    import epochline

    class Opener:
        def __call__(self):
            return epochline.open(store_dir)

    return Opener()


@pytest.fixture
def plugin():
    """``plugin(obj, name=None)`` registers a plugin for this test and returns it; every plugin
    registered this way is unregistered when the test ends, passed or failed."""
    import epochline

    names = []

    def register(obj, name=None):
        names.append(epochline.register(obj, name=name))
        return obj

    yield register
    for name in reversed(names):
        epochline.unregister(name=name)


@pytest.fixture(params=["sqlite", "postgres"])
def backend_uri(request, tmp_path, monkeypatch):
    """A store URI of each backend: SQLite in tmp_path, and the PostgreSQL server of
    EPOCHLINE_TEST_POSTGRES (skipped without it; tests there share one database, so they find
    their runs by a unique path), its media in tmp_path."""
    monkeypatch.delenv("EPOCHLINE_EMIT", raising=False)
    if request.param == "sqlite":
        return str(tmp_path / "store")
    uri = os.environ.get("EPOCHLINE_TEST_POSTGRES")
    if not uri:
        pytest.skip("EPOCHLINE_TEST_POSTGRES is not set")
    sep = "&" if "?" in uri else "?"
    return f"{uri}{sep}media={tmp_path / 'media'}"
