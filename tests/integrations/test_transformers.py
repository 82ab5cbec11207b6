"""TrackerCallback with a real transformers Trainer (tiny BERT from a config, digits as tokens, CPU)."""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
import textwrap
import warnings

import pytest

pytest.importorskip("transformers")
pytest.importorskip("accelerate", reason="transformers' Trainer needs accelerate (transformers[torch])")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    Trainer,  # noqa: E402
    TrainerState,
    TrainingArguments,
)

from epochline.integrations.transformers import TrackerCallback  # noqa: E402
from linecheck import protocol_lines  # noqa: E402

from .conftest import finished_output  # noqa: E402

_ARG_FIELDS = {f.name for f in dataclasses.fields(TrainingArguments)}


# -- a tiny, fast, offline setup ------------------------------------------------------------------
class Digits(torch.utils.data.Dataset):
    """sklearn's bundled digits: 64 pixels quantised into 5 levels -> token ids, CLS first."""

    def __init__(self, start: int, stop: int):
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        tokens = (x[start:stop] // 4).astype(np.int64) + 1
        self.ids = torch.from_numpy(np.concatenate([np.full((len(tokens), 1), 6), tokens], axis=1))
        self.labels = torch.from_numpy(y[start:stop].astype(np.int64))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def accuracy(pred) -> dict:
    return {"accuracy": float((pred.predictions.argmax(-1) == pred.label_ids).mean())}


def make_args(tmp_path, **overrides) -> TrainingArguments:
    kw = dict(
        output_dir=str(tmp_path / "out"),
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        eval_strategy="epoch",
        num_train_epochs=2,
        per_device_train_batch_size=32,
        per_device_eval_batch_size=64,
        learning_rate=3e-3,
        logging_steps=4,
        disable_tqdm=True,
        seed=0,
        dataloader_num_workers=0,
    )
    kw.update(overrides)
    if "eval_strategy" not in _ARG_FIELDS:  # transformers < 4.46
        kw["evaluation_strategy"] = kw.pop("eval_strategy")
    return TrainingArguments(**kw)


def make_trainer(tmp_path, callbacks, n_train=320, n_val=96, **overrides) -> Trainer:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=72,
        num_labels=10,
    )
    model = BertForSequenceClassification(config)
    return Trainer(
        model=model,
        args=make_args(tmp_path, **overrides),
        train_dataset=Digits(0, n_train),
        eval_dataset=Digits(n_train, n_train + n_val),
        compute_metrics=accuracy,
        callbacks=callbacks,
    )


def only_run(store, **filters):
    runs = store().runs(**filters)
    assert len(runs) == 1, runs
    return runs[0]


def eval_value_at(view, key, step):
    return {s: v for _, s, v in view.metrics(key)}[step]


# -- the main path ----------------------------------------------------------------------------------
def test_two_epochs_eval_each_epoch(tmp_path, store_dir, store, capfd):
    callback = TrackerCallback(path="nlp/tiny-bert", tags=("tiny",), params={"data": "digits"})
    trainer = make_trainer(tmp_path, [callback])
    trainer.train()
    assert callback.run.finished and callback.run.status == "completed"
    out = finished_output(capfd)

    view = only_run(store, path="nlp/tiny-bert")
    assert view.status == "completed" and view.framework == "transformers" and view.tags == ["tiny"]
    params = view.params
    assert params["learning_rate"] == 3e-3 and params["num_train_epochs"] == 2
    assert params["per_device_train_batch_size"] == 32 and params["eval_strategy"] == "epoch"
    assert params["model.hidden_size"] == 32 and params["model.num_hidden_layers"] == 2
    assert params["model.class"] == "BertForSequenceClassification"
    n_trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    assert params["model.num_trainable_parameters"] == n_trainable > 0
    assert params["data"] == "digits" and params["trainer.total_epochs"] == 2
    assert "output_dir" in view.ignored_params and "learning_rate" not in view.ignored_params

    keys = set(view.metric_keys())
    assert {"loss", "learning_rate", "grad_norm", "eval_loss", "eval_accuracy"} <= keys
    steps_per_epoch = math.ceil(320 / 32)
    rows = view.metric_rows("eval_accuracy")
    assert [(r["step"], r["epoch"], r["stage"]) for r in rows] == [
        (steps_per_epoch, 1, "val"),
        (2 * steps_per_epoch, 2, "val"),
    ]
    assert all(r["stage"] == "train" for r in view.metric_rows("loss"))
    assert (
        view.summary["train_runtime"] > 0 and "train_loss_mean" in view.summary
    )  # the whole run's mean, not an epoch's

    epochs = view.epochs()
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert all(e["total_epochs"] == 2 for e in epochs)
    for record, row in zip(epochs, rows):
        values = record["values"]
        assert values["val_accuracy"] == pytest.approx(100 * row["value"])  # fraction -> percent
        assert "val_accuracy" in record["percent"] and "val_loss" in values
        # the running loss logged at the epoch's end (epoch_loss=True), not an older one
        losses = {s: v for _, s, v in view.metrics("loss")}
        assert values["train_loss"] == pytest.approx(losses[row["step"]])
    check_lines(out, n_epochs=2, accuracies=[e["values"]["val_accuracy"] for e in epochs])


def check_lines(out: str, n_epochs: int, accuracies: list) -> None:
    """PROGRESS lines as AiManage reads them; Kogu lines as the kogu library would accept them
    (each line checked by the shared checker, tests/linecheck.py; the Trainer's own logs are
    Python dicts, "{'loss': ...}", which Kogu ignores and the checker leaves alone)."""
    kogu, progress = protocol_lines(out)
    per_epoch = [p for p in progress if p.get("status") == "training"]
    assert [p["epoch"] for p in per_epoch] == list(range(1, n_epochs + 1))
    assert all(p["total_epochs"] == n_epochs for p in per_epoch)
    assert [p["val_accuracy"] for p in per_epoch] == pytest.approx(accuracies)
    assert progress[-1].get("status") == "completed"
    params = [k["parameters"] for k in kogu if "parameters" in k]
    metrics = [k["metric"] for k in kogu if "metric" in k]
    assert params and any(v == 0.003 for p in params for v in p.values())  # learning_rate
    per_epoch = [m for m in metrics if m["iteration"] > 0]
    assert [m["iteration"] for m in per_epoch] == list(range(1, n_epochs + 1))


def test_step_based_evaluation_gives_one_record_per_training_epoch(tmp_path, store_dir, store):
    # 10 steps per epoch, evaluation every 4 steps, stopped mid-epoch 3 by max_steps=24
    callback = TrackerCallback(path="nlp/steps", emit="none", epoch_loss=False)
    trainer = make_trainer(
        tmp_path, [callback], eval_strategy="steps", eval_steps=4, max_steps=24, logging_steps=3
    )
    trainer.train()
    view = only_run(store)
    assert view.status == "completed"
    evals = {s: v for _, s, v in view.metrics("eval_accuracy")}
    assert sorted(evals) == [4, 8, 12, 16, 20, 24]
    epochs = view.epochs()
    assert [e["epoch"] for e in epochs] == [1, 2, 3]  # 24 steps = 2.4 epochs: the partial one counts
    assert all(e["total_epochs"] == 3 for e in epochs)
    # each record holds the last evaluation made in its epoch
    for record, step in zip(epochs, (8, 20, 24)):
        assert record["values"]["val_accuracy"] == pytest.approx(100 * evals[step])
    losses = {s: v for _, s, v in view.metrics("loss")}
    assert epochs[0]["values"]["train_loss"] == pytest.approx(losses[9])  # last log in epoch 1
    assert [r["epoch"] for r in view.metric_rows("eval_accuracy")] == [
        1,
        1,
        2,
        2,
        2,
        3,
    ]  # step 20 ends epoch 2


def test_no_evaluation_still_gives_train_loss_records(tmp_path, store_dir, store):
    callback = TrackerCallback(path="nlp/noeval", emit="none")
    make_trainer(tmp_path, [callback], eval_strategy="no", logging_steps=100).train()
    epochs = only_run(store).epochs()
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert all("train_loss" in e["values"] and "val_accuracy" not in e["values"] for e in epochs)


def test_images_and_evaluate_after_train(tmp_path, store_dir, store):
    seen = []

    def images(state, model):
        seen.append((state.global_step, type(model).__name__))
        return {"confusion": np.full((8, 8), state.global_step * 10 % 255, dtype=np.uint8)}

    callback = TrackerCallback(path="nlp/images", emit="none", images=images, finish_on_train_end=False)
    trainer = make_trainer(tmp_path, [callback])
    with callback.guard():
        trainer.train()
        assert not callback.run.finished and callback.run.in_progress is None
        trainer.evaluate(Digits(1500, 1600), metric_key_prefix="test")
    view = only_run(store)
    assert view.status == "completed"
    assert [s for s, _ in seen] == [10, 20, 20]
    assert sorted({i.step for i in view.images("confusion")}) == [10, 20]  # evaluate() after train: 20 again
    assert "test_accuracy" in view.metric_keys() and len(view.epochs()) == 2


def test_run_is_finished_at_train_end_by_default(tmp_path, store_dir, store):
    callback = TrackerCallback(path="nlp/after", emit="none")
    trainer = make_trainer(tmp_path, [callback], num_train_epochs=1)
    trainer.train()
    trainer.predict(Digits(1500, 1600))  # after train(): test values join the run's last record
    view = only_run(store)
    assert view.status == "completed" and [e["epoch"] for e in view.epochs()] == [1]
    record = view.epochs()[0]["values"]
    assert 0 <= record["test_accuracy"] <= 100 and "val_accuracy" in record and "train_loss" in record
    assert [r["epoch"] for r in view.metric_rows("test_accuracy")] == [1]
    trainer.train()  # a second train() with the same callback is a second run
    assert len(store().runs(path="nlp/after", status="completed")) == 2


# -- failures -------------------------------------------------------------------------------------
def test_guard_marks_an_exception_failed_and_reraises(tmp_path, store_dir, store):
    from transformers import TrainerCallback

    class Boom(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise RuntimeError("boom at step 3")

    callback = TrackerCallback(path="nlp/boom", emit="none")
    trainer = make_trainer(tmp_path, [callback, Boom()])
    with pytest.raises(RuntimeError, match="boom"):
        with callback.guard():
            trainer.train()
    view = only_run(store)
    assert (view.status, view.reason) == ("failed", "RuntimeError: boom at step 3")
    assert view.epochs() == []


def test_guard_marks_ctrl_c_interrupted(tmp_path, store_dir, store):
    from transformers import TrainerCallback

    class CtrlC(TrainerCallback):
        def on_epoch_begin(self, args, state, control, **kwargs):
            if state.epoch >= 1:
                raise KeyboardInterrupt

    callback = TrackerCallback(path="nlp/ctrlc", emit="none")
    trainer = make_trainer(tmp_path, [callback, CtrlC()])
    with pytest.raises(KeyboardInterrupt):
        with callback.guard():
            trainer.train()
    view = only_run(store)
    assert view.status == "interrupted"
    assert [e["epoch"] for e in view.epochs()] == [1]  # the finished epoch was recorded


def test_guard_marks_a_swallowed_exception_failed(tmp_path, store_dir, store):
    from transformers import TrainerCallback

    class Boom(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            raise ValueError("caught by the user")

    callback = TrackerCallback(path="nlp/swallowed", emit="none")
    trainer = make_trainer(tmp_path, [callback, Boom()])
    with callback.guard():
        try:
            trainer.train()
        except ValueError:
            pass
    view = only_run(store)
    assert view.status == "failed" and "train did not reach its end" in view.reason


SCRIPT = textwrap.dedent("""
    import os, signal, sys
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    sys.path[:0] = [os.path.dirname({tests!r})]  # tests/: linecheck, and this folder as a package
    from integrations.test_transformers import make_trainer
    from pathlib import Path
    from transformers import TrainerCallback
    from epochline.integrations.transformers import TrackerCallback

    mode = sys.argv[1]

    class Trouble(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                if mode == "raise":
                    raise RuntimeError("boom at step 3")
                if mode == "sigint":
                    os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C
                if mode == "swallow":
                    raise ValueError("swallowed")

    trainer = make_trainer(Path(sys.argv[2]), [TrackerCallback(path="sub/" + mode), Trouble()])
    if mode == "swallow":
        try:
            trainer.train()
        except ValueError:
            pass
    else:
        trainer.train()
""")


@pytest.mark.slow
def test_uncaught_exception_ctrl_c_and_swallowed_exception_in_real_processes(tmp_path, store_dir, store):
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT.format(tests=os.path.dirname(__file__)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    procs = {
        mode: subprocess.Popen(
            [sys.executable, str(script), mode, str(tmp_path / mode)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for mode in ("raise", "sigint", "swallow")
    }
    results = {mode: (p.wait(timeout=240), p.stderr.read()) for mode, p in procs.items()}
    outputs = {mode: p.stdout.read() for mode, p in procs.items()}
    for p in procs.values():
        p.stdout.close()
        p.stderr.close()
    assert results["raise"][0] != 0 and "boom at step 3" in results["raise"][1]
    assert results["sigint"][0] != 0 and "KeyboardInterrupt" in results["sigint"][1]
    assert results["swallow"][0] == 0, results["swallow"][1]
    got = {r.path: (r.status, r.reason) for r in store().runs()}
    assert got["sub/raise"] == ("failed", "RuntimeError: boom at step 3")
    assert got["sub/sigint"] == ("interrupted", "KeyboardInterrupt")
    assert got["sub/swallow"][0] == "failed" and "train did not reach its end" in got["sub/swallow"][1]
    # the last PROGRESS line tells the consumer how it ended; Kogu gets "fail"
    for mode, status in (("raise", "failed"), ("sigint", "interrupted"), ("swallow", "failed")):
        kogu, progress = protocol_lines(outputs[mode])
        assert progress and progress[-1]["status"] == status, mode
        fails = [obj for obj in kogu if "fail" in obj]
        assert len(fails) == 1 and status in fails[0]["fail"], (mode, fails)


# -- checkpoints, ranks, params -------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["paths", "all", "best", "none"])
def test_checkpoints_option(tmp_path, store_dir, store, mode):
    callback = TrackerCallback(path=f"nlp/ckpt-{mode}", emit="none", checkpoints=mode)
    make_trainer(
        tmp_path,
        [callback],
        save_strategy="epoch",
        metric_for_best_model="accuracy",
        load_best_model_at_end=True,
    ).train()
    view = only_run(store)
    out = tmp_path / "out"
    saved = sorted(p.name for p in out.iterdir())
    assert saved == ["checkpoint-10", "checkpoint-20"]
    names = {a.name.split("/")[0] for a in view.artifacts()}
    texts = [t.text for t in view.texts()]
    if mode == "none":
        assert names == set() and "checkpoint.last" not in view.summary
        return
    assert [t for t in texts if t.startswith("checkpoint saved")] == [
        f"checkpoint saved: {out / name}" for name in saved
    ]
    assert view.summary["checkpoint.last"] == str(out / "checkpoint-20")
    evals = {s: v for _, s, v in view.metrics("eval_accuracy")}
    best_step = max(sorted(evals), key=lambda s: evals[s])  # first best on ties, as the Trainer
    assert view.summary["checkpoint.best"] == str(out / f"checkpoint-{best_step}")
    assert view.summary["best_eval_accuracy"] == evals[best_step] * 100  # on the epoch records' scale
    if mode == "paths":
        assert names == set()
    elif mode == "all":
        assert names == {"checkpoint-10", "checkpoint-20"}
    else:
        assert names == {"checkpoint-best"}
        best = {a.name for a in view.artifacts()}
        assert "checkpoint-best/model.safetensors" in best
        stored = next(a for a in view.artifacts() if a.name == "checkpoint-best/model.safetensors")
        assert stored.size == (out / f"checkpoint-{best_step}" / "model.safetensors").stat().st_size


def test_only_world_process_zero_logs(tmp_path, store_dir, store):
    callback = TrackerCallback(path="nlp/rank1", emit="none")
    args = make_args(tmp_path)
    state = TrainerState(is_world_process_zero=False, is_local_process_zero=False)
    from transformers import TrainerControl

    control = TrainerControl()
    callback.on_train_begin(args, state, control)
    callback.on_log(args, state, control, logs={"loss": 1.0})
    callback.on_epoch_end(args, state, control)
    callback.on_evaluate(args, state, control, metrics={"eval_accuracy": 0.5})
    callback.on_train_end(args, state, control)
    assert callback._session.run is None  # no run object, not even a no-op one
    assert not store_dir.exists() or store().runs() == []


def test_odd_params_and_configs_never_crash(tmp_path, store_dir, store):
    callback = TrackerCallback(
        path="nlp/odd", emit="none", params={"fn": lambda x: x, "obj": object(), "nested": {"a/b": [1, None]}}
    )
    trainer = make_trainer(tmp_path, [callback], num_train_epochs=1, eval_strategy="no")
    trainer.model.config.odd = object()  # configs can carry anything
    trainer.model.config.torch_dtype_like = torch.float32
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        trainer.train()
    params = only_run(store).params
    assert (
        params["fn"].endswith("<lambda>") and params["obj"] == "object()"
    )  # no address: identical configs, one fingerprint
    assert params["nested.a/b"] == [1, None] and "model.odd" in params


def test_importing_epochline_imports_no_framework():
    code = (
        "import sys, epochline, epochline.integrations; "
        "bad = [m for m in ('transformers', 'torch') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="checkpoints"):
        TrackerCallback(checkpoints="some")
    with pytest.raises(TypeError, match="images"):
        TrackerCallback(images={"a": 1})
    with pytest.raises(ValueError, match="did you mean 'best'"):
        TrackerCallback(checkpoints="bset")
    with pytest.raises(TypeError, match="epoch_loss must be True or False, got 'yes'"):
        TrackerCallback(epoch_loss="yes")
    with pytest.raises(TypeError, match="finish_on_train_end must be True or False, got 0"):
        TrackerCallback(finish_on_train_end=0)


# -- issue 13 ---------------------------------------------------------------------------------------
def test_caught_failure_then_retry_is_two_runs(tmp_path, store_dir, store):
    from transformers import TrainerCallback

    class FailOnce(TrainerCallback):
        failed = False

        def on_step_end(self, args, state, control, **kwargs):
            if not self.failed and state.global_step == 3:
                FailOnce.failed = True
                raise RuntimeError("\x1b[1mboom\x1b[0m once")

    callback = TrackerCallback(path="nlp/retry", emit="none")
    trainer = make_trainer(tmp_path, [callback, FailOnce()], num_train_epochs=1)
    with pytest.raises(RuntimeError):
        trainer.train()
    trainer.train()  # the user caught it and retries
    runs = sorted(store().runs(path="nlp/retry"), key=lambda r: r.start_time)
    assert [r.status for r in runs] == ["failed", "completed"]
    assert "did not reach its end" in runs[0].reason and runs[0].epochs() == []
    assert [e["epoch"] for e in runs[1].epochs()] == [1]


def test_a_callback_registered_twice_records_once(tmp_path, store_dir, store):
    callback = TrackerCallback(path="nlp/twice", emit="none")
    trainer = make_trainer(tmp_path, [callback])
    trainer.add_callback(callback)
    with pytest.warns(RuntimeWarning, match="registered twice"):
        trainer.train()
    view = only_run(store)
    assert [e["epoch"] for e in view.epochs()] == [1, 2]
    steps = [s for _, s, _ in view.metrics("loss")]
    assert steps == sorted(set(steps))


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"accuracy_scale": "percnt"}, ValueError, ["'fraction' or 'percent'"]),
        ({"path": 5}, TypeError, ["path must be a string"]),
        ({"run_id": "bad id/"}, ValueError, ["letters, digits"]),
        ({"emit": "kogu,progres"}, ValueError, ["did you mean 'progress'"]),
        ({"tagz": ["x"]}, TypeError, ["'tagz'", "did you mean 'tags'"]),
        ({"epoch_loss": "yes"}, TypeError, ["True or False"]),
    ],
)
def test_constructor_arguments_are_checked_when_built(kwargs, error, words):
    with pytest.raises(error) as info:
        TrackerCallback(**kwargs)
    assert all(w in str(info.value) for w in words), str(info.value)
