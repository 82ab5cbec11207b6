"""Reading is read-only and never waits for a writer: read-only mounts, another process's lock,
a store of an older schema."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

import epochline

EPOCHLINE = [sys.executable, "-m", "epochline"]


def _cli(*args, timeout=60):
    return subprocess.run(EPOCHLINE + list(args), capture_output=True, text=True, timeout=timeout)


def _make_store(path, n=100):
    with epochline.init("faults/ro", store=path, params={"lr": 0.1}) as run:
        for step in range(n):
            run.log({"loss": 1.0 / (step + 1)}, step=step)
    return run.id


@pytest.fixture
def read_only_mount(tmp_path):
    """(writable store dir, the same dir bind-mounted read-only): a real read-only filesystem."""
    source, view = tmp_path / "store", tmp_path / "ro"
    source.mkdir()
    view.mkdir()
    done = subprocess.run(["mount", "--bind", str(source), str(view)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount here (needs root and mount(8)): {done.stderr.strip()}")
    done = subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], capture_output=True, text=True)
    try:
        if done.returncode != 0:
            pytest.skip(f"cannot remount read-only here: {done.stderr.strip()}")
        yield source, view
    finally:
        subprocess.run(["umount", str(view)], check=False)


def test_ls_show_and_open_work_on_a_read_only_mount(read_only_mount, reliability):
    source, view = read_only_mount
    run_id = _make_store(source)
    assert not os.access(view / "probe", os.F_OK)
    with pytest.raises(OSError):
        (view / "probe").write_text("x")  # the mount really is read-only
    listed = _cli("ls", "--store", str(view), "--json")
    assert listed.returncode == 0, listed.stderr
    assert [r["id"] for r in json.loads(listed.stdout)] == [run_id]
    shown = _cli("show", run_id, "--store", str(view), "--json")
    assert shown.returncode == 0, shown.stderr
    assert len(json.loads(shown.stdout)["metrics"]["loss"]) == 100
    with epochline.open(view) as store:
        kept = len(store.run(run_id).metrics("loss"))
        status = store.run(run_id).status
    reliability("read back from a read-only mount (ls, show, open)", 100, kept, status)


LOCKER = textwrap.dedent("""
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    conn.execute("UPDATE runs SET name = 'renamed-but-not-committed'")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    conn.execute("ROLLBACK")
""")


def test_ls_does_not_wait_for_another_processs_write_lock(tmp_path, reliability):
    store = tmp_path / "store"
    run_id = _make_store(store)
    script = tmp_path / "locker.py"
    script.write_text(LOCKER)
    locker = subprocess.Popen(
        [sys.executable, str(script), str(store / "epochline.db"), "120"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert locker.stdout.readline().strip() == "locked"
        started = time.perf_counter()
        # the lock is held for 120 s: a reader that waited for it would hit this timeout
        listed = _cli("ls", "--store", str(store), "--json", timeout=60)
        took = time.perf_counter() - started
        assert listed.returncode == 0, listed.stderr
        runs = json.loads(listed.stdout)
        assert [(r["id"], r["name"]) for r in runs] == [(run_id, runs[0]["name"])]
        assert runs[0]["name"] != "renamed-but-not-committed"  # committed data only
        assert locker.poll() is None  # the lock was held all along
    finally:
        locker.kill()
        locker.wait()
    reliability(f"`ls` while another process holds the write lock ({took:.2f} s)", 100, 100, "completed")


def test_a_store_of_an_older_schema_is_refused_with_the_upgrade_command(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    # a store of schema version 0: the version before today's first one
    conn = sqlite3.connect(store / "epochline.db")
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO meta VALUES ('schema_version', '0')")
    conn.commit()
    conn.close()
    before = (store / "epochline.db").read_bytes()
    listed = _cli("ls", "--store", str(store))
    assert listed.returncode != 0 and "Traceback" not in listed.stderr
    assert f"epochline upgrade --store {store}" in listed.stderr
    assert (store / "epochline.db").read_bytes() == before  # reading changed nothing
    upgraded = _cli("upgrade", "--store", str(store))
    assert upgraded.returncode == 0, upgraded.stderr
    listed = _cli("ls", "--store", str(store), "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []


def test_reading_never_changes_the_store(tmp_path):
    store = tmp_path / "store"
    _make_store(store)
    db = store / "epochline.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = db.read_bytes()
    with epochline.open(store) as reader:
        reader.runs()[0].metrics("loss")
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.backend.query("DELETE FROM runs")
    assert db.read_bytes() == before
