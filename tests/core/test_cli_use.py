"""The CLI as a person sees it: literal values, 80 columns, complete JSON, help, clear errors."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
import time

import pytest

import epochline
from epochline import cli

HOSTILE_NAME = "ablation[/no-aug]"


def _render(monkeypatch, argv, width=200):
    import rich.console

    buf = io.StringIO()
    monkeypatch.setattr(cli, "_console", lambda: rich.console.Console(file=buf, width=width, highlight=False))
    code = cli.main(argv)
    return code, buf.getvalue()


def _hostile_store(store_dir):
    runs = []
    for name in (HOSTILE_NAME, "[red]x", HOSTILE_NAME):
        with epochline.init(
            "cv/resnet50/baseline",
            name=name,
            tags=["[i]t"],
            params={"layers": ["conv", "fc"], "[bold]k": "[red]v"},
        ) as run:
            run.set_primary_metric("val_acc")
            for epoch in (1, 2):
                run.log({"val_acc": 0.4 * epoch, "[x]key": 1.0}, step=epoch)
                run.end_epoch(epoch, {"loss": 1 / epoch, "val_acc": 0.4 * epoch})
            run.comment("[red]comment")
            run.summary({"[b]note": "[/]"})
        runs.append(run)
    return runs


def test_every_value_is_shown_literally(store_dir, monkeypatch, capsys):
    runs = _hostile_store(store_dir)
    code, out = _render(monkeypatch, ["ls"])
    assert code == 0 and out.count(HOSTILE_NAME) == 2 and "[red]x" in out and "[i]t" in out
    code, out = _render(monkeypatch, ["show", runs[1].id])
    assert code == 0
    for text in ("[red]x", "[bold]k", "[red]v", "[conv, fc]", "[x]key", "[b]note", "[/]", "[red]comment"):
        assert text in out, text


def test_ls_at_80_columns_keeps_path_name_and_primary(store_dir, monkeypatch):
    with epochline.init("cv/resnet50", name="baseline", tags=["a-long-tag"]) as run:
        run.set_primary_metric("val_acc")
        run.log({"val_acc": 0.953333}, step=1)
        run.end_epoch(1, {"val_acc": 0.953333})
    code, out = _render(monkeypatch, ["ls"], width=80)
    lines = out.splitlines()
    assert code == 0 and max(len(l) for l in lines) <= 80
    table = [l for l in lines if l.startswith(("┃", "│", "┏", "└"))]
    assert all(l.rstrip()[-1] in "┃│┓┘" for l in table)  # nothing cropped at the edge
    assert "cv/resnet50" in out and "baseline" in out and "val_acc=95.3333 %" in out
    assert run.id[:8] in out and run.id not in out  # id shortened to a unique prefix
    prefix = next(l for l in lines if l.startswith("│")).split("│")[1].strip()
    _, shown = _render(monkeypatch, ["show", prefix])
    assert run.id in shown  # the shortened id is a prefix show accepts


def test_json_is_complete(store_dir, capsys):
    with epochline.init("x", name="j", params={"lr": 0.1}) as run:
        run.log_histogram("w", [1.0, 2.0, 2.5], step=3)
        run.declare_plot("Loss", ["loss"])
        run.log({"loss": 0.5}, step=3)
        run.summary({"note": "ok"})
    assert cli.main(["ls", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["params"] == {"lr": 0.1} and row["summary"]["note"] == "ok" and row["fingerprint"]
    assert cli.main(["show", "j", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["histograms"]["w"][0]["step"] == 3 and data["histograms"]["w"][0]["num"] == 3
    assert data["plots"][0]["name"] == "Loss" and data["summary"]["note"] == "ok"


def test_show_a_shared_name_takes_the_latest_and_says_so(store_dir, monkeypatch, capsys):
    runs = _hostile_store(store_dir)
    code, out = _render(monkeypatch, ["show", HOSTILE_NAME])
    err = capsys.readouterr().err
    assert code == 0 and runs[2].id in out and runs[0].id not in out
    assert "2 runs are named" in err and "showing the latest" in err and runs[0].id in err


def test_summary_is_on_the_records_scale_and_says_so(store_dir, monkeypatch):
    with epochline.init("x", name="s") as run:
        run.end_epoch(1, {"val_acc": 0.9533})
    _, out = _render(monkeypatch, ["show", "s"])
    assert "values marked % are in percent" in out
    assert "val_accuracy %" in out and "95.33" in out


def test_running_duration_counts_until_now(store_dir, monkeypatch):
    run = epochline.init("x", name="live", flush_interval=0.05)
    run.end_epoch(1, {"a": 1.0})  # wakes the writer
    deadline = time.monotonic() + 60
    started = None
    while started is None:  # waits for the writer; the assertions below do not depend on time
        try:
            with epochline.open() as store:
                found = [r for r in store.runs() if r.id == run.id]
                started = found[0].start_time if found else None
        except epochline.errors.StoreNotFoundError:  # not created yet
            pass
        assert time.monotonic() < deadline, "the run never reached the store"
    monkeypatch.setattr(cli.time, "time", lambda: started + 3725)  # 1 h 2 min 5 s later
    _, out = _render(monkeypatch, ["show", "live"])
    run.finish()
    assert "duration 1h02m05s" in out


def test_help_is_plain_with_examples_and_version(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert capsys.readouterr().out.strip() == f"epochline {epochline.__version__}"
    for command in ("ls", "show", "run", "ingest"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        text = capsys.readouterr().out
        assert "examples:\n  epochline " + command in text, command
        assert "``" not in text and ":class:" not in text and ":data:" not in text, command
    with pytest.raises(SystemExit):
        cli.main(["ls", "--help"])
    assert "only runs with this tag" in capsys.readouterr().out


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "epochline", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_store_problems_are_one_line_not_a_traceback(store_dir, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "epochline.db").write_bytes(b"not a database " * 200)
    with epochline.init("x") as run:
        pass
    newer = store_dir / "epochline.db"
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    cases = [
        ("foo://x", "no epochline storage backend accepts 'foo://x'"),
        ("postgresql://nobody@127.0.0.1:1/none", "PostgreSQL: "),
        (str(bad), "the store cannot be read: file is not a database"),
        (str(store_dir), "schema version 999, newer than this epochline understands"),
    ]
    for store, message in cases:
        for command in (["ls"], ["show", run.id]):
            proc = _cli(*command, "--store", store)
            assert proc.returncode != 0, (store, proc.stderr)
            assert message in proc.stderr and "Traceback" not in proc.stderr, (store, proc.stderr)
            assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_lightning_adapter_without_lightning_names_the_extra(tmp_path):
    code = (
        "import sys\nsys.modules['lightning'] = None\nsys.modules['pytorch_lightning'] = None\n"
        "sys.modules['lightning.pytorch'] = None\nsys.modules['lightning.pytorch.loggers'] = None\n"
        "import epochline.integrations.lightning\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 1
    assert "pip install 'epochline[lightning]'" in proc.stderr.strip().splitlines()[-1]


def test_time_is_not_needed_for_a_finished_run(store_dir, monkeypatch):
    with epochline.init("x", name="done") as run:
        run.log({"a": 1.0})
    monkeypatch.setattr(cli.time, "time", lambda: time.time() + 10**6)
    _, out = _render(monkeypatch, ["show", "done"])
    assert "duration 0m0" in out  # a finished run's duration does not grow
