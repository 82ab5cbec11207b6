"""The PROGRESS emitter: exact lines, percent accuracies, the completed line last, failures."""

from __future__ import annotations

import json
import math

import pytest

import epochline

from .helpers import check_lines, check_progress_line, fixed_run

GOLDEN = [
    (
        'PROGRESS: {"epoch": 1, "total_epochs": 3, "train_loss": 0.9, "train_accuracy": 60.0, "val_loss": 1.0, '
        '"val_accuracy": 55.00000000000001, "status": "training"}'
    ),
    (
        'PROGRESS: {"epoch": 2, "total_epochs": 3, "train_loss": 0.5, "train_accuracy": 80.0, "val_loss": 0.7, '
        '"val_accuracy": 75.0, "status": "training"}'
    ),
    (
        'PROGRESS: {"epoch": 3, "total_epochs": 3, "train_loss": 0.4, "train_accuracy": 85.0, "val_loss": 0.8, '
        '"val_accuracy": 70.0, "status": "training"}'
    ),
    # best accuracy: val (priority test > val > train) at epoch 2, with epoch 2's losses
    (
        'PROGRESS: {"epoch": 3, "total_epochs": 3, "train_loss": 0.5, "val_loss": 0.7, "test_accuracy": 75.0, '
        '"status": "completed"}'
    ),
]


def progress_lines(text: str) -> list:
    return [l for l in text.splitlines() if l.startswith("PROGRESS:")]


def test_golden_lines(store_dir, tmp_path, capsys):
    fixed_run(tmp_path, "progress")
    out = capsys.readouterr().out
    assert out.splitlines() == GOLDEN
    check_lines(out)


def test_completed_line_is_last_even_with_kogu_on(store_dir, tmp_path, capsys):
    fixed_run(tmp_path, "kogu,progress")
    lines = capsys.readouterr().out.splitlines()
    check_lines("\n".join(lines))
    assert lines[-1] == GOLDEN[-1]
    assert progress_lines("\n".join(lines)) == GOLDEN


@pytest.mark.parametrize("status", ["failed", "interrupted", "crashed"])
def test_unfinished_run_ends_with_its_status_and_no_completed_line(store_dir, tmp_path, capsys, status):
    fixed_run(tmp_path, "progress", status, "boom")
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == GOLDEN[:3]
    assert lines[3:] == [f'PROGRESS: {{"epoch": 3, "total_epochs": 3, "status": "{status}"}}']


def test_exception_in_with_block_prints_failed(store_dir, capsys):
    with pytest.raises(ZeroDivisionError), epochline.init("x", emit="progress") as run:
        run.end_epoch(1, {"loss": 1.0}, total_epochs=5)
        1 / 0  # noqa: B018 - the exception is the point
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        'PROGRESS: {"epoch": 1, "total_epochs": 5, "train_loss": 1.0, "status": "training"}',
        'PROGRESS: {"epoch": 1, "total_epochs": 5, "status": "failed"}',
    ]


def test_best_accuracy_priority_test_over_val_over_train(store_dir, capsys):
    with epochline.init("x", emit="progress", accuracy_scale="percent") as run:
        run.end_epoch(1, {"acc": 99.0, "val_acc": 50.0, "test_loss": 0.3, "val_loss": 0.9})
        run.end_epoch(2, {"acc": 98.0, "val_acc": 60.0, "test_acc": 40.0, "test_loss": 0.5})
        run.end_epoch(3, {"acc": 97.0, "val_acc": 70.0, "test_acc": 45.0, "test_loss": 0.4})
    final = json.loads(progress_lines(capsys.readouterr().out)[-1][len("PROGRESS:") :])
    # the best epoch is chosen by val accuracy (3); its test accuracy is the one reported
    assert final == {
        "epoch": 3,
        "total_epochs": 3,
        "test_loss": 0.4,
        "test_accuracy": 45.0,
        "status": "completed",
    }


def test_accuracy_scales_and_name_table(store_dir, capsys):
    with epochline.init("x", emit="progress") as run:
        run.scales["top1"] = "percent"
        run.field_map["top1"] = "test_accuracy"
        run.end_epoch(
            1, {"eval_accuracy": 0.955, "train/acc": 0.5, "top1": 91.5, "valid_loss": 0.2, "loss_epoch": 0.25}
        )
    first = json.loads(progress_lines(capsys.readouterr().out)[0][len("PROGRESS:") :])
    assert first == {
        "epoch": 1,
        "train_loss": 0.25,
        "train_accuracy": 50.0,
        "val_loss": 0.2,
        "val_accuracy": 95.5,
        "test_accuracy": 91.5,
        "status": "training",
    }


def test_nonfinite_fields_are_omitted(store_dir, capsys):
    with epochline.init("x", emit="progress") as run:
        run.end_epoch(1, {"loss": math.nan, "val_loss": math.inf, "accuracy": 0.5})
    lines = progress_lines(capsys.readouterr().out)
    assert lines[0] == 'PROGRESS: {"epoch": 1, "train_accuracy": 50.0, "status": "training"}'
    for line in lines:
        check_progress_line(line)


def test_no_epochs_completed_line_still_comes(store_dir, capsys):
    with epochline.init("x", emit="progress", total_epochs=4):
        pass
    assert capsys.readouterr().out.splitlines() == [
        'PROGRESS: {"epoch": 0, "total_epochs": 4, "status": "completed"}'
    ]


def test_only_rank_zero_prints(store_dir, capsys, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    with epochline.init("x", emit="kogu,progress") as run:
        run.end_epoch(1, {"loss": 0.5})
    assert capsys.readouterr().out == ""
