"""The fault suite: each test meets a real fault (a lock held by another process, a PostgreSQL
server of its own stopped and started, a full tmpfs, a read-only mount, hostile values).

Run it alone with ``pytest -m faults -p no:xdist``; with ``EPOCHLINE_RELIABILITY_TABLE=FILE`` set,
the figures each test measured are written to FILE as the table of docs/reliability.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Union

import pytest

_ROWS: List[tuple] = []


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.faults)


@pytest.fixture(scope="session")
def _reliability_table():
    yield _ROWS
    target = os.environ.get("EPOCHLINE_RELIABILITY_TABLE")
    if target and _ROWS:
        lines = [
            "| case | logged | kept | reported lost | status read back | training survived |",
            "|---|---:|---:|---:|---|---|",
        ]
        lines += [
            f"| {case} | {logged:,} | {kept:,} | {'-' if lost is None else f'{lost:,}'} | "
            f"{status} | {survived} |"
            for case, logged, kept, lost, status, survived in sorted(_ROWS)
        ]
        Path(target).write_text("\n".join(lines) + "\n")


@pytest.fixture
def reliability(_reliability_table):
    """``reliability(case, logged, kept, status, lost=, survived=)``: one row of the reliability
    table (values logged, values read back, what the run reported lost, the status read back)."""

    def record(
        case: str,
        logged: int,
        kept: int,
        status: str,
        lost: Optional[int] = None,
        survived: Union[bool, str] = True,
    ) -> None:
        said = survived if isinstance(survived, str) else ("yes" if survived else "NO")
        _reliability_table.append((case, logged, kept, lost, status, said))

    return record


@pytest.fixture(scope="session")
def cluster():
    """A PostgreSQL server of this test session's own (its own data dir and port), which tests
    stop and start; skipped where the server binaries cannot run."""
    from .pgcluster import Cluster

    try:
        server = Cluster()
    except Exception as exc:  # no binaries, no postgres user, initdb refused: say which
        pytest.skip(f"cannot start a PostgreSQL server of the test's own: {exc}")
    yield server
    server.destroy()


@pytest.fixture
def pg_own(cluster, tmp_path):
    """The own server's URI (password in it), running at the start and at the end of the test."""
    if not cluster.is_up():
        cluster.start()
    yield cluster.uri(media=str(tmp_path / "media"))
    if not cluster.is_up():
        cluster.start()
