"""The Kogu emitter: exact lines for a fixed run, the key rule, values, iteration modes, failures."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import epochline
from epochline.protocol import KeyMapper, kogu_key, kogu_param, kogu_scalar

from .helpers import KOGU_KEY, check_kogu_line, check_lines, fixed_run

GOLDEN = [
    {"name": "golden"},
    {"tag": "baseline"},
    {
        "parameters": {
            "lr": 0.01,
            "optimizer_name": "adam",
            "optimizer_betas": [0.9, 0.999],
            "layers": [64, 32],
            "k_1st": True,
            "mixed": '[1,"a"]',
        }
    },
    {"plot": {"type": "line", "name": "loss", "y_label": "loss", "metrics": ["train_loss", "val_loss"]}},
    {
        "plot": {
            "type": "line",
            "name": "accuracy",
            "y_label": "accuracy (%)",
            "metrics": ["train_accuracy", "val_accuracy"],
        }
    },
    {
        "metric": {
            "iteration": 1,
            "metrics": {
                "train_loss": 0.9,
                "train_accuracy": 60.0,
                "val_loss": 1.0,
                "val_accuracy": 55.00000000000001,
                "lr": 0.01,
            },
        }
    },
    {
        "metric": {
            "iteration": 2,
            "metrics": {
                "train_loss": 0.5,
                "train_accuracy": 80.0,
                "val_loss": 0.7,
                "val_accuracy": 75.0,
                "lr": "NaN",
            },
        }
    },
    {
        "metric": {
            "iteration": 3,
            "metrics": {
                "train_loss": 0.4,
                "train_accuracy": 85.0,
                "val_loss": 0.8,
                "val_accuracy": 70.0,
                "lr": 0.001,
            },
        }
    },
    {"upload": "<artifact>"},
    {"tag": "best"},
    {"untag": "baseline"},
    {"comment": "fixed run for golden tests"},  # newline -> space, as Kogu's helper prints it
    {"plot": {"type": "line", "name": "Learning rate", "y_label": "lr", "metrics": ["lr"]}},
    {"name": "golden-2"},
    # the final record: the best epoch (2, by val accuracy) under the per-epoch keys, in percent,
    # best_epoch, total_epochs, then what run.summary() was given under its own keys
    {
        "metric": {
            "iteration": -1,
            "metrics": {
                "train_loss": 0.5,
                "train_accuracy": 80.0,
                "val_loss": 0.7,
                "val_accuracy": 75.0,
                "lr": "NaN",
                "best_epoch": 2,
                "total_epochs": 3,
                "val_acc": 0.75,
                "train_loss_2": 0.4,
                "inf": "Infinity",
            },
        }
    },
]


def golden_text(artifact: str) -> list:
    return [json.dumps(o).replace('"<artifact>"', json.dumps(artifact)) for o in GOLDEN]


def test_golden_lines(store_dir, tmp_path, capsys):
    out = fixed_run(tmp_path, "kogu")
    lines = capsys.readouterr().out.splitlines()
    assert lines == golden_text(out["artifact"])
    check_lines("\n".join(lines))


def test_failed_interrupted_crashed_print_fail_with_reason(store_dir, tmp_path, capsys):
    fixed_run(tmp_path, "kogu", "failed", "ValueError: bad batch")
    assert capsys.readouterr().out.splitlines()[-1] == '{"fail": "failed: ValueError: bad batch"}'
    for status in ("interrupted", "crashed"):
        with epochline.init("x", emit="kogu") as run:
            run.finish(status)
        assert capsys.readouterr().out.splitlines()[-1] == json.dumps({"fail": status})
    try:
        with epochline.init("x", emit="kogu"):
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert capsys.readouterr().out.splitlines()[-1] == '{"fail": "interrupted: KeyboardInterrupt"}'


def test_completed_run_prints_no_fail_and_summary_carries_best(store_dir, capsys):
    with epochline.init("x", emit="kogu") as run:
        run.set_primary_metric("val_acc")
        for step, acc in enumerate([0.5, 0.9, 0.7]):
            run.log({"val_acc": acc}, step=step)
    lines = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert not any("fail" in l for l in lines)
    # no epoch records: the final record is the primary metric's best, on the records' scale
    assert lines[-1] == {"metric": {"iteration": -1, "metrics": {"best_val_acc": 90.0}}}


def test_step_mode_uses_steps_and_never_epochs(store_dir, capsys, monkeypatch):
    monkeypatch.setenv("EPOCHLINE_KOGU_ITERATION", "step")
    with epochline.init("x", emit="kogu") as run:
        run.log({"train/loss": 0.5, "val-acc": 0.7, "note": "warmup"}, step=7)
        run.end_epoch(1, {"loss": 0.5})
    lines = capsys.readouterr().out.splitlines()
    check_lines("\n".join(lines))
    metrics = [json.loads(l)["metric"] for l in lines if l.startswith('{"metric"')]
    assert metrics[:-1] == [
        {"iteration": 7, "metrics": {"train_loss": 0.5, "val_acc": 0.7, "note": "warmup"}}
    ]
    assert metrics[-1]["iteration"] == -1
    plots = [json.loads(l)["plot"] for l in lines if l.startswith('{"plot"')]
    assert [(p["name"], p["metrics"], p["y_label"]) for p in plots] == [
        ("loss", ["train_loss"], "loss"),
        ("accuracy", ["val_acc"], "accuracy"),
    ]


def test_epoch_mode_ignores_step_metrics_and_declares_each_family_once(store_dir, capsys):
    with epochline.init("x", emit="kogu") as run:
        for epoch in (1, 2):
            run.log({"loss": 0.1}, step=epoch * 100)
            run.end_epoch(epoch, {"loss": 0.1, "val_loss": 0.2})
    lines = capsys.readouterr().out.splitlines()
    metric_iterations = [json.loads(l)["metric"]["iteration"] for l in lines if '"metric"' in l]
    assert metric_iterations == [1, 2, -1]
    assert sum('"plot"' in l for l in lines) == 1


@pytest.mark.filterwarnings("ignore:epochline. acc=-inf is declared a fraction")
def test_numpy_and_torch_values_and_nonfinite_stay_strict_json(store_dir, capsys):
    torch = pytest.importorskip("torch")
    with epochline.init("x", emit="kogu") as run:
        run.log_params(
            {
                "a": np.float32(0.5),
                "b": np.int64(3),
                "c": torch.tensor(2.5),
                "d": np.array([1, 2]),
                "e": float("nan"),
                "f": [1.0, float("inf")],
            }
        )
        run.end_epoch(1, {"loss": np.float32(float("nan")), "acc": np.float64(-math.inf)})
    lines = capsys.readouterr().out.splitlines()
    check_lines("\n".join(lines))
    params = json.loads(lines[0])["parameters"]
    assert params == {"a": 0.5, "b": 3, "c": 2.5, "d": [1, 2], "e": "NaN", "f": '[1.0,"Infinity"]'}
    metric = next(json.loads(l) for l in lines if '"metric"' in l)["metric"]["metrics"]
    assert metric == {"train_loss": "NaN", "train_accuracy": "-Infinity"}


def test_emit_off_by_default_and_env_turns_it_on(store_dir, capsys, monkeypatch):
    with epochline.init("x", name="quiet") as run:
        run.end_epoch(1, {"loss": 0.5})
    assert capsys.readouterr().out == ""
    monkeypatch.setenv("EPOCHLINE_EMIT", "kogu")
    with epochline.init("x", name="loud") as run:
        run.end_epoch(1, {"loss": 0.5})
    assert capsys.readouterr().out.splitlines()[0] == '{"name": "loud"}'
    with epochline.init("x", name="off", emit="none") as run:
        run.end_epoch(1, {"loss": 0.5})
    assert capsys.readouterr().out == ""


def test_generated_name_is_not_printed(store_dir, capsys):
    with epochline.init("a/b", emit="kogu", params={"x": 1}):
        pass
    assert capsys.readouterr().out.splitlines() == ['{"parameters": {"x": 1}}']


@pytest.mark.parametrize(
    "name, key",
    [
        ("val/acc", "val_acc"),
        ("train-loss", "train_loss"),
        ("1st", "k_1st"),
        ("acc@1", "acc_1"),
        ("  lr  ", "lr"),
        ("top-5 (%)", "top_5_"),
        ("", "k_"),
        ("_x", "k__x"),
        ("été", "k__t_"),
        ("a..b", "a_b"),
        ("ok_Name9", "ok_Name9"),
    ],
)
def test_key_rule_examples(name, key):
    assert kogu_key(name) == key


def test_collisions_are_disambiguated_not_merged():
    mapper = KeyMapper()
    assert [mapper(n) for n in ("a.b", "a_b", "a-b", "a_b_2", "a.b")] == [
        "a_b",
        "a_b_2",
        "a_b_3",
        "a_b_2_2",
        "a_b",
    ]


@given(st.lists(st.text(max_size=12), max_size=20))
def test_key_mapper_is_valid_and_injective(names):
    mapper = KeyMapper()
    keys = {name: mapper(name) for name in names}
    assert all(KOGU_KEY.match(k) for k in keys.values())
    assert len(set(keys.values())) == len(keys)
    assert all(mapper(name) == key for name, key in keys.items())


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
        lambda c: st.lists(c, max_size=4),
        max_leaves=8,
    )
)
def test_values_always_fit_the_document(value):
    for converted, array_ok in ((kogu_param(value), True), (kogu_scalar(value), False)):
        if converted is None:
            assert value is None
            continue
        check_kogu_line(
            json.dumps(
                {
                    "parameters" if array_ok else "metric": {"k": converted}
                    if array_ok
                    else {"iteration": 0, "metrics": {"k": converted}}
                }
            )
        )
