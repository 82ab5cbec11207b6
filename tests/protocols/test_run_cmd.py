"""`epochline run` on real subprocesses: pass-through, recording, exit codes, signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

import epochline

from .helpers import check_progress_line

ROOT = Path(__file__).resolve().parents[2]

PROTOCOL_SCRIPT = r"""
import json, sys
print(json.dumps({"parameters": {"lr": 0.1, "layers": [8, 4]}}))
print(json.dumps({"name": "from-script"}))
print("warming up")
print("to stderr", file=sys.stderr)
for epoch in (1, 2):
    print(f"Epoch {epoch}/2, Train Loss: {1 / epoch:.4f}, Train Accuracy: {50 + epoch}%")
    print(json.dumps({"metric": {"iteration": epoch, "metrics": {"loss": 1 / epoch}}}))
    print("PROGRESS: " + json.dumps({"epoch": epoch, "total_epochs": 2, "train_loss": 1 / epoch,
                                     "train_accuracy": 50.0 + epoch, "status": "training"}))
open("model.bin", "wb").write(b"weights")
print(json.dumps({"upload": "model.bin"}))
print("PROGRESS: " + json.dumps({"epoch": 2, "total_epochs": 2, "test_accuracy": 52.0, "status": "completed"}))
sys.stdout.write("no newline at the end")
"""


def with_signals(dispositions: str, cmd: list) -> list:
    """``cmd`` started with SIGINT/SIGTERM set explicitly (``"SIG_DFL"`` or ``"SIG_IGN"``), whatever
    the test runner inherited (a shell's background job ignores SIGINT): the same process, exec'd."""
    code = (
        "import os, signal, sys\n"
        f"for s in (signal.SIGINT, signal.SIGTERM): signal.signal(s, signal.{dispositions})\n"
        "os.execv(sys.argv[1], sys.argv[1:])\n"
    )
    return [sys.executable, "-c", code, *cmd]


def epochline_run(tmp_path, script, *args, **popen):
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(script))
    cmd = [
        sys.executable,
        "-m",
        "epochline",
        "run",
        "--path",
        "t/run",
        *args,
        "--",
        sys.executable,
        str(path),
    ]
    return subprocess.Popen(
        with_signals("SIG_DFL", cmd),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **popen,
    )


def finished(proc, timeout=60):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err.decode()


def latest_run():
    with epochline.open() as store:
        runs = store.runs(path="t/run")
        assert len(runs) == 1
        run = runs[0]
        return run, {
            "status": run.status,
            "reason": run.reason,
            "name": run.name,
            "params": run.params,
            "epochs": [(e["epoch"], e["values"]) for e in run.epochs()],
            "summary": run.summary,
            "artifacts": {a.name: a.path.read_bytes() for a in run.artifacts()},
        }


def test_protocol_script_is_passed_through_and_recorded(store_dir, tmp_path):
    direct = subprocess.run([sys.executable, "-c", PROTOCOL_SCRIPT], cwd=tmp_path, capture_output=True)
    rc, out, err = finished(epochline_run(tmp_path, PROTOCOL_SCRIPT))
    assert rc == 0
    assert out == direct.stdout  # byte for byte, nothing added
    assert err.startswith("to stderr\n") and "epochline: run " in err and "completed" in err
    assert "skipped 0" in err
    _, got = latest_run()
    assert got["status"] == "completed" and got["name"] == "from-script"
    assert got["params"] == {"lr": 0.1, "layers": [8, 4]}
    assert got["epochs"] == [
        (1, {"train_loss": 1.0, "train_accuracy": 51.0}),
        (2, {"train_loss": 0.5, "train_accuracy": 52.0}),
    ]
    assert got["summary"] == {
        "final_test_accuracy": 52.0,  # the completed line as it was printed
        # the run's own final record, from the epochs recorded
        "train_loss": 0.5,
        "train_accuracy": 52.0,
        "best_epoch": 2,
        "total_epochs": 2,
    }
    assert got["artifacts"]["model.bin"] == b"weights"
    console = got["artifacts"]["console.log"].splitlines(keepends=True)
    # whole lines (the unterminated last one ended), each stream in its order; the two streams'
    # relative order depends on which pipe is read first, so it is not asserted
    assert [l for l in console if l != b"to stderr\n"] == direct.stdout.splitlines(keepends=True)[:-1] + [
        b"no newline at the end\n"
    ]
    assert console.count(b"to stderr\n") == 1


def test_crash_is_failed_with_exit_code(store_dir, tmp_path):
    rc, _out, err = finished(
        epochline_run(
            tmp_path,
            """
        print("PROGRESS: {\\"epoch\\": 1, \\"train_loss\\": 0.5, \\"status\\": \\"training\\"}")
        raise RuntimeError("boom")
    """,
        )
    )
    assert rc == 1 and "RuntimeError: boom" in err
    _view, got = latest_run()
    assert (got["status"], got["reason"]) == ("failed", "exit code 1")
    assert b"RuntimeError: boom" in got["artifacts"]["console.log"]
    assert [e[0] for e in got["epochs"]] == [1]


def test_fail_line_with_exit_zero_is_failed(store_dir, tmp_path):
    rc, _, _ = finished(epochline_run(tmp_path, 'print(\'{"fail": "diverged"}\')'))
    assert rc == 0
    assert latest_run()[1]["status"] == "failed" and latest_run()[1]["reason"] == "diverged"


@pytest.mark.parametrize(
    "sig, status", [(signal.SIGKILL, "crashed"), (signal.SIGSEGV, "crashed"), (signal.SIGTERM, "interrupted")]
)
def test_killed_by_a_signal(store_dir, tmp_path, sig, status):
    rc, _, _err = finished(
        epochline_run(
            tmp_path,
            f"""
        import os, signal
        print("about to die", flush=True)
        if {int(sig)} != signal.SIGKILL:
            signal.signal({int(sig)}, signal.SIG_DFL)
        os.kill(os.getpid(), {int(sig)})
    """,
        )
    )
    assert rc == 128 + sig
    got = latest_run()[1]
    assert (got["status"], got["reason"]) == (status, f"killed by {sig.name}")
    assert got["artifacts"]["console.log"] == b"about to die\n"


@pytest.mark.parametrize(
    "sig, rc_expected", [(signal.SIGINT, 128 + signal.SIGINT), (signal.SIGTERM, 128 + signal.SIGTERM)]
)
def test_signals_are_forwarded_and_output_is_unbuffered(store_dir, tmp_path, sig, rc_expected):
    # the disposition is set explicitly: a test run in a background job inherits SIGINT ignored
    proc = epochline_run(
        tmp_path,
        """
        import signal, time
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        print("PROGRESS: {\\"epoch\\": 1, \\"train_loss\\": 0.5, \\"status\\": \\"training\\"}")
        print("ready")
        time.sleep(60)
    """,
    )
    try:
        # both lines arrive while the child still sleeps: nothing is held back by buffering; the
        # child prints after its handlers are set, and epochline run's forwarding is in place
        # before the child starts, so no sleep is needed before the signal
        assert proc.stdout.readline().startswith(b"PROGRESS:")
        assert proc.stdout.readline() == b"ready\n"
        proc.send_signal(sig)
        rc, _, err = finished(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == rc_expected
    got = latest_run()[1]
    assert got["status"] == "interrupted" and got["reason"] == f"killed by {signal.Signals(sig).name}"
    assert got["epochs"] == [(1, {"train_loss": 0.5})]
    if sig == signal.SIGINT:
        assert "KeyboardInterrupt" in err


def test_emit_turns_legacy_lines_into_progress_lines(store_dir, tmp_path):
    rc, out, _ = finished(
        epochline_run(
            tmp_path,
            """
        for epoch in (1, 2, 3):
            print(f"Epoch {epoch}/3 - loss: {1 / epoch:.3f} - accuracy: 0.{epoch}")
        print("partial", end="")
    """,
            "--emit",
            "progress",
        )
    )
    assert rc == 0
    lines = out.decode().splitlines()
    progress = [l for l in lines if l.startswith("PROGRESS:")]
    for line in progress:
        check_progress_line(line)
    assert len(progress) == 4 and progress[-1].endswith('"status": "completed"}')
    assert '"test_accuracy": 30.0' in progress[-1]
    assert [l for l in lines if not l.startswith("PROGRESS:")] == [
        "Epoch 1/3 - loss: 1.000 - accuracy: 0.1",
        "Epoch 2/3 - loss: 0.500 - accuracy: 0.2",
        "Epoch 3/3 - loss: 0.333 - accuracy: 0.3",
        "partial",
    ]


def test_command_not_found(store_dir, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "epochline", "run", "--path", "t/run", "--", str(tmp_path / "nope")],
        capture_output=True,
    )
    assert proc.returncode == 127
    got = latest_run()[1]
    assert got["status"] == "failed" and "could not be started" in got["reason"]


def test_any_language_example(store_dir, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "epochline",
            "run",
            "--path",
            "t/run",
            "--",
            "sh",
            str(ROOT / "examples" / "any_language.sh"),
        ],
        cwd=tmp_path,
        capture_output=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert b"PROGRESS:" in proc.stdout and b"skipped 0" in proc.stderr
    got = latest_run()[1]
    assert got["status"] == "completed"
    assert got["params"] == {"lr": 0.05, "optimizer": "sgd", "layers": [64, 32], "shell": True}
    assert [e for e, _ in got["epochs"]] == [1, 2, 3]
    assert got["epochs"][-1][1] == {"train_loss": 0.25, "val_loss": 0.275, "val_accuracy": 90.0}
    assert got["summary"] == {
        "best_val_accuracy": 90.0,
        "final_test_accuracy": 90.0,
        "train_loss": 0.25,
        "val_loss": 0.275,
        "val_accuracy": 90.0,
        "best_epoch": 3,
        "total_epochs": 3,
    }
    assert got["artifacts"]["shell-model.txt"] == b"weights of epoch 3\n"
    assert not (tmp_path / "shell-model.txt").exists()  # written to the scratch folder, not here
    assert not list(Path(tempfile.gettempdir()).glob("epochline-run-*/shell-model.txt"))


def test_a_group_signal_reaches_the_command_once(store_dir, tmp_path):
    """SIGINT to epochline run's whole process group: the command gets exactly one."""
    proc = epochline_run(
        tmp_path,
        """
        import signal, sys, time
        got = []
        def count(signum, frame):
            got.append(signum)
            print("got", len(got), flush=True)
        signal.signal(signal.SIGINT, count)
        # no waiting on time: the test sends SIGTERM after reading "got 1"; epochline run handles
        # its signals in arrival order, so a forwarded second SIGINT would come before it
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(len(got)))
        print("ready", flush=True)
        while True:
            time.sleep(0.01)
    """,
        start_new_session=True,
    )  # its own group, as a job of a shell is
    try:
        assert proc.stdout.readline() == b"ready\n"
        os.killpg(proc.pid, signal.SIGINT)  # the group: epochline run (and, if shared, the command)
        assert proc.stdout.readline() == b"got 1\n"
        proc.send_signal(signal.SIGTERM)  # forwarded to the command: it exits with its count
        rc, out, _ = finished(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert b"got 2" not in out and rc == 1


def test_nothing_recorded_is_said_and_fails(tmp_path, monkeypatch):
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("x")
    monkeypatch.delenv("EPOCHLINE_EMIT", raising=False)
    script = tmp_path / "ok.py"
    script.write_text('print(\'PROGRESS: {"epoch": 1, "train_loss": 0.5, "status": "training"}\')\n')
    store = ["--store", str(blocked / "store")]
    for cmd in (["run", *store, "--", sys.executable, str(script)], ["ingest", *store, str(script)]):
        proc = subprocess.run(
            [sys.executable, "-m", "epochline", *cmd], capture_output=True, text=True, timeout=60, check=False
        )
        assert proc.returncode == 1, (cmd, proc.stderr)
        assert "nothing was recorded" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_bytes(b"\x7fELF\x00\x00binary"), "is a binary file"),
        (lambda p: None, "no such file"),
    ],
)
def test_ingest_refuses_what_is_not_a_log(store_dir, tmp_path, make, message):
    target = tmp_path / "thing"
    make(target)
    proc = subprocess.run(
        [sys.executable, "-m", "epochline", "ingest", str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not store_dir.exists()  # nothing was started


def test_an_ignored_sigint_stays_ignored(store_dir, tmp_path):
    """Started with SIGINT ignored (a background job), epochline run and the command ignore it too."""
    script = tmp_path / "script.py"
    script.write_text(
        "import signal, sys\nprint(signal.getsignal(signal.SIGINT) is signal.SIG_IGN, flush=True)\n"
    )
    proc = subprocess.run(
        with_signals(
            "SIG_IGN",
            [sys.executable, "-m", "epochline", "run", "--path", "t/run", "--", sys.executable, str(script)],
        ),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0 and proc.stdout == b"True\n"
