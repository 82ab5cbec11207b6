"""A full disk (a real 2 MB tmpfs): training never stops, the loss is exact, and a second run on
the full store is reported as not recorded and leaves nothing behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import epochline

TRAIN = textwrap.dedent("""
    import json, sys, warnings, epochline
    warnings.simplefilter("ignore")
    run = epochline.init(sys.argv[2], store=sys.argv[1], flush_interval=0.05)
    steps = int(sys.argv[3])
    for step in range(steps):
        run.log({"a": step * 0.5, "b": step, "c": 1.0 / (step + 1), "d": -step, "e": step % 7},
                step=step)
    run.finish()
    # the training survived: it got here, and says what finish reported
    print(json.dumps({"id": run.id, "logged": 5 * steps, "lost": run.lost,
                      "recorded": run.recorded}), flush=True)
""")


@pytest.fixture
def full_disk(tmp_path):
    """A real 2 MB tmpfs mounted for this test (needs root); skipped, saying why, elsewhere."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a 2 MB tmpfs here (needs root and mount(8)): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def _train(tmp_path, store, path, steps):
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    env = {**os.environ, "EPOCHLINE_FINISH_TIMEOUT": "2"}
    child = subprocess.run(
        [sys.executable, str(script), str(store), path, str(steps)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert child.returncode == 0, child.stderr  # training survived
    return json.loads(child.stdout.strip().splitlines()[-1]), child.stderr


def test_full_disk_loses_exactly_what_it_reports_and_a_second_run_is_not_half_stored(
    full_disk, tmp_path, reliability
):
    store = full_disk / "store"
    first, _ = _train(tmp_path, store, "faults/full/first", 60000)  # 300,000 values: more than 2 MB
    with epochline.open(store) as reader:
        view = reader.run(first["id"])
        kept = sum(len(view.metrics(k)) for k in view.metric_keys())
        status = view.status
    assert first["recorded"] and 0 < kept < first["logged"]
    # exact: every metric value not in the store is counted, plus the few other events (the
    # final status among them) that could not be written either
    assert first["logged"] - kept <= first["lost"] <= first["logged"] - kept + 5
    assert status in ("completed", "crashed")
    reliability(
        "full disk (2 MB tmpfs): first run",
        first["logged"],
        kept,
        f"{status} (its final status did not fit)" if status == "crashed" else status,
        lost=first["lost"],
    )

    _fill(full_disk / "filler")  # whatever the first run's rolled-back writes left free
    # a second run on the same full store: it is stored with what fit and its exact loss, or
    # (when not even its start fits) not at all, and finish says so; never in part
    second, err = _train(tmp_path, store, "faults/full/second", 2000)
    with epochline.open(store) as reader:
        runs = reader.runs(path="faults/full/second")
        kept = sum(len(runs[0].metrics(k)) for k in runs[0].metric_keys()) if runs else 0
        leftovers = reader.backend.query("SELECT COUNT(*) FROM series WHERE run_id = ?", (second["id"],))
    if second["recorded"]:
        assert [r.id for r in runs] == [second["id"]]
        assert second["logged"] - kept <= second["lost"] <= second["logged"] - kept + 5
        status = runs[0].status
    else:
        assert runs == [] and leftovers == [(0,)] and kept == 0
        assert f"run {second['id']} was NOT recorded" in err
        status = "absent; finish says NOT recorded"
    reliability(
        "full disk: a second run on the same store", second["logged"], kept, status, lost=second["lost"]
    )

    # a run on a new store on the full disk: nothing of it can be written
    third, err = _train(tmp_path, full_disk / "new-store", "faults/full/third", 2000)
    assert not third["recorded"] and third["lost"] >= third["logged"]
    assert f"run {third['id']} was NOT recorded" in err
    with pytest.raises(FileNotFoundError, match=r"no (epochline )?store"):
        epochline.open(full_disk / "new-store")  # nothing of it is there
    reliability(
        "full disk: a run on a new store there",
        third["logged"],
        0,
        lost=third["lost"],
        status="absent; finish says NOT recorded",
    )
