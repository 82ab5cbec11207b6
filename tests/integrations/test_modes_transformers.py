"""transformers in the modes users use (issue 13): early stopping with the best model loaded at the
end, a real Trainer (tiny BERT from a config, digits as tokens, CPU, offline; seconds)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("transformers")
pytest.importorskip("accelerate", reason="transformers' Trainer needs accelerate (transformers[torch])")

from transformers import EarlyStoppingCallback, TrainerCallback  # noqa: E402

from epochline.integrations.transformers import TrackerCallback  # noqa: E402
from linecheck import protocol_lines  # noqa: E402

from .conftest import finished_output  # noqa: E402
from .test_transformers import Digits, make_trainer, only_run  # noqa: E402

# Validation results per epoch, set by the test so that the stop is known in advance: the loss
# (the Trainer's metric_for_best_model) is best at epoch 2, the accuracy at epoch 3; no improvement
# for 2 evaluations after epoch 2 stops the training after epoch 4 of 20.
EVAL_LOSS = {1: 2.0, 2: 1.0, 3: 1.5, 4: 1.6}
EVAL_ACCURACY = {1: 0.2, 2: 0.3, 3: 0.5, 4: 0.4}


class Scripted(TrainerCallback):
    """Replaces the evaluation's loss/accuracy before the Trainer, the tracker and
    EarlyStoppingCallback read them (callbacks run in order; the Trainer picks its best
    checkpoint from the same dict after the callbacks)."""

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        epoch = round(state.epoch)
        metrics["eval_loss"], metrics["eval_accuracy"] = EVAL_LOSS[epoch], EVAL_ACCURACY[epoch]


def test_early_stopping_reports_the_epochs_run_and_the_loaded_best_epoch(tmp_path, store_dir, store, capfd):
    tracker = TrackerCallback(path="modes/early-stopping")
    trainer = make_trainer(
        tmp_path,
        [Scripted(), tracker, EarlyStoppingCallback(early_stopping_patience=2)],
        n_train=64,
        n_val=32,
        num_train_epochs=20,
        save_strategy="epoch",
        load_best_model_at_end=True,
        metric_for_best_model="loss",
    )
    trainer.train()
    assert trainer.state.best_model_checkpoint.endswith("checkpoint-4")  # epoch 2 (2 steps/epoch)
    kogu, progress = protocol_lines(finished_output(capfd))

    view = only_run(store)
    assert view.status == "completed"
    assert [e["epoch"] for e in view.epochs()] == [1, 2, 3, 4]  # stopped after 4 of 20
    assert [p["epoch"] for p in progress if p["status"] == "training"] == [1, 2, 3, 4]

    finals = [o["metric"]["metrics"] for o in kogu if "metric" in o and o["metric"]["iteration"] == -1]
    completed = [p for p in progress if p["status"] == "completed"]
    assert len(finals) == 1 and len(completed) == 1 and progress[-1] is completed[0]
    (final,), (completed,) = finals, completed
    # the epochs actually run: progress reads 4/4 = 100 %, not 4/20
    assert (completed["epoch"], completed["total_epochs"]) == (4, 4)
    for channel in (view.summary, final):
        assert channel["total_epochs"] == 4
        # the loaded model's epoch (best loss, epoch 2), not the best accuracy's (epoch 3)
        assert channel["best_epoch"] == 2
        assert channel["val_loss"] == pytest.approx(EVAL_LOSS[2])
        assert channel["val_accuracy"] == pytest.approx(100 * EVAL_ACCURACY[2])
    assert completed["val_loss"] == pytest.approx(EVAL_LOSS[2])
    assert completed["test_accuracy"] == pytest.approx(100 * EVAL_ACCURACY[2])  # the final accuracy field


# -- what works and must keep working (issue 13's list) --------------------------------------------
def test_gradient_accumulation_gives_one_record_per_epoch(tmp_path, store_dir, store):
    # 10 batches per epoch, 2 per optimizer step: 5 steps per epoch
    callback = TrackerCallback(path="modes/accumulation", emit="none")
    make_trainer(tmp_path, [callback], gradient_accumulation_steps=2).train()
    view = only_run(store)
    assert view.status == "completed" and view.params["gradient_accumulation_steps"] == 2
    rows = view.metric_rows("eval_accuracy")
    assert [(r["step"], r["epoch"]) for r in rows] == [(5, 1), (10, 2)]
    epochs = view.epochs()
    assert [e["epoch"] for e in epochs] == [1, 2] and all(e["total_epochs"] == 2 for e in epochs)
    for record, row in zip(epochs, rows):
        assert record["values"]["val_accuracy"] == pytest.approx(100 * row["value"])


def test_params_keep_enums_lists_dicts_and_none_and_mask_tokens(tmp_path, store_dir, store, capfd):
    secret = "hf_do_not_print_me_123"
    callback = TrackerCallback(path="modes/params")
    make_trainer(
        tmp_path,
        [callback],
        num_train_epochs=1,
        n_train=64,
        eval_strategy="no",
        hub_token=secret,
        lr_scheduler_type="cosine",  # an enum in TrainingArguments
        lr_scheduler_kwargs={"num_cycles": 0.5},
        label_names=["labels"],
    ).train()
    out = finished_output(capfd)
    params = only_run(store).params
    assert params["lr_scheduler_type"] == "cosine" and params["eval_strategy"] == "no"
    assert params["lr_scheduler_kwargs.num_cycles"] == 0.5
    assert params["label_names"] == ["labels"] and params["hub_model_id"] is None
    assert params["hub_token"] != secret
    stored = json.dumps(params)
    assert secret not in stored and secret not in out  # neither in the store nor on stdout
    kogu, _ = protocol_lines(out)
    printed = {k: v for o in kogu if "parameters" in o for k, v in o["parameters"].items()}
    assert printed["lr_scheduler_type"] == "cosine" and printed["label_names"] == ["labels"]


def test_evaluate_on_test_data_with_the_run_kept_open_reports_the_real_test_values(
    tmp_path, store_dir, store, capfd
):
    callback = TrackerCallback(path="modes/test-set", finish_on_train_end=False)
    trainer = make_trainer(tmp_path, [callback])
    with callback.guard():
        trainer.train()
        result = trainer.evaluate(Digits(1500, 1700), metric_key_prefix="test")
    kogu, progress = protocol_lines(finished_output(capfd))
    test_acc, test_loss = 100 * result["test_accuracy"], result["test_loss"]
    finals = [o["metric"]["metrics"] for o in kogu if "metric" in o and o["metric"]["iteration"] == -1]
    completed = [p for p in progress if p["status"] == "completed"]
    assert len(finals) == 1 and len(completed) == 1 and progress[-1] is completed[0]
    view = only_run(store)
    for channel in (completed[0], finals[0], view.summary):
        assert channel["test_accuracy"] == pytest.approx(test_acc)  # the test set's, not a val accuracy
        assert channel["test_loss"] == pytest.approx(test_loss)
    for channel in (finals[0], view.summary):
        best = max(view.epochs(), key=lambda e: e["values"]["val_accuracy"])
        assert channel["val_accuracy"] == best["values"]["val_accuracy"]  # validation kept beside it


def test_report_to_another_integration_records_and_prints_once(tmp_path, store_dir, store, capfd):
    pytest.importorskip("tensorboard")
    callback = TrackerCallback(path="modes/report-to")
    make_trainer(tmp_path, [callback], report_to=["tensorboard"]).train()
    kogu, progress = protocol_lines(finished_output(capfd))
    assert [(p["epoch"], p["status"]) for p in progress] == [
        (1, "training"),
        (2, "training"),
        (2, "completed"),
    ]
    assert sum(o.get("metric", {}).get("iteration") == -1 for o in kogu) == 1
    assert sum("parameters" in o for o in kogu) >= 1
    view = only_run(store)
    assert [e["epoch"] for e in view.epochs()] == [1, 2]
    for key in ("loss", "eval_accuracy"):
        steps = [s for _, s, _ in view.metrics(key)]
        assert steps == sorted(set(steps)), (key, steps)  # nothing twice
    assert any(tmp_path.rglob("events.out.tfevents.*"))  # the other integration ran too


RESUME_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    sys.path[:0] = [{tests!r}]  # tests/: linecheck, and integrations as a package
    from pathlib import Path
    from transformers import TrainerCallback
    from integrations.test_transformers import make_trainer
    from epochline.integrations.transformers import TrackerCallback

    mode, folder = sys.argv[1], Path(sys.argv[2])

    class CtrlC(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 13:
                os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, in epoch 2

    if mode == "first":
        callbacks = [TrackerCallback(path="modes/resume"), CtrlC()]
    else:
        callbacks = [TrackerCallback(path="modes/resume", run_id=sys.argv[3])]
    trainer = make_trainer(folder, callbacks, num_train_epochs=3, save_strategy="epoch")
    trainer.train(resume_from_checkpoint=None if mode == "first" else str(folder / "out" / "checkpoint-10"))
""")


@pytest.mark.slow
def test_ctrl_c_then_resume_from_checkpoint_in_a_new_process(tmp_path, store_dir, store):
    script = tmp_path / "train.py"
    script.write_text(RESUME_SCRIPT.format(tests=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    env = {
        **os.environ,
        "EPOCHLINE_STORE": str(store_dir),
        "OMP_NUM_THREADS": "1",
        "PYTHONWARNINGS": "ignore",
    }

    def train(*args):
        return subprocess.run(
            [sys.executable, str(script), *args, str(tmp_path)],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )

    first = train("first")
    # Ctrl-C ends the process as Ctrl-C does (killed by SIGINT: 130 in a shell), the run interrupted
    assert first.returncode in (-signal.SIGINT, 128 + signal.SIGINT), (first.returncode, first.stderr[-2000:])
    (run,) = store().runs()
    assert (run.status, run.reason) == ("interrupted", "KeyboardInterrupt")
    assert [e["epoch"] for e in run.epochs()] == [1]
    epoch_1 = run.epochs()[0]
    assert protocol_lines(first.stdout)[1][-1]["status"] == "interrupted"

    second = subprocess.run(
        [sys.executable, str(script), "resume", str(tmp_path), run.id],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert second.returncode == 0, second.stderr[-2000:]
    (run,) = store().runs()  # the same run, continued
    assert run.status == "completed" and run.reason is None
    assert [e["epoch"] for e in run.epochs()] == [1, 2, 3]
    assert run.epochs()[0] == epoch_1  # epoch 1's record untouched by the new process
    assert [(r["step"], r["epoch"]) for r in run.metric_rows("eval_accuracy")] == [(10, 1), (20, 2), (30, 3)]
    completed = protocol_lines(second.stdout)[1][-1]
    assert (completed["status"], completed["epoch"], completed["total_epochs"]) == ("completed", 3, 3)


def test_eval_steps_longer_than_an_epoch_keeps_val_series_and_final_values(tmp_path, store_dir, store, capfd):
    # 10 steps per epoch, evaluation every 15: epoch 1 has none, epochs 2 and 3 one each
    callback = TrackerCallback(path="modes/eval-steps")
    make_trainer(tmp_path, [callback], num_train_epochs=3, eval_strategy="steps", eval_steps=15).train()
    kogu, progress = protocol_lines(finished_output(capfd))
    view = only_run(store)
    records = {e["epoch"]: e["values"] for e in view.epochs()}
    assert sorted(records) == [1, 2, 3] and "val_accuracy" not in records[1]
    evals = {r["step"]: r for r in view.metric_rows("eval_accuracy")}
    assert sorted(evals) == [15, 30] and [evals[s]["epoch"] for s in (15, 30)] == [2, 3]

    plots: dict = {}
    for obj in kogu:
        if "plot" in obj:
            plots.setdefault(obj["plot"]["name"], set()).update(obj["plot"]["metrics"])
    assert {"train_loss", "val_loss"} <= plots["loss"] and "val_accuracy" in plots["accuracy"], plots

    best = max((2, 3), key=lambda e: (records[e]["val_accuracy"], -e))  # ties: the earlier epoch
    finals = [o["metric"]["metrics"] for o in kogu if "metric" in o and o["metric"]["iteration"] == -1]
    completed = [p for p in progress if p["status"] == "completed"]
    assert len(finals) == 1 and len(completed) == 1 and progress[-1] is completed[0]
    for channel in (view.summary, finals[0]):
        assert channel["best_epoch"] == best and channel["total_epochs"] == 3
        assert channel["val_accuracy"] == records[best]["val_accuracy"]
        assert not any(k.startswith("test_") for k in channel)
    assert completed[0]["test_accuracy"] == pytest.approx(records[best]["val_accuracy"])
    assert completed[0]["val_loss"] == pytest.approx(records[best]["val_loss"])
