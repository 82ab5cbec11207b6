"""The insight commands through the installed entry point, in subprocesses (as users run them)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import epochline


def epochline_cmd(*args, stdin=subprocess.DEVNULL, check=True):
    exe = shutil.which("epochline", path=str(Path(sys.executable).parent)) or shutil.which("epochline")
    command = [exe] if exe else [sys.executable, "-m", "epochline"]
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run(
        command + [str(a) for a in args], capture_output=True, text=True, stdin=stdin, env=env, timeout=120
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    store = tmp_path_factory.mktemp("cli") / "store"
    for lr in (0.1, 0.01):
        for seed in range(3):
            with epochline.init(
                "cli/grid",
                params={"lr": lr, "seed": seed},
                ignore_params=["seed"],
                store=store,
                name=f"lr{lr}-s{seed}",
            ) as run:
                run.set_primary_metric("val_accuracy", mode="max")
                for step in range(30):
                    run.log(
                        {"loss": 1 / (step + 1) + lr + seed / 100, "val_accuracy": 0.5 + step / 100 - lr},
                        step=step,
                        epoch=step // 10 + 1,
                    )
                run.log_image("sample", [[0.0, 1.0], [1.0, 0.0]])
    return store


def test_aggregate_table_json_and_csv(seeds):
    table = epochline_cmd("aggregate", "--store", seeds, "--metric", "val_accuracy")
    assert "lr=0.1" in table.stdout and "lr=0.01" in table.stdout and "±" in table.stdout
    data = json.loads(epochline_cmd("aggregate", "--store", seeds, "--json").stdout)
    assert [len(g["runs"]) for g in data["groups"]] == [3, 3]
    rows = list(
        csv.DictReader(
            io.StringIO(epochline_cmd("aggregate", "--store", seeds, "--csv", "--by", "lr").stdout)
        )
    )
    best = next(r for r in rows if r["metric"] == "loss" and r["value"] == "best" and r["label"] == "lr=0.1")
    assert int(best["n"]) == 3 and math.isclose(float(best["mean"]), 1 / 30 + 0.1 + 0.01)
    wrong = epochline_cmd("aggregate", "--store", seeds, "--metric", "los", check=False)
    assert wrong.returncode == 2 and "closest: loss" in wrong.stderr


def test_compare_table_and_json(seeds):
    table = epochline_cmd("compare", "--store", seeds, "lr0.1-s0", "lr0.01-s1")
    assert "lr" in table.stdout and "val_accuracy best (max)" in table.stdout
    data = json.loads(epochline_cmd("compare", "--store", seeds, "lr0.1-s0", "lr0.01-s1", "--json").stdout)
    assert data["params"]["differing"] == ["lr", "seed"]
    missing = epochline_cmd("compare", "--store", seeds, "lr0.1-s9", check=False)
    assert missing.returncode == 2 and "closest: lr0.1-s" in missing.stderr


def test_plot_png_and_svg(seeds, tmp_path):
    png = tmp_path / "band.png"
    assert epochline_cmd(
        "plot", "--store", seeds, "cli", "-m", "loss", "--group", "-o", png
    ).stdout.strip() == str(png)
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 5000
    svg = tmp_path / "lines.svg"
    epochline_cmd("plot", "--store", seeds, "cli/grid", "-m", "val_accuracy", "--x", "epoch", "-o", svg)
    assert "<svg" in svg.read_text()


def test_export_import_rm_round_trip(seeds, tmp_path):
    archive = tmp_path / "run.zip"
    out = json.loads(epochline_cmd("export", "--store", seeds, "lr0.1-s0", "-o", archive, "--json").stdout)
    assert Path(out["path"]) == archive and archive.exists()
    other = tmp_path / "other"
    epochline_cmd("import", archive, "--store", other)
    again = epochline_cmd("import", archive, "--store", other, check=False)
    assert again.returncode == 2 and "--new-id" in again.stderr
    new = json.loads(epochline_cmd("import", archive, "--store", other, "--new-id", "--json").stdout)
    assert new["run"] != out["run"]
    refused = epochline_cmd("rm", "--store", other, new["run"], check=False)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    gone = json.loads(epochline_cmd("rm", "--store", other, new["run"], "--yes", "--json").stdout)
    assert gone["runs"] == 1 and gone["points"] == 60 and gone["media_files"] == 0  # image still used
    text = epochline_cmd("rm", "--store", other, out["run"], "--yes").stdout
    assert text.strip() == "deleted 1 runs, 60 points, 1 media files"
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04 not really")
    bad = epochline_cmd("import", junk, "--store", other, check=False)
    assert bad.returncode == 2 and "refusing to import" in bad.stderr


def test_tensorboard_export(seeds, tmp_path):
    pytest.importorskip("tensorboardX")
    out = epochline_cmd("tensorboard-export", "--store", seeds, "lr0.1-s0", "-o", tmp_path / "tb")
    folder = Path(out.stdout.strip())
    assert any(p.name.startswith("events.out.tfevents") for p in folder.iterdir())


@pytest.mark.parametrize(
    "command", ["compare", "aggregate", "plot", "export", "import", "rm", "tensorboard-export"]
)
def test_help_shows_an_example(command, capsys):
    from epochline import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    help_text = capsys.readouterr().out
    assert exit_.value.code == 0
    assert "example:" in help_text and f"epochline {command}" in help_text and "--store" in help_text


def test_names_are_shown_literally_not_as_markup(tmp_path):
    for value in ("[red]a", "b[/]"):
        with epochline.init("m/x", name=f"run {value}", params={"[bold]key": value}, store=tmp_path) as run:
            run.log({"[i]loss": 1.0}, step=0)
    out = epochline_cmd("compare", "--store", tmp_path, "run [red]a", "run b[/]").stdout
    assert "run [red]a" in out and "[bold]key" in out and "b[/]" in out and "[i]loss best (min)" in out
    agg = epochline_cmd("aggregate", "--store", tmp_path).stdout
    assert "[bold]key=[red]a" in agg
