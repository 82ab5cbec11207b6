import argparse
import importlib
import json
import subprocess
import sys

import pytest

import epochline
from epochline.cli import main


def _record(store_dir):
    with epochline.init("digits/mlp", name="baseline", params={"lr": 0.1}, tags=["t1"]) as run:
        run.set_primary_metric("val_acc")
        for epoch in (1, 2):
            run.log(
                {"loss": 1.0 / epoch, "val_acc": 0.4 * epoch, "odd": float("nan")}, step=epoch, epoch=epoch
            )
            run.end_epoch(epoch, {"loss": 1.0 / epoch, "val_acc": 0.4 * epoch}, total_epochs=2)
        run.log_text("hello from the run")
    with epochline.init("other/path", name="second") as other:
        other.log({"x": 1})
    return run


def test_ls_and_show_tables(store_dir, capsys):
    run = _record(store_dir)
    assert main(["ls", "--store", str(store_dir)]) == 0
    out = capsys.readouterr().out
    assert (
        "2 runs" in out and "baseline" in out and "completed" in out and "val_acc=80" in out
    )  # on the records' scale (%)
    assert main(["ls", "--store", str(store_dir), "--path", "digits"]) == 0
    out = capsys.readouterr().out
    assert "1 runs" in out and "second" not in out
    assert main(["show", "--store", str(store_dir), run.id[:21]]) == 0
    out = capsys.readouterr().out
    assert "baseline" in out and "val_accuracy %" in out and "80" in out and "hello from the run" in out


def test_json_output_is_strict_and_complete(store_dir, capsys):
    run = _record(store_dir)
    assert main(["show", "--json", "--store", str(store_dir), "baseline"]) == 0
    data = json.loads(capsys.readouterr().out)  # strict: would fail on bare NaN
    assert data["id"] == run.id and data["params"] == {"lr": 0.1}
    assert data["metrics"]["odd"][0][2] == "NaN" and data["epochs"][1]["values"]["val_accuracy"] == 80.0
    assert main(["ls", "--json", "--store", str(store_dir), "--status", "completed"]) == 0
    assert {r["name"] for r in json.loads(capsys.readouterr().out)} == {"baseline", "second"}


def test_unknown_run_and_console_script(store_dir):
    _record(store_dir)
    proc = subprocess.run(
        [sys.executable, "-m", "epochline", "show", "--store", str(store_dir), "nope"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "no run 'nope'" in proc.stderr


def test_reading_a_missing_store_is_an_error_not_a_new_store(tmp_path):
    missing = tmp_path / "nothing-here"
    proc = subprocess.run(
        [sys.executable, "-m", "epochline", "ls", "--store", str(missing)], capture_output=True, text=True
    )
    assert proc.returncode == 1 and "no store at" in proc.stderr
    assert not missing.exists()


def test_the_command_table_is_the_whole_cli(capsys):
    """Each entry of the table resolves to its arguments and a function to run; --help lists all."""
    from epochline.cli import COMMANDS

    assert len({c.name for c in COMMANDS}) == len(COMMANDS)
    for command in COMMANDS:
        module, _, function = command.configure.partition(":")
        parser = argparse.ArgumentParser()
        getattr(importlib.import_module(module), function)(parser)
        assert callable(parser.get_default("func")), command
        with pytest.raises(SystemExit) as exc:
            main([command.name, "--help"])
        assert exc.value.code == 0
        usage = capsys.readouterr().out
        assert usage.startswith(f"usage: epochline {command.name} ")
        assert ("--store" in usage) == command.store
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    out = capsys.readouterr().out
    # a long name (tensorboard-export) gets its help on the next line
    assert exc.value.code == 0 and all(
        (f"{c.name} " in out or f"{c.name}\n" in out) and c.help in out for c in COMMANDS
    )
