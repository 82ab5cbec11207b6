"""transformers in the modes users use (issue 13): early stopping with the best model loaded at the
end, a real Trainer (tiny BERT from a config, digits as tokens, CPU, offline; seconds)."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")
pytest.importorskip("accelerate", reason="transformers' Trainer needs accelerate (transformers[torch])")

from transformers import EarlyStoppingCallback, TrainerCallback  # noqa: E402

from epochline.integrations.transformers import TrackerCallback  # noqa: E402
from linecheck import protocol_lines  # noqa: E402

from .conftest import finished_output  # noqa: E402
from .test_transformers import make_trainer, only_run  # noqa: E402

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
