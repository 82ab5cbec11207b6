"""The one final record: the summary, the Kogu ``iteration -1`` line and the PROGRESS last line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings

import pytest

import epochline

from .helpers import check_lines

# AiManage's legacy regexes (field notes), case-insensitive, run on every stdout line
AIMANAGE_LEGACY = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"Epoch\s+(\d+)[/:](\d+)",
        r"(train\s*)?loss[:\s]+([0-9.]+)",
        r"(val|validation)\s*loss[:\s]+([0-9.]+)",
        r"(train\s*)?acc(?:uracy)?[:\s]+([0-9.]+)%?",
        r"(val|validation)\s*acc(?:uracy)?[:\s]+([0-9.]+)%?",
    )
]


def split(out: str):
    """(Kogu objects, PROGRESS objects) of the printed lines."""
    kogu, progress = [], []
    for line in out.splitlines():
        if line.startswith("PROGRESS: "):
            progress.append(json.loads(line[len("PROGRESS: ") :]))
        else:
            kogu.append(json.loads(line))
    return kogu, progress


def finals(kogu):
    return [o["metric"]["metrics"] for o in kogu if "metric" in o and o["metric"]["iteration"] == -1]


def test_early_stopped_run_reports_best_epoch_and_epochs_run(store_dir, store, capsys):
    val = [50, 60, 70, 72, 71, 80, 79, 78, 81, 90, 85, 84, 83]  # best: epoch 10 of 13 run (of 20)
    with epochline.init("x", emit="kogu,progress", total_epochs=20) as run:
        for epoch, acc in enumerate(val, start=1):
            run.end_epoch(epoch, {"loss": 1.0 / epoch, "val_loss": 2.0 / epoch, "val_acc": acc / 100})
    out = capsys.readouterr().out
    check_lines(out)
    kogu, progress = split(out)
    assert progress[-1] == {
        "epoch": 13,
        "total_epochs": 13,
        "train_loss": 0.1,
        "val_loss": 0.2,
        "test_accuracy": 90.0,
        "status": "completed",
    }
    (final,) = finals(kogu)
    assert final == {
        "train_loss": 0.1,
        "val_loss": 0.2,
        "val_accuracy": 90.0,
        "best_epoch": 10,
        "total_epochs": 13,
    }
    assert store().run(run.id).summary == final  # one record, three channels


def test_best_evaluation_counts_even_when_not_the_epochs_last(store_dir, capsys):
    with epochline.init("x", emit="kogu,progress", total_epochs=3) as run:
        for epoch, evals in enumerate([[0.50, 0.55], [0.695, 0.62], [0.60, 0.64]], start=1):
            for i, acc in enumerate(evals):
                run.end_evaluation(
                    {"eval_accuracy": acc, "eval_loss": 1 - acc}, epoch=epoch, step=epoch * 40 + i * 20
                )
            run.end_epoch(epoch, {"loss": 0.5, "eval_accuracy": evals[-1], "eval_loss": 1 - evals[-1]})
    kogu, progress = split(capsys.readouterr().out)
    assert [p.get("val_accuracy") for p in progress[:-1]] == [55.00000000000001, 62.0, 64.0]
    (final,) = finals(kogu)
    assert final["val_accuracy"] == 69.5 and final["best_epoch"] == 2
    assert final["val_loss"] == pytest.approx(0.305) and final["train_loss"] == 0.5
    assert progress[-1]["test_accuracy"] == 69.5 and progress[-1]["val_loss"] == pytest.approx(0.305)


def test_test_stage_values_are_the_final_accuracy(store_dir, capsys):
    with epochline.init("x", emit="kogu,progress") as run:
        run.end_epoch(1, {"loss": 0.9, "val_accuracy": 0.7, "val_loss": 0.8})
        run.end_epoch(2, {"loss": 0.5, "val_accuracy": 0.8, "val_loss": 0.6})
        record = run.end_evaluation({"loss": 0.65, "accuracy": 0.766, "f1": 0.7}, stage="test")
    assert record == {"test_loss": 0.65, "test_accuracy": 76.6, "f1": 0.7}
    kogu, progress = split(capsys.readouterr().out)
    (final,) = finals(kogu)
    assert final == {
        "train_loss": 0.5,
        "val_accuracy": 80.0,
        "val_loss": 0.6,
        "test_loss": 0.65,
        "test_accuracy": 76.6,
        "f1": 0.7,
        "best_epoch": 2,
        "total_epochs": 2,
    }
    assert progress[-1] == {
        "epoch": 2,
        "total_epochs": 2,
        "train_loss": 0.5,
        "val_loss": 0.6,
        "test_loss": 0.65,
        "test_accuracy": 76.6,
        "status": "completed",
    }


def test_explicit_best_epoch_wins(store_dir, capsys):
    with epochline.init("x", emit="kogu") as run:
        for epoch, acc in enumerate([0.6, 0.714, 0.65, 0.558], start=1):
            run.end_epoch(epoch, {"val_accuracy": acc})
        run.set_best(epoch=2)
    (final,) = finals(split(capsys.readouterr().out)[0])
    assert final == {"val_accuracy": 71.39999999999999, "best_epoch": 2, "total_epochs": 4}
    with pytest.raises(ValueError, match="1-indexed"):
        epochline.init("x").set_best(epoch=0)
    with pytest.raises(ValueError, match="not both"):
        epochline.init("x").set_best(3, epoch=2)


FIT_THEN_TEST = """
import epochline
run = epochline.init("x", emit="kogu,progress", total_epochs=3)
for epoch, acc in enumerate([0.5, 0.9, 0.8], start=1):
    run.end_evaluation({"val_accuracy": acc + 0.05}, epoch=epoch, step=epoch * 10 - 5)
    run.end_epoch(epoch, {"loss": 1.0 / epoch, "val_accuracy": acc})
run.finish(hold_lines=True)                  # fit ends; a test stage may follow
print("between the stages")
again = epochline.init("x", run_id=run.id, emit="kogu,progress")  # the test stage re-opens it
again.end_evaluation({"loss": 0.3, "accuracy": 0.87}, stage="test")
again.finish(hold_lines=True)
print("after the test stage")
"""


def test_fit_then_test_prints_one_final_set_after_the_last_stage(store_dir, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", FIT_THEN_TEST], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    kogu, progress = split("\n".join(l for l in lines if not l.startswith(("between", "after"))))
    assert [p["status"] for p in progress] == ["training"] * 3 + ["completed"]
    assert lines[-1].startswith("PROGRESS: ") and lines[-2].startswith('{"metric": {"iteration": -1')
    assert lines.index("between the stages") < lines.index("after the test stage") < len(lines) - 2
    (final,) = finals(kogu)
    # the best evaluation of the fit (epoch 2's mid-epoch 95 %) survives the re-open
    assert final == {
        "train_loss": 0.5,
        "val_accuracy": 95.0,
        "test_loss": 0.3,
        "test_accuracy": 87.0,
        "best_epoch": 2,
        "total_epochs": 3,
    }
    assert progress[-1] == {
        "epoch": 3,
        "total_epochs": 3,
        "train_loss": 0.5,
        "test_loss": 0.3,
        "test_accuracy": 87.0,
        "status": "completed",
    }


def test_held_lines_go_out_before_the_next_runs_lines(store_dir, capsys):
    first = epochline.init("a", emit="progress")
    first.end_epoch(1, {"loss": 1.0})
    first.finish(hold_lines=True)
    assert "completed" not in capsys.readouterr().out
    with epochline.init("b", emit="progress") as second:
        second.end_epoch(1, {"loss": 2.0})
    lines = capsys.readouterr().out.splitlines()
    assert ['"completed"' in l for l in lines] == [True, False, True]
    assert '"train_loss": 1.0' in lines[0]


def test_a_failed_stage_is_never_held(store_dir, capsys):
    run = epochline.init("a", emit="kogu,progress")
    run.end_epoch(1, {"loss": 1.0})
    run.finish("failed", "ValueError: x", hold_lines=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].endswith('"status": "failed"}') and lines[-2] == '{"fail": "failed: ValueError: x"}'


def test_primary_metric_set_late_considers_earlier_values(store_dir, store):
    with epochline.init("x") as run:
        run.log({"val_f1": 0.9}, step=1)
        run.log({"val_f1": 0.5}, step=2)
        run.set_primary_metric("val_f1")
        run.log({"val_f1": 0.7}, step=3)
    summary = store().run(run.id).summary
    assert summary["best_val_f1"] == 0.9 and summary["best_val_f1_step"] == 1


def test_primary_metric_chooses_the_best_epoch(store_dir, store):
    with epochline.init("x") as run:
        run.set_primary_metric("val_loss", "min")
        for epoch, (acc, loss) in enumerate([(0.6, 0.5), (0.7, 0.4), (0.8, 0.45)], start=1):
            run.log({"val_loss": loss}, step=epoch)
            run.end_epoch(epoch, {"val_acc": acc, "val_loss": loss})
    summary = store().run(run.id).summary
    assert summary["best_epoch"] == 2 and summary["val_accuracy"] == 70.0


def test_primary_metric_never_logged_is_warned_at_finish(store_dir):
    run = epochline.init("x")
    run.set_primary_metric("val_acc")
    run.log({"val_accuracy": 0.5})
    with pytest.warns(RuntimeWarning, match="'val_acc' .* was never logged"):
        run.finish()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with epochline.init("y") as ok:
            ok.set_primary_metric("a")
            ok.log({"a": 1})


HOSTILE = "best model by val_accuracy: 0.9514; Epoch 3/10, Train Loss: 0.5, acc 95%"


def test_no_line_we_print_matches_aimanage_legacy_regexes(store_dir, tmp_path, capsys):
    source = tmp_path / "loss 1.txt"
    source.write_text("x")
    with epochline.init(
        "x",
        name="acc 95",
        emit="kogu,progress",
        tags=["Epoch 1/2"],
        params={"note": HOSTILE, "layers": ["loss: 1", "acc 2"]},
    ) as run:
        run.end_epoch(1, {"loss": 0.5, "accuracy": 0.9})
        run.comment(HOSTILE)
        run.comment("multi\nline\r\ncomment")
        run.tag("val loss 0.3")
        run.rename("Val Acc: 91")
        run.log_artifact(source)
        run.summary({"note": HOSTILE})
        run.finish("failed", "ValueError: train loss: 1.5")
    lines = capsys.readouterr().out.splitlines()
    check_lines("\n".join(lines))
    for line in lines:
        for pattern in AIMANAGE_LEGACY:
            assert not pattern.search(line), (pattern.pattern, line)
    decoded = [json.loads(l) for l in lines if not l.startswith("PROGRESS:")]
    assert {"comment": HOSTILE} in decoded and {"name": "Val Acc: 91"} in decoded  # text intact
    assert {"comment": "multi line comment"} in decoded  # newlines -> space, as Kogu's helper does
    assert {"fail": "failed: ValueError: train loss: 1.5"} in decoded
