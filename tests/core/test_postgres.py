"""The same run API against a real PostgreSQL server (CI starts one; see .ci/run).

Set EPOCHLINE_TEST_POSTGRES to a connection URI to run these; without it they are skipped.
"""

import math
import os
import subprocess
import sys
import textwrap
import uuid

import pytest

import epochline

URI = os.environ.get("EPOCHLINE_TEST_POSTGRES")
pytestmark = pytest.mark.skipif(not URI, reason="EPOCHLINE_TEST_POSTGRES is not set")


@pytest.fixture
def pg(tmp_path):
    sep = "&" if "?" in URI else "?"
    return f"{URI}{sep}media={tmp_path / 'media'}"


def test_round_trip_on_postgres(pg):
    path = f"pg/{uuid.uuid4().hex}"
    with epochline.init(path, store=pg, params={"lr": 0.1, "layers": [1, 2]}, tags=["t"]) as run:
        run.set_primary_metric("acc")
        run.log({"acc": 0.5, "nan": math.nan, "inf": -math.inf, "ok": True, "s": "x"}, step=1, epoch=1)
        run.log({"acc": 0.7}, step=1)  # merge: later wins
        run.end_epoch(1, {"val_acc": 0.7}, total_epochs=1)
        assert run.log_image(
            "img",
            bytes.fromhex(
                "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4"
                "890000000d49444154789c6360000000000500010d0a2db40000000049454e44ae426082"
            ),
        )
    with epochline.open(pg) as store:
        view = store.runs(path=path)[0]
        assert view.status == "completed" and view.params == {"lr": 0.1, "layers": [1, 2]}
        got = {k: view.metrics(k)[0][2] for k in view.metric_keys()}
        assert got["acc"] == 0.7 and math.isnan(got["nan"]) and got["inf"] == -math.inf
        assert (
            got["ok"] is True and got["s"] == "x" and view.summary["best_acc"] == 70.0
        )  # on the epoch records' scale
        assert view.epochs()[0]["values"] == {"val_accuracy": 70.0}
        assert view.images()[0].path.exists() and view.tags == ["t"]


WRITER = textwrap.dedent("""
    import sys, epochline
    with epochline.init(sys.argv[2], store=sys.argv[1], flush_interval=0.05) as run:
        for step in range(1000):
            run.log({"a": step}, step=step)
""")


def test_four_writers_and_crash_detection_on_postgres(pg, tmp_path):
    script = tmp_path / "w.py"
    script.write_text(WRITER)
    path = f"pgmany/{uuid.uuid4().hex}"
    procs = [
        subprocess.Popen([sys.executable, str(script), pg, f"{path}/{i}"], stderr=subprocess.PIPE, text=True)
        for i in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    crash = tmp_path / "c.py"
    crash.write_text(
        "import os, sys, epochline\nrun = epochline.init(sys.argv[2], store=sys.argv[1])\n"
        "run.log({'x': 1})\nrun._dispatcher.close(lambda lost: None)\nos._exit(9)\n"
    )
    subprocess.run([sys.executable, str(crash), pg, f"{path}/crash"], check=False, timeout=60)
    with epochline.open(pg) as store:
        runs = {r.path: r for r in store.runs(path=path)}
        assert len(runs) == 5
        for i in range(4):
            assert runs[f"{path}/{i}"].status == "completed"
            assert len(runs[f"{path}/{i}"].metrics("a")) == 1000
        assert runs[f"{path}/crash"].status == "crashed"
