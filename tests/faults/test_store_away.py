"""A store that is away for a while: locked by another process, a PostgreSQL server that is down at
``init`` or stops during the run, a server that never comes back. Nothing is lost while the queue
has room; what cannot be written is reported, and a run is never stored in part."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
import warnings

import pytest

import epochline
from epochline import dispatch

from .pgcluster import wait_until


def _log(run, start, n, every=0.0):
    for step in range(start, start + n):
        run.log({"loss": 1.0 / (step + 1), "step_x2": step * 2}, step=step)
        if every and step % 500 == 0:
            time.sleep(every)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    return out, [str(w.message) for w in caught]


def test_postgres_down_at_init_then_back(cluster, pg_own, reliability):
    cluster.stop()
    path = f"faults/pg-down-init/{uuid.uuid4().hex}"
    started = time.perf_counter()
    run, said = _quiet(epochline.init, path, store=pg_own, flush_interval=0.05)
    took = time.perf_counter() - started
    assert took < 15  # never the unbounded wait of old; START_TIMEOUT_S plus one connect attempt
    assert any("did not answer" in m and "kept in memory" in m for m in said), said
    assert all("s3cretPW" not in m for m in said)
    _log(run, 0, 5000)  # the server is down for all of these
    cluster.start()
    _log(run, 5000, 5000)
    _, said = _quiet(run.finish)
    assert run.lost == 0 and run.recorded and not [m for m in said if "not recorded" in m]
    with epochline.open(pg_own) as store:
        view = store.runs(path=path)[0]
        kept = len(view.metrics("loss"))
        assert kept == 10000 and len(view.metrics("step_x2")) == 10000
        assert view.status == "completed" and view.lost == 0
    reliability(
        f"PostgreSQL down at init, back after 5,000 steps (init took {took:.1f} s)",
        20000,
        2 * kept,
        view.status,
        lost=run.lost,
    )


def test_postgres_outage_during_the_run_loses_nothing(cluster, pg_own, reliability):
    path = f"faults/pg-outage/{uuid.uuid4().hex}"
    run = epochline.init(path, store=pg_own, flush_interval=0.05)
    _log(run, 0, 4000)
    cluster.stop()
    outage = time.perf_counter()
    _, said = _quiet(_log, run, 4000, 4000, every=0.3)  # about 3 s of training with no server
    assert not cluster.is_up()
    cluster.start()
    outage = time.perf_counter() - outage
    _log(run, 8000, 4000)
    _, said = _quiet(run.finish)
    assert run.lost == 0, said
    with epochline.open(pg_own) as store:
        view = store.runs(path=path)[0]
        assert [s for _, s, _ in view.metrics("loss")] == list(range(12000))
        assert view.status == "completed" and view.lost == 0
    reliability(
        f"PostgreSQL stopped for {outage:.1f} s during the run",
        24000,
        2 * len(view.metrics("loss")),
        view.status,
        lost=run.lost,
    )


def test_a_full_queue_while_the_store_is_away_drops_only_the_overflow(
    cluster, pg_own, monkeypatch, reliability
):
    monkeypatch.setattr(dispatch, "STALL_S", 0.5)
    path = f"faults/pg-overflow/{uuid.uuid4().hex}"
    # a small bound (values + 4 a call) so the test overflows it quickly
    run = epochline.init(path, store=pg_own, flush_interval=0.05, max_queue=2000)
    _log(run, 0, 500)
    cluster.stop()
    _, said = _quiet(_log, run, 500, 3000, every=0.2)
    assert any("newer values are dropped" in m for m in said), said
    cluster.start()
    queue = run._dispatcher
    assert wait_until(lambda: queue._in == queue._out)  # the writer is back and has caught up
    dropped = queue.dropped
    assert 0 < dropped <= 2 * 3000
    _log(run, 3500, 500)
    _, said = _quiet(run.finish)
    with epochline.open(pg_own) as store:
        view = store.runs(path=path)[0]
        kept = len(view.metrics("loss")) + len(view.metrics("step_x2"))
        assert view.status == "completed"  # the final status is written even after a loss
        assert run.lost == dropped == view.lost == 2 * 4000 - kept, (said, run._dispatcher.report())
        steps = [s for _, s, _ in view.metrics("loss")]
        assert steps[:500] == list(range(500)) and steps[-500:] == list(range(3500, 4000))
    assert any(f"{dropped} of" in m and "dropped" in m for m in said), said
    reliability(
        "PostgreSQL away with the queue full (bound lowered to 2,000)", 8000, kept, view.status, lost=run.lost
    )


def test_a_server_that_never_comes_back_leaves_no_half_run(cluster, pg_own, monkeypatch, capfd, reliability):
    monkeypatch.setenv("EPOCHLINE_FINISH_TIMEOUT", "1")
    cluster.stop()
    path = f"faults/pg-never/{uuid.uuid4().hex}"
    run, _ = _quiet(epochline.init, path, store=pg_own, flush_interval=0.05)
    _log(run, 0, 2000)
    _quiet(run.finish)
    assert not run.recorded and run.status == "completed" and run.lost >= 4000
    err = capfd.readouterr().err
    assert f"run {run.id} was NOT recorded" in err and "s3cretPW" not in err
    cluster.start()
    with epochline.open(pg_own) as store:
        assert store.runs(path=path) == []
        assert store.backend.query("SELECT COUNT(*) FROM series WHERE run_id = ?", (run.id,)) == [(0,)]
    reliability(
        "PostgreSQL down for the whole run (finish gives up after 1 s)",
        4000,
        0,
        lost=run.lost,
        status="absent; finish says NOT recorded",
    )


LOCKER = textwrap.dedent("""
    import os, sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    while not os.path.exists(sys.argv[2]):
        time.sleep(0.02)
    conn.execute("ROLLBACK")
    print("released", flush=True)
""")


@pytest.fixture
def locked_store(tmp_path):
    """(store, release file, locker process): a store whose write lock another process holds
    until ``release`` exists."""
    store = tmp_path / "store"
    epochline.init("faults/first", store=store).finish()  # the store exists
    script, release = tmp_path / "locker.py", tmp_path / "release"
    script.write_text(LOCKER)
    locker = subprocess.Popen(
        [sys.executable, str(script), str(store / "epochline.db"), str(release)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert locker.stdout.readline().strip() == "locked"
        yield store, release, locker
    finally:
        locker.kill()
        locker.wait()
        locker.stdout.close()


def test_sqlite_locked_by_another_process_at_init(locked_store, reliability):
    store, release, locker = locked_store
    started = time.perf_counter()
    run, said = _quiet(epochline.init, "faults/locked", store=store, flush_interval=0.05)
    took = time.perf_counter() - started
    assert took < 15  # was 60 s (busy_timeout), then every event of the run was dropped
    assert any("kept in memory" in m for m in said), said
    _log(run, 0, 5000)  # while the other process still holds the lock
    assert locker.poll() is None
    release.write_text("go")
    assert locker.stdout.readline().strip() == "released"
    _log(run, 5000, 5000)
    _, said = _quiet(run.finish)
    assert run.lost == 0 and run.recorded, said
    with epochline.open(store) as reader:
        view = reader.run(run.id)
        assert [s for _, s, _ in view.metrics("loss")] == list(range(10000))
        assert view.status == "completed"
    reliability(
        f"SQLite locked by another process at init (init took {took:.1f} s)",
        20000,
        2 * len(view.metrics("loss")),
        view.status,
        lost=run.lost,
    )


def test_a_full_queue_waits_for_a_busy_sqlite_lock_instead_of_dropping(
    locked_store, monkeypatch, reliability
):
    """Other processes holding the lock (several writers on one store) is not a store that is
    away: a full queue waits for the lock (back-pressure) and loses nothing."""
    monkeypatch.setattr(dispatch, "STALL_S", 0.3)  # an away store would make it drop at once
    store, release, _ = locked_store
    run, _ = _quiet(epochline.init, "faults/busy", store=store, flush_interval=0.05, max_queue=600)
    timer = threading.Timer(1.5, release.write_text, ("go",))
    timer.start()
    _, said = _quiet(_log, run, 0, 3000)  # fills the queue many times over while locked
    timer.join()
    _, said2 = _quiet(run.finish)
    assert run.lost == 0, said + said2  # lost counts the values dropped from a full queue too
    with epochline.open(store) as reader:
        view = reader.run(run.id)
        assert [s for _, s, _ in view.metrics("loss")] == list(range(3000))
    reliability(
        "SQLite lock held 1.5 s by another process, queue full (bound 600)",
        6000,
        2 * len(view.metrics("loss")),
        view.status,
        lost=run.lost,
    )


KILLED = textwrap.dedent("""
    import os, signal, sys, epochline
    run = epochline.init("faults/killed", store=sys.argv[1])
    print(run.id, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
""")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_process_killed_right_after_init_leaves_a_crashed_run(backend, tmp_path, request, reliability):
    store = str(tmp_path / "store")
    if backend == "postgresql":
        store = request.getfixturevalue("pg_own")
    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    child = subprocess.run([sys.executable, str(script), store], capture_output=True, text=True, timeout=60)
    assert child.returncode == -signal.SIGKILL
    run_id = child.stdout.strip()
    with epochline.open(store) as reader:
        view = reader.run(run_id)
        assert view.status == "crashed" and view.path == "faults/killed"
    reliability(
        f"kill -9 right after init ({backend})",
        0,
        0,
        "crashed (the run exists)",
        survived="n/a: the process was ended on purpose",
    )
