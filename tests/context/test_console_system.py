"""capture_console with a real tqdm bar in a real subprocess; system_metrics in a child process."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

import epochline
from epochline.context._console import ConsoleTee

CHILD = textwrap.dedent("""
    import sys, time, epochline
    from tqdm import tqdm
    mode = sys.argv[1]
    run = epochline.init("console", capture_console=True, tqdm_mode=mode, emit="kogu",
                         capture_env=False)
    print("starting", flush=True)
    for i in tqdm(range(50), desc="epoch 1", mininterval=0, file=sys.stderr):
        pass
    for i in tqdm(range(5), desc="gone", leave=False, mininterval=0):
        pass
    run.log({"loss": 0.5})
    run.comment("a comment line")
    print("done\\r\\nwindows line")
    sys.stdout.write("no newline at the end")
    run.finish()
    print(run.id)
""")


def _child(store_dir, mode):
    # bytes, not text=True: universal newlines would turn the bar's carriage returns into "\n"
    raw = subprocess.run(
        [sys.executable, "-c", CHILD, mode],
        capture_output=True,
        timeout=120,
        env={**os.environ, "EPOCHLINE_STORE": str(store_dir), "PYTHONUNBUFFERED": "1"},
    )
    proc = subprocess.CompletedProcess(raw.args, raw.returncode, raw.stdout.decode(), raw.stderr.decode())
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.strip().splitlines()[-1]
    with epochline.open(store_dir) as store:
        return proc, store.run(run_id).console()


def _texts(lines, stream):
    return [line["text"] for line in lines if line["stream"] == stream]


@pytest.mark.parametrize("mode", ["smart", "all", "none"])
def test_tqdm_bar_in_a_real_subprocess(store_dir, mode):
    proc, lines = _child(store_dir, mode)
    # printed exactly as without capture
    assert "starting" in proc.stdout and "100%" in proc.stderr and proc.stderr.count("\r") > 40
    assert '{"comment": "a comment line"}' in proc.stdout
    out = _texts(lines, "stdout")
    # our own Kogu lines are printed but not recorded a second time
    assert not any(t.startswith("{") for t in out)
    assert out == ["starting", "done", "windows line", "no newline at the end"]
    bars = [t for t in _texts(lines, "stderr") if "epoch 1" in t]
    if mode == "smart":
        assert len(bars) == 1 and "100%" in bars[0] and "50/50" in bars[0]
    elif mode == "all":
        assert len(bars) > 40 and "100%" in bars[-1] and "0%" in bars[0]
    else:
        assert bars == []
    # the leave=False bar, cleared at its end, is not kept by smart nor none
    gone = [t for t in _texts(lines, "stderr") if "gone" in t]
    assert (gone == []) if mode != "all" else len(gone) >= 5


def test_tee_splits_carriage_returns_across_writes():
    seen = []
    import io

    out = io.StringIO()
    tee = ConsoleTee(out, "stdout", lambda text, stream: seen.append(text), "smart")
    for chunk in ["a", "b\r", "\n", "x\r", "y\r", "z\n", "tail"]:
        tee.write(chunk)
    tee.close_capture()
    tee.write("after\n")
    assert seen == ["ab", "z", "tail"]
    assert out.getvalue() == "ab\r\nx\ry\rz\ntailafter\n"


def test_capture_restores_the_streams_and_rejects_bad_modes(store_dir, store):
    before = sys.stdout, sys.stderr
    with pytest.raises(ValueError, match="tqdm_mode must be one of smart, all, none"):
        epochline.init("c", capture_console=True, tqdm_mode="fancy")
    assert (sys.stdout, sys.stderr) == before
    run = epochline.init("c", capture_console=True, capture_env=False)
    assert isinstance(sys.stdout, ConsoleTee)
    print("inside")
    run.finish()
    assert (sys.stdout, sys.stderr) == before
    print("outside")
    assert [c["text"] for c in store().run(run.id).console()] == ["inside"]


SAMPLER_CHILD = textwrap.dedent("""
    import sys, time, epochline
    run_id = sys.argv[1] if len(sys.argv) > 1 else None
    run = epochline.init("sys", system_metrics=True, system_interval=0.05, run_id=run_id,
                         emit="kogu", capture_env=False)
    end = time.time() + 0.5
    step = 0
    while time.time() < end:
        run.log({"loss": 1.0 / (step + 1)})
        step += 1
        time.sleep(0.01)
    run.finish()
    print(run.id)
""")


def test_system_metrics_sampled_in_a_child_that_logs(store_dir):
    env = {**os.environ, "EPOCHLINE_STORE": str(store_dir)}
    first = subprocess.run(
        [sys.executable, "-c", SAMPLER_CHILD], capture_output=True, text=True, timeout=120, env=env
    )
    assert first.returncode == 0, first.stderr
    run_id = first.stdout.strip().splitlines()[-1]
    assert "system" not in first.stdout  # the Kogu emitter does not print samples
    with epochline.open(store_dir) as store:
        view = store.run(run_id)
        assert "system/rss_mb" in view.system_metric_keys()
        rss = view.metrics("system/rss_mb")
        loss_steps = [s for _, s, _ in view.metrics("loss")]
    # at least the first and the final sample, whatever the timing; steps are sample indices
    assert len(rss) >= 2 and [s for _, s, _ in rss] == list(range(len(rss)))
    assert all(v > 1 for _, _, v in rss)
    times = [t for t, _, _ in rss]
    assert times == sorted(times)
    # resuming continues the sample indices, and the training steps ignore them
    second = subprocess.run(
        [sys.executable, "-c", SAMPLER_CHILD, run_id], capture_output=True, text=True, timeout=120, env=env
    )
    assert second.returncode == 0, second.stderr
    with epochline.open(store_dir) as store:
        view = store.run(run_id)
        rss2 = view.metrics("system/rss_mb")
        loss2 = [s for _, s, _ in view.metrics("loss")]
    assert [s for _, s, _ in rss2] == list(range(len(rss2))) and len(rss2) >= len(rss) + 2
    assert loss2[len(loss_steps)] == loss_steps[-1] + 1


def test_system_interval_must_be_positive(store_dir):
    for bad in (0, -1, "10", True):
        with pytest.raises(ValueError, match="system_interval"):
            epochline.init("s", system_metrics=True, system_interval=bad)


def test_show_prints_console_and_env(store_dir, capsys):
    from epochline.cli import main

    with epochline.init("show", capture_console=True) as run:
        print("hello from training")
    capsys.readouterr()
    assert main(["show", "--store", str(store_dir), run.id]) == 0
    text = capsys.readouterr().out
    assert "console (1 lines" in text and "hello from training" in text and "env: Python" in text
    assert main(["show", "--store", str(store_dir), run.id, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["console"] == [{"stream": "stdout", "text": "hello from training"}]
    assert data["env"]["packages"]["epochline"] == epochline.__version__


def test_tee_pieces_long_lines_and_stops_after_its_limit(monkeypatch):
    import io

    from epochline.context import _console

    monkeypatch.setattr(_console, "MAX_LINE", 4)
    monkeypatch.setattr(_console, "MAX_BYTES", 25)
    seen = []
    out = io.StringIO()
    tee = ConsoleTee(out, "stderr", lambda text, stream: seen.append(text))
    tee.write("abcdefghij\n")
    tee.write("0123456789")  # no newline: pieces as it grows
    tee.write("xyz\nmore\nand more\n")
    assert seen[:3] == ["abcd", "efgh", "ij"]
    assert seen[3:5] == ["0123", "4567"]
    assert seen[-1].startswith("[epochline: console capture of stderr stopped after 25")
    assert not tee.active and out.getvalue() == "abcdefghij\n0123456789xyz\nmore\nand more\n"


def test_sampler_without_psutil_records_the_process_figures(store_dir, store, monkeypatch):
    monkeypatch.setitem(sys.modules, "psutil", None)  # `import psutil` raises ImportError
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with epochline.init("s", system_metrics=True, system_interval=60, capture_env=False) as run:
        pass
    keys = set(store().run(run.id).system_metric_keys())
    assert "system/rss_mb" in keys and keys <= {"system/rss_mb", "system/cpu_percent"}


def test_context_options_are_checked_at_init(store_dir):
    for kwargs, exc, match in [
        ({"capture_console": "yes"}, TypeError, "capture_console must be True or False"),
        ({"capture_env": 1}, TypeError, "capture_env must be True or False"),
        ({"system_metrics": None}, TypeError, "system_metrics must be True or False"),
        ({"name_params": ["lr", ""]}, TypeError, "name_params"),
        ({"param_parents": {"m": 3}}, TypeError, "param_parents must map"),
        ({"snapshot_code": 1.5}, TypeError, "snapshot_code"),
    ]:
        with pytest.raises(exc, match=match):
            epochline.init("bad", **kwargs)
    assert not (store_dir / "epochline.db").exists()  # refused before anything was started
