"""A PostgreSQL password is never shown nor stored, and is found where libpq finds it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import warnings

import epochline

from .pgcluster import PASSWORD


def _run_in_child(store, path, env=None):
    code = (
        "import sys, epochline\n"
        "with epochline.init(sys.argv[2], store=sys.argv[1]) as run:\n"
        "    run.log({'loss': 0.5})\n"
        "print(run.id, run.store_uri, run.recorded)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, store, path],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_a_password_in_the_uri_is_never_shown(cluster, pg_own, capfd):
    path = f"faults/secret/{uuid.uuid4().hex}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cluster.stop()  # the outage makes init, the writer and finish talk about the store
        run = epochline.init(path, store=pg_own, flush_interval=0.05)
        assert PASSWORD not in run.store_uri and "faults:***@" in run.store_uri
        run.log({"loss": 0.5})
        os.environ["EPOCHLINE_FINISH_TIMEOUT"] = "0.5"
        try:
            run.finish()
        finally:
            del os.environ["EPOCHLINE_FINISH_TIMEOUT"]
        cluster.start()
    said = [str(w.message) for w in caught] + [capfd.readouterr().err]
    assert any("127.0.0.1" in m for m in said) and not any(PASSWORD in m for m in said), said
    with epochline.init(path, store=pg_own) as run:
        run.log({"loss": 0.25})
    for args in (["ls"], ["ls", "--json"], ["show", run.id, "--json"], ["show", run.id]):
        out = subprocess.run(
            [sys.executable, "-m", "epochline", *args, "--store", pg_own],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert PASSWORD not in out.stdout + out.stderr
    title = subprocess.run(
        [sys.executable, "-m", "epochline", "ls", "--store", pg_own],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "faults:***@127.0.0.1" in title
    with epochline.open(pg_own) as store:
        rows = store.backend.query("SELECT * FROM runs WHERE id = ?", (run.id,))
        assert rows and PASSWORD not in json.dumps(rows, default=str)


def test_the_password_comes_from_pgpassword_or_pgpass_as_libpq_reads_it(cluster, tmp_path):
    if not cluster.is_up():
        cluster.start()
    bare = cluster.uri(password=False, media=str(tmp_path / "media"))
    refused = _run_in_child(bare, "faults/nopw", env={"PGPASSWORD": "", "PGPASSFILE": "/nonexistent"})
    assert refused.returncode == 0 and refused.stdout.split()[-1] == "False"  # not recorded, said so
    assert "NOT recorded" in refused.stderr
    via_env = _run_in_child(bare, "faults/pgpassword", env={"PGPASSWORD": PASSWORD})
    assert via_env.returncode == 0 and via_env.stdout.split()[-1] == "True", via_env.stderr
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{cluster.port}:*:faults:{PASSWORD}\n")
    passfile.chmod(0o600)
    via_file = _run_in_child(bare, "faults/pgpass", env={"PGPASSFILE": str(passfile), "PGPASSWORD": ""})
    assert via_file.returncode == 0 and via_file.stdout.split()[-1] == "True", via_file.stderr
    with epochline.open(cluster.uri()) as store:
        assert {r.path for r in store.runs(path="faults")} >= {"faults/pgpassword", "faults/pgpass"}
