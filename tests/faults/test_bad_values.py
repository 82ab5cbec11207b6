"""One bad value never costs good points: hostile values and keys on both backends."""

from __future__ import annotations

import time
import uuid
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import epochline
from epochline import events as ev
from epochline.store import open_backend
from epochline.store.base import PartialWrite

good_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
good_values = st.one_of(st.floats(allow_nan=False), st.integers(-(2**53), 2**53), st.booleans(), good_text)
# what hurt before: ints beyond 64 bits (SQLite OverflowError), NUL (PostgreSQL DataError), lone
# surrogates (UnicodeEncodeError on both), arrays that are not scalars
big_ints = st.one_of(
    st.integers(min_value=2**63), st.integers(max_value=-(2**63) - 1), st.just(np.uint64(2**64 - 1))
)
unstorable = st.one_of(st.just("a\x00b"), st.just("\ud800"), st.just(np.zeros(3)))
bad_keys = st.sampled_from(["k\x00ey", "\x00", "x\udcff"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(
            st.dictionaries(st.sampled_from("abcdef"), good_values, min_size=1),
            st.lists(st.one_of(big_ints, unstorable), max_size=3),
            st.lists(bad_keys, max_size=2),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_mixed_good_and_bad_values_keep_every_good_point(backend_uri, steps):
    path = f"faults/values/{uuid.uuid4().hex}"
    expected, refused = {}, 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with epochline.init(path, store=backend_uri, flush_interval=0.05) as run:
            for step, (good, odd, keys) in enumerate(steps):
                values = dict(good)
                for i, value in enumerate(odd):
                    values[f"odd{i}"] = value
                for key in keys:
                    values[key] = 1.0
                run.log(values, step=step)
                for key, value in good.items():
                    expected.setdefault(key, []).append((step, value))
                for i, value in enumerate(odd):
                    if isinstance(value, (int, np.integer)):
                        expected.setdefault(f"odd{i}", []).append((step, float(value)))
                    else:
                        refused += 1
                refused += len(set(keys))
    assert run.lost == 0 and run.recorded
    assert not [w for w in caught if "not recorded" in str(w.message)]
    with epochline.open(backend_uri) as store:
        view = store.run(run.id)
        assert view.status == "completed" and view.lost == 0
        assert set(view.metric_keys()) == set(expected)
        for key, points in expected.items():
            got = [(s, v) for _, s, v in view.metrics(key)]
            # one value per step: the last logged; PostgreSQL reads numbers back as floats
            want = list(dict(points).items())
            assert [s for s, _ in got] == [s for s, _ in want]
            for (_, g), (_, w) in zip(got, want):
                assert g == w or (type(w) is int and g == float(w)), (key, g, w)
        assert view.summary.get("epochline_skipped_values", 0) == refused


def test_big_ints_become_floats_and_nul_keys_warn_once(backend_uri, reliability):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with epochline.init("faults/one-bad", store=backend_uri, flush_interval=0.05) as run:
            run.log({"big": 2**64, "u64": np.uint64(2**64 - 1)}, step=0)  # early: before the run row
            for step in range(3000):
                run.log({"loss": 1.0 / (step + 1)}, step=step)
                if step % 1000 == 0:
                    run.log({"bad\x00key": 1.0, "loss2": 0.5}, step=step)
    nul_warnings = [w for w in caught if "bad\\x00key" in str(w.message)]
    assert len(nul_warnings) == 1 and "cannot be stored" in str(nul_warnings[0].message)
    with epochline.open(backend_uri) as store:
        view = store.run(run.id)
        kept = len(view.metrics("loss"))
        assert kept == 3000 and view.status == "completed"
        assert view.last("big") == float(2**64) and view.last("u64") == float(2**64 - 1)
        assert len(view.metrics("loss2")) == 3 and "bad\x00key" not in view.metric_keys()
    backend = "SQLite" if "://" not in backend_uri else "PostgreSQL"
    reliability(
        f"2**64 and a NUL key among 3,000 good points ({backend})", 3000, kept, view.status, lost=run.lost
    )


def _events(run_id: str, bad_value, n: int = 200):
    now = time.time()
    out = [ev.RunStarted(run_id=run_id, wall_time=now, name="isolate", path="faults/isolate")]
    for step in range(n):
        values = {"loss": step * 0.5, "acc": step}
        if step == n // 3:
            values["bad"] = bad_value  # built by hand: what no run.log() lets through
        out.append(ev.Metrics(run_id=run_id, wall_time=now, step=step, values=values))
    out.append(ev.RunFinished(run_id=run_id, wall_time=now, status="completed"))
    return out


@pytest.mark.parametrize("bad_value", [2**64, "nul\x00text", "\ud800"], ids=["bigint", "nul", "surrogate"])
def test_the_writer_isolates_the_rows_that_cannot_be_written(backend_uri, bad_value):
    run_id = f"iso-{uuid.uuid4().hex[:12]}"
    sqlite = "://" not in backend_uri
    # SQLite stores NUL in text, PostgreSQL a big int as a float (one number column)
    storable = (sqlite and "\x00" in str(bad_value)) or (not sqlite and type(bad_value) is int)
    backend = open_backend(backend_uri)
    try:
        if storable:
            backend.write(_events(run_id, bad_value))
        else:
            with pytest.raises(PartialWrite) as info:
                backend.write(_events(run_id, bad_value))
            assert info.value.lost == 1  # the one bad value, not the batch
    finally:
        backend.close()
    with epochline.open(backend_uri) as store:
        view = store.run(run_id)
        assert view.status == "completed"
        assert [s for _, s, _ in view.metrics("loss")] == list(range(200))
        assert len(view.metrics("acc")) == 200


def _nested(depth):
    value = {"lr": 0.1}
    for _ in range(depth):
        value = {"n": value}
    return value


def test_deep_parameters_are_kept_or_warned_about(tmp_path):
    store = tmp_path / "store"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 40 levels: kept whole, without a word
        with epochline.init("faults/deep", store=store, params=_nested(40)) as run:
            pass
    with (
        pytest.warns(RuntimeWarning, match="nested deeper than 128 levels"),
        epochline.init("faults/deeper", store=store, params=_nested(200)) as deeper,
    ):
        pass
    with epochline.open(store) as reader:
        assert reader.run(run.id).params == {".".join(["n"] * 40 + ["lr"]): 0.1}
        ((key, value),) = reader.run(deeper.id).params.items()
        assert key.count("n") == 129 and value == "<dict nested deeper than 128 levels>"


def test_unstorable_names_and_tags_are_refused_at_the_call(tmp_path):
    store = tmp_path / "store"
    with pytest.raises(ValueError, match="NUL character"):
        epochline.init("faults/names", store=store, name="bad\x00name")
    with pytest.raises(ValueError, match="NUL character"):
        epochline.init("faults/names", store=store, tags=["t\x00"])
    run = epochline.init("faults/names", store=store)
    for call in (run.rename, run.tag):
        with pytest.raises(ValueError, match="NUL character"):
            call("x\x00y")
    run.finish()
    assert run.lost == 0 and run.recorded
