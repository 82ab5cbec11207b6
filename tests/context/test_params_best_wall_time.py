"""legm's parameter model (parents, names), the pinned best step and forced wall times."""

import math

import numpy as np
import pytest

import epochline


def _init(path="p", **kw):
    return epochline.init(path, capture_env=False, **kw)


def test_child_counts_only_while_its_parent_is_set(store_dir, store):
    common = {"lr": 0.1, "use_momentum": False}
    with _init(params={**common, "momentum": 0.9}, param_parents={"momentum": "use_momentum"}) as a:
        pass
    with _init(params={**common, "momentum": 0.5}, param_parents={"momentum": "use_momentum"}) as b:
        pass
    with _init(
        params={"lr": 0.1, "use_momentum": True, "momentum": 0.9}, param_parents={"momentum": "use_momentum"}
    ) as c:
        pass
    with _init(
        params={"lr": 0.1, "use_momentum": True, "momentum": 0.5}, param_parents={"momentum": "use_momentum"}
    ) as d:
        pass
    assert a.fingerprint == b.fingerprint  # momentum is off: its value does not matter
    assert c.fingerprint != d.fingerprint  # momentum is on: it counts
    assert a.fingerprint != c.fingerprint  # use_momentum itself counts
    views = {r.id: r for r in store().runs()}
    for run in (a, b, c, d):  # the stored fingerprint is the run's
        assert views[run.id].fingerprint == run.fingerprint
    assert views[a.id].ignored_params == ["momentum"]
    assert views[a.id].param_meta == {"parents": {"momentum": "use_momentum"}, "name_params": []}


def test_parent_turned_on_later_restores_the_child_and_ignore_later_applies(store_dir, store):
    run = _init(params={"opt": None, "opt.momentum": 0.9, "seed": 1})
    run.log_params({"nesterov": True}, parent="opt")
    off = run.fingerprint
    run.log_params(opt="sgd")  # parent set: both children count now
    on = run.fingerprint
    run.log_params(ignore="seed")  # given after seed was logged: still applies
    run.finish()
    view = store().run(run.id)
    assert off != on
    assert view.fingerprint == run.fingerprint
    assert view.ignored_params == ["seed"]


def test_parent_given_for_a_prefix_and_chains(store_dir, store):
    params = {"sched": {"kind": "step", "gamma": 0.5}, "use_sched": 0, "warm": True}
    with _init(params=params, param_parents={"sched": "use_sched", "use_sched": "warm"}) as run:
        pass
    assert sorted(store().run(run.id).ignored_params) == ["sched.gamma", "sched.kind"]
    with _init(
        params={**params, "use_sched": 1, "warm": False},
        param_parents={"sched": "use_sched", "use_sched": "warm"},
    ) as run2:
        pass  # use_sched is on but its own parent is off: sched does not count, nor use_sched
    assert sorted(store().run(run2.id).ignored_params) == ["sched.gamma", "sched.kind", "use_sched"]


def test_bad_parents_raise_at_the_call(store_dir):
    run = _init()
    with pytest.raises(TypeError, match="parent must be a parameter name"):
        run.log_params({"a": 1}, parent=3)
    with pytest.raises(ValueError, match="its own parent"):
        run.log_params({"a": 1}, parent="a")
    with pytest.raises(TypeError, match="child -> parent"):
        run.log_params(param_parents=["a"])
    run.finish()


def test_name_params_name_the_run(store_dir, store):
    with _init(
        params={"lr": 0.01, "model": {"name": "resnet"}, "seed": 3}, name_params=["lr", "model.name"]
    ) as run:
        assert run.name == "lr=0.01-model.name=resnet"
    later = _init(name_params=["lr", "model"])
    generated = later.name
    later.log_params(lr=0.1)
    assert later.name == "lr=0.1"
    later.log_params(model="vit")
    assert later.name == "lr=0.1-model=vit"
    later.finish()
    mine = _init(name="mine", params={"lr": 0.01}, name_params=["lr"])
    mine.log_params(lr=0.2)
    mine.finish()
    names = {r.id: r.name for r in store().runs()}
    assert generated != later.name
    assert names == {run.id: "lr=0.01-model.name=resnet", later.id: "lr=0.1-model=vit", mine.id: "mine"}
    with pytest.raises(TypeError, match="name_params"):
        _init(name_params=["lr", 3])


def test_set_best_pins_the_step_over_the_primary_metric(store_dir, store):
    run = _init()
    run.set_primary_metric("val_acc", "max")
    for step, acc in enumerate([0.5, 0.7, 0.9, 0.6]):
        run.log({"val_acc": acc}, step=step)
    assert run.best["step"] == 2
    run.set_best(1)  # early stopping chose step 1
    assert run.best == {"name": "val_acc", "mode": "max", "value": 0.7, "step": 1, "pinned": True}
    run.finish()
    summary = store().run(run.id).summary
    assert summary["best_val_acc"] == 0.7 and summary["best_val_acc_step"] == 1
    assert summary["best_step"] == 1 and summary["primary_metric"] == "val_acc"


def test_set_best_without_primary_defaults_to_last_step_and_rejects_bad_steps(store_dir, store):
    run = _init()
    run.log({"loss": 1.0}, step=7)
    run.set_best()
    with pytest.raises(ValueError, match=">= 0"):
        run.set_best(-1)
    with pytest.raises(TypeError, match="integer"):
        run.set_best("3")
    run.finish()
    assert store().run(run.id).summary == {"best_step": 7}


def test_wall_time_is_forced_for_metrics_and_histograms(store_dir, store):
    run = _init()
    run.log({"acc": 0.1}, wall_time=11.3)
    run.log({"acc": 0.2}, wall_time=np.float64(12.3))
    run.log({"acc": 0.3}, step=4, wall_time=13)
    run.log_histogram("w", [1.0, 2.0, 3.0], wall_time=14.5)
    for bad, exc in [("soon", TypeError), (True, TypeError), (math.nan, ValueError), (-1.0, ValueError)]:
        with pytest.raises(exc, match="wall_time"):
            run.log({"acc": 0.4}, wall_time=bad)
    run.finish()
    view = store().run(run.id)
    assert view.metrics("acc") == [(11.3, 0, 0.1), (12.3, 1, 0.2), (13.0, 4, 0.3)]  # pycrayon's example
    assert view.histograms("w")[0][0] == 14.5
