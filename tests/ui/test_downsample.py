"""Downsampling long series: the exact streaming envelope, and the database's on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import os
import random
import uuid

import pytest

import epochline
from epochline.ui import data
from epochline.ui.downsample import Envelope, plottable


def rows(values, start=0):
    return [(start + i, 1000.0 + start + i, v) for i, v in enumerate(values)]


def test_envelope_keeps_every_buckets_extremes_in_step_order():
    rng = random.Random(1)
    values = [rng.random() for _ in range(10_000)]
    values[1234] = 50.0
    values[8765] = -50.0
    env = Envelope(0, 9_999, 100)
    for i in range(0, 10_000, 3_000):  # fed in chunks, as iter_raw yields them
        env.add(rows(values[i : i + 3_000], i))
    kept = env.points()
    steps = [p[0] for p in kept]
    assert steps == sorted(set(steps)) and steps[0] == 0 and steps[-1] == 9_999
    assert len(kept) <= 102
    assert (1234, 2234.0, 50.0) in kept and (8765, 9765.0, -50.0) in kept
    for b in range(50):  # each of the 50 buckets of 200 steps: its min and max are kept
        chunk = values[b * 200 : (b + 1) * 200]
        got = [p[2] for p in kept if b * 200 <= p[0] < (b + 1) * 200]
        assert min(chunk) in got and max(chunk) in got


def test_envelope_gaps_constant_x_and_everything():
    env = Envelope(0, 99, 10)
    env.add(rows([None] * 50 + [1.0] * 50))
    kept = env.points()
    assert kept[0] == (0, 1000.0, None)  # a bucket of NaN only keeps one gap: the line breaks
    assert sum(p[2] is None for p in kept) == 2  # buckets 0 and 1 (steps 0-39) hold only NaN
    one = Envelope(5, 5, 10)
    one.add([(5, 1.0, 3.0)])
    assert one.points() == [(5, 1.0, 3.0)]
    every = Envelope(0, 9, 0)
    every.add(rows(range(10)))
    assert [p[2] for p in every.points()] == [plottable(v) for v in range(10)]


def test_plottable():
    assert plottable(True) == 1.0 and plottable(3) == 3.0 and plottable(0.5) == 0.5
    for v in (math.nan, math.inf, -math.inf, "text", None):
        assert plottable(v) is None


def stores(tmp_path):
    out = [str(tmp_path / "sqlite")]
    uri = os.environ.get("EPOCHLINE_TEST_POSTGRES")
    if uri:
        out.append(f"{uri}{'&' if '?' in uri else '?'}media={tmp_path / 'media'}")
    return out


def test_long_series_reduced_by_the_database(tmp_path):
    """A series far longer than the chart goes through RunView.envelope (SQLite and PostgreSQL):
    the spikes, the ends and the NaN-only stretch survive; about `points` points come back."""
    values = [1.0 / (1 + i) for i in range(20_000)]
    values[4_321] = 9.0
    values[15_000] = -9.0
    for i in range(10_000, 10_500):
        values[i] = math.nan
    for uri in stores(tmp_path):
        with epochline.init(f"long/{uuid.uuid4().hex}", store=uri) as run:
            for step, v in enumerate(values):
                run.log({"loss": v}, step=step)
        with epochline.open(uri) as store:
            view = store.run(run.id)
            series = data.run_series(view, points=200)["series"]["loss"]
            assert series["n"] == 20_000 and series["downsampled"]
            assert len(series["step"]) <= 202
            assert series["step"] == sorted(series["step"])
            assert series["step"][0] == 0 and series["step"][-1] == 19_999
            assert 9.0 in series["value"] and -9.0 in series["value"]
            assert None in series["value"]  # the NaN-only range breaks the line
            assert max(v for v in series["value"] if v is not None) == 9.0
            envelope = view.envelope("loss", 100)
            assert len(envelope) == 100 and sum(r[6] for r in envelope) == 20_000 - 500
            finite = [v for v in values if not math.isnan(v)]
            assert math.isclose(sum(r[7] for r in envelope), sum(finite), rel_tol=1e-9)
            assert view.envelope("nope", 100) == []
            # the per-bucket queries (long series) and the one grouped query agree exactly
            import epochline.store.reader as reader

            saved = reader._ENVELOPE_GROUPED
            try:
                reader._ENVELOPE_GROUPED = 10**9
                assert view.envelope("loss", 100) == envelope
            finally:
                reader._ENVELOPE_GROUPED = saved


@pytest.mark.skipif(
    not os.environ.get("EPOCHLINE_TEST_POSTGRES"), reason="EPOCHLINE_TEST_POSTGRES is not set"
)
def test_postgres_store_in_the_viewer(tmp_path):
    from starlette.testclient import TestClient

    from epochline.ui.app import create_app

    uri = stores(tmp_path)[1]
    with epochline.init(f"pgui/{uuid.uuid4().hex}", store=uri, tags=["pg"]) as run:
        run.log({"acc": 0.5, "flag": True, "note": "text"}, step=0)
        run.log({"acc": 0.75}, step=1)
    with epochline.open(uri) as store, TestClient(create_app(store), base_url="http://127.0.0.1") as c:
        listed = c.get("/api/runs", params={"q": run.id}).json()
        assert listed["total"] == 1 and listed["runs"][0]["tags"] == ["pg"]
        series = c.get(f"/api/runs/{run.id}/series").json()["series"]
        assert series["acc"]["value"] == [0.5, 0.75] and series["flag"]["value"] == [1.0]
        assert series["note"]["value"] == [None]  # text is not charted


def _reference_buckets(steps, walls, values, buckets):
    """numpy's reduction of a series to ``buckets`` equal step ranges (the envelope's contract)."""
    import numpy as np

    steps, walls, values = np.asarray(steps), np.asarray(walls), np.asarray(values, dtype=float)
    lo, span = int(steps[0]), int(steps[-1] - steps[0] + 1)
    which = (steps - lo) * buckets // span
    out = []
    for b in np.unique(which):
        inside = which == b
        v = values[inside]
        numbers = v[~np.isnan(v)]
        s, w = steps[inside], walls[inside]
        out.append(
            (
                int(s[0]),
                int(s[-1]),
                float(w[0]),
                float(w[-1]),
                float(numbers.min()) if len(numbers) else None,
                float(numbers.max()) if len(numbers) else None,
                len(numbers),
                float(numbers.sum()),
                int(inside.sum()),
            )
        )
    return out


def test_envelope_matches_numpy_per_bucket(backend_uri):
    """RunView.envelope against a numpy reference, on SQLite and PostgreSQL, through both of its
    queries (one indexed range aggregate per bucket, and the grouped one): every bucket's min and
    max are the true extremes of that bucket, with its ends, counts and sum; and the chart's
    points (data.run_series) hold each bucket's extremes, so no spike is lost."""
    import numpy as np

    import epochline.store.reader as reader

    rng = np.random.default_rng(7)
    n = 12_000
    steps = np.cumsum(rng.integers(1, 5, n)) + 100  # gaps: bucket edges fall between points
    values = rng.normal(0.0, 1.0, n)
    values[rng.integers(0, n, 40)] = np.nan
    values[5_000:5_300] = np.nan  # a NaN-only stretch
    spikes = rng.integers(0, n, 12)
    values[spikes] = rng.choice([-1.0, 1.0], 12) * rng.uniform(50, 100, 12)
    walls = 1.7e9 + np.arange(n) * 0.5
    with epochline.init(f"envelope/{uuid.uuid4().hex}", store=backend_uri) as run:
        for s, v in zip(steps.tolist(), values.tolist()):
            run.log({"loss": v}, step=s)
    with epochline.open(backend_uri) as store:
        view = store.run(run.id)
        stored = view.metrics("loss")
        walls = [t for t, _, _ in stored]  # the wall times the writer gave
        assert [s for _, s, _ in stored] == steps.tolist()
        for buckets in (37, 64):  # span / buckets > 100: the per-bucket queries
            expected = _reference_buckets(steps, walls, values, buckets)
            got = view.envelope("loss", buckets)
            saved = reader._ENVELOPE_GROUPED
            try:
                reader._ENVELOPE_GROUPED = 10**9  # the same through the one grouped query
                grouped = view.envelope("loss", buckets)
            finally:
                reader._ENVELOPE_GROUPED = saved
            for rows in (got, grouped):
                assert len(rows) == len(expected)
                for row, ref in zip(rows, expected):
                    assert row[:7] == ref[:7] and row[8] == ref[8]
                    assert math.isclose(row[7], ref[7], rel_tol=1e-9, abs_tol=1e-9)
        points = 200  # 100 chart buckets; 12,000 points > 4 x 200: drawn from the ranges
        chart = data.run_series(view, points=points)["series"]["loss"]
        assert chart["n"] == n and chart["downsampled"] and len(chart["step"]) <= points + 2
        kept = list(zip(chart["step"], chart["value"]))
        for ref in _reference_buckets(steps, walls, values, points // 2):
            shown = [v for s, v in kept if ref[0] <= s <= ref[1]]
            if ref[4] is None:
                assert shown == [None]  # the line breaks over a NaN-only range
            else:
                assert ref[4] in shown and ref[5] in shown
        assert sorted(v for v in chart["value"] if v is not None)[0] == np.nanmin(values)
        assert sorted(v for v in chart["value"] if v is not None)[-1] == np.nanmax(values)
