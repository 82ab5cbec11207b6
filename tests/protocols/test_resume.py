"""A resumed run's lines continue the earlier process's: best epoch, last epoch, plots, keys."""

import json

import epochline


def _progress(out):
    return [json.loads(l[len("PROGRESS: ") :]) for l in out.splitlines() if l.startswith("PROGRESS: ")]


def test_resumed_run_continues_progress_and_kogu(store_dir, capsys):
    with epochline.init("res", emit="progress,kogu", total_epochs=4) as first:
        first.end_epoch(1, {"loss": 1.0, "val_acc": 0.5})
        first.end_epoch(2, {"loss": 0.5, "val_acc": 0.9})
    capsys.readouterr()
    run = epochline.init("res", run_id=first.id, emit="progress,kogu")
    run.end_epoch(3, {"loss": 0.4, "val_acc": 0.8})
    run.finish()
    out = capsys.readouterr().out
    lines = _progress(out)
    assert [l["epoch"] for l in lines] == [3, 3] and lines[0]["total_epochs"] == 4
    # best epoch 2 was before the resume; completed after 3 of 4 epochs: total_epochs = epochs run
    assert lines[-1] == {
        "epoch": 3,
        "total_epochs": 3,
        "train_loss": 0.5,
        "test_accuracy": 90.0,
        "status": "completed",
    }
    assert '"plot"' not in out  # families were declared by the first process
    run = epochline.init("res", run_id=first.id, emit="progress")
    run.finish("failed", "ValueError: late")
    assert _progress(capsys.readouterr().out)[-1] == {"epoch": 3, "total_epochs": 4, "status": "failed"}
