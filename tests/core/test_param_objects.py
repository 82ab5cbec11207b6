"""Parameters from real configs: objects without their address, OmegaConf lists, sets, wrong types."""

from __future__ import annotations

import pytest

import epochline
from epochline.values import flatten_params


class Aug:
    def __init__(self, p=0.5, size=32):
        self.p = p
        self.size = size
        self.ops = [1, 2]
        self._cache = object()
        self.fn = print


class Pretty:
    def __repr__(self):
        return f"<Pretty object at {hex(id(self))}>"


def test_plain_objects_give_the_same_text_for_the_same_config():
    a, b = flatten_params({"aug": Aug()}), flatten_params({"aug": Aug()})
    assert a == b == {"aug": "Aug(p=0.5, size=32, ops=<list>, fn=<builtin_function_or_method>)"}
    assert flatten_params({"x": Pretty()}) == {"x": "<Pretty object>"}  # addresses removed


def test_two_runs_of_the_same_config_share_the_fingerprint(store_dir):
    with epochline.init("x", params={"aug": Aug(), "lr": 0.1}) as one:
        pass
    with epochline.init("x", params={"aug": Aug(), "lr": 0.1}) as two:
        pass
    assert one.fingerprint == two.fingerprint


def test_omegaconf_list_stays_a_list():
    omegaconf = pytest.importorskip("omegaconf")
    cfg = omegaconf.OmegaConf.create({"layers": [64, 32], "model": {"names": ["conv", "fc"]}})
    assert flatten_params(cfg) == {"layers": [64, 32], "model.names": ["conv", "fc"]}
    assert flatten_params({"l": omegaconf.OmegaConf.create([1, 2])}) == {"l": [1, 2]}


def test_sets_keep_element_types():
    assert flatten_params({"s": {3, 1, 2}}) == {"s": [1, 2, 3]}
    assert flatten_params({"s": frozenset({"b", "a", 1})}) == {"s": [1, "a", "b"]}


@pytest.mark.parametrize("params", ["lr=0.1", [0.1, 32], (1,), 5, b"x"])
def test_params_without_names_are_an_error(store_dir, params):
    with pytest.raises(TypeError, match="params must be a mapping of names to values"):
        epochline.init("x", params=params)
    run = epochline.init("x")
    with pytest.raises(TypeError, match=r"e\.g\. params=\{'lr'"):
        run.log_params(params)
    run.finish()
