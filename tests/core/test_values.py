import argparse
import dataclasses
import enum
import math
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from epochline.values import OddValue, flatten_params, metric_value


class Color(enum.Enum):
    RED = 1


@dataclasses.dataclass
class Opt:
    lr: float = 0.1
    betas: tuple = (0.9, 0.999)


class Exploding:
    def __repr__(self):
        raise RuntimeError("boom")


class CallableConfig:
    def __call__(self):  # must never be called
        raise AssertionError("user callable was called")


def test_metric_values_plain_numpy_and_torch():
    torch = pytest.importorskip("torch")  # not in the py39 env (no torch wheel for 3.9 here)

    assert metric_value(1.5) == 1.5 and type(metric_value(np.float32(1.5))) is float
    assert type(metric_value(np.int64(3))) is int and metric_value(np.bool_(True)) is True
    assert metric_value(torch.tensor(2.5)) == 2.5
    assert metric_value(torch.tensor([[4.0]])) == 4.0
    assert metric_value(Decimal("0.5")) == 0.5
    assert math.isnan(metric_value(float("nan")))
    with pytest.raises(OddValue, match="shape"):
        metric_value(np.zeros(3))
    with pytest.raises(OddValue):
        metric_value({"a": 1})


def test_flatten_nested_namespace_dataclass_enum_path():
    ns = argparse.Namespace(
        lr=0.1,
        opt=Opt(),
        color=Color.RED,
        out=Path("/tmp/x"),
        layers=[64, 32],
        nested={"a": {"b": 1}},
        fn=len,
        obj=Exploding(),
        call=CallableConfig(),
        arr=np.arange(3),
        big=np.zeros(1000),
        scalar=np.float64(2.0),
        mixed=[{"k": 1}, 2],
        empty={},
        none=None,
        s={3, 1},
    )
    flat = flatten_params(ns)
    assert flat["lr"] == 0.1 and flat["opt.lr"] == 0.1 and flat["opt.betas"] == [0.9, 0.999]
    assert flat["color"] == "RED" and flat["out"] == "/tmp/x" and flat["layers"] == [64, 32]
    assert flat["nested.a.b"] == 1 and flat["fn"] == "len" and flat["obj"] == "<Exploding object>"
    assert flat["call"] == "test_values.CallableConfig"
    assert flat["arr"] == [0, 1, 2] and "shape=(1000,)" in flat["big"] and flat["scalar"] == 2.0
    assert flat["mixed.0.k"] == 1 and flat["mixed.1"] == 2 and flat["empty"] is None
    assert flat["none"] is None and flat["s"] == [1, 3]  # a set keeps its element types


def test_flatten_keeps_long_values_whole_and_survives_cycles():
    long = "x" * 100_000
    cyclic = {"a": 1}
    cyclic["self"] = cyclic
    flat = flatten_params({"long": long, "cyclic": cyclic})
    assert flat["long"] == long
    assert flat["cyclic.a"] == 1 and flat["cyclic.self"].startswith("<recursive")


def test_flatten_omegaconf_when_installed():
    omegaconf = pytest.importorskip("omegaconf")
    cfg = omegaconf.OmegaConf.create({"model": {"width": 8, "depth": "${model.width}"}})
    assert flatten_params(cfg) == {"model.width": 8, "model.depth": 8}
