"""Any logged values -> store -> read back -> equal (NaN and infinities included)."""

import math
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import epochline

finite_or_not = st.floats(allow_nan=True, allow_infinity=True)
# every storable value: NUL and lone surrogates are refused at log() (tests/faults/test_bad_values.py)
storable = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
scalars = st.one_of(
    st.booleans(), st.integers(-(2**53), 2**53), finite_or_not, st.text(storable, max_size=30)
)
names = st.text(storable, min_size=1, max_size=15)
param_values = st.one_of(st.none(), scalars, st.lists(st.one_of(st.integers(), finite_or_not), max_size=4))


def same(a, b):
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(st.dictionaries(names, scalars, min_size=1, max_size=4), min_size=1, max_size=5),
    params=st.dictionaries(names.filter(lambda n: "." not in n), param_values, max_size=5),
    summary=st.dictionaries(names.filter(lambda n: "." not in n), param_values, max_size=3),
)
def test_logged_values_read_back_exactly(tmp_path, steps, params, summary):
    store_dir = tmp_path / uuid.uuid4().hex
    expected = {}
    with epochline.init("prop", store=store_dir, params=params) as run:
        for step, values in enumerate(steps):
            run.log(values, step=step)
            for key, value in values.items():
                expected.setdefault(key, []).append((step, value))
        if summary:
            run.summary(summary)
    with epochline.open(store_dir) as store:
        view = store.run(run.id)
        assert set(view.metric_keys()) == set(expected)
        for key, points in expected.items():
            got = [(s, v) for _, s, v in view.metrics(key)]
            assert len(got) == len(points)
            for (s1, v1), (s2, v2) in zip(got, points):
                # a key that first held a bool reads ints 0/1 back as bools (documented)
                if isinstance(v2, bool) or (isinstance(v1, bool) and v2 in (0, 1) and type(v2) is int):
                    assert s1 == s2 and v1 == v2
                else:
                    assert s1 == s2 and same(v1, v2), (key, v1, v2)
        stored_params = view.params
        assert stored_params.keys() == params.keys()
        assert all(same(stored_params[k], v) for k, v in params.items())
        assert all(same(view.summary[k], v) for k, v in summary.items())
