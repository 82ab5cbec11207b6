from hypothesis import given
from hypothesis import strategies as st
from linecheck import same

from epochline import events as ev

scalars = st.one_of(
    st.booleans(), st.integers(-(2**53), 2**53), st.floats(allow_nan=True), st.text(max_size=20)
)
keys = st.text(min_size=1, max_size=12)


metrics_events = st.builds(
    ev.Metrics,
    run_id=st.just("r1"),
    wall_time=st.floats(0, 2e9),
    step=st.integers(0, 10**9),
    values=st.dictionaries(keys, scalars, max_size=6),
    epoch=st.none() | st.integers(1, 1000),
    stage=st.none() | st.sampled_from(["train", "val"]),
)


@given(metrics_events)
def test_metrics_round_trip_json_exactly(event):
    data = ev.to_json(event)
    assert b"NaN" not in data.replace(b'"NaN"', b"") and b"Infinity" not in data.replace(
        b'"Infinity"', b""
    ).replace(b'"-Infinity"', b"")
    back = ev.from_json(data)
    assert type(back) is ev.Metrics
    assert same(ev.to_builtins(back), ev.to_builtins(event))


@given(st.dictionaries(keys, st.one_of(scalars, st.none(), st.lists(scalars, max_size=3)), max_size=5))
def test_values_round_trip(values):
    assert same(ev.loads_value(ev.dumps_value(values)), values)


def test_every_event_type_round_trips():
    samples = [
        ev.RunStarted(run_id="r", wall_time=1.0, name="n", path="a/b", tags=("x",), pid=3),
        ev.Params(run_id="r", wall_time=1.0, params={"lr": 0.1, "l": [1, 2]}, ignored=("l",)),
        ev.Metrics(run_id="r", wall_time=1.0, step=3, values={"a": 1.0}, epoch=1, stage="val"),
        ev.Image(run_id="r", wall_time=1.0, key="k", step=1, media="ab/cd.png", width=2, height=2),
        ev.Text(run_id="r", wall_time=1.0, text="hi", level="INFO"),
        ev.Comment(run_id="r", wall_time=1.0, text="c"),
        ev.Tag(run_id="r", wall_time=1.0, tag="t"),
        ev.Untag(run_id="r", wall_time=1.0, tag="t"),
        ev.Rename(run_id="r", wall_time=1.0, name="m"),
        ev.Artifact(run_id="r", wall_time=1.0, name="a", media="ab/x.pt", size=3, sha256="ab"),
        ev.PlotDeclared(run_id="r", wall_time=1.0, name="Loss", metrics=("loss",)),
        ev.Histogram(
            run_id="r",
            wall_time=1.0,
            key="w",
            step=0,
            min=0.0,
            max=1.0,
            num=2,
            bucket_limits=(0.5, 1.0),
            bucket_counts=(1.0, 1.0),
        ),
        ev.SummaryUpdate(run_id="r", wall_time=1.0, values={"best": float("inf")}),
        ev.PrimaryMetric(run_id="r", wall_time=1.0, name="acc"),
        ev.EpochEnd(
            run_id="r", wall_time=1.0, epoch=1, values={"val_accuracy": 90.0}, percent=("val_accuracy",)
        ),
        ev.SummaryUpdate(run_id="r", wall_time=1.0, values={"best_epoch": 2}, final=True),
        ev.Evaluation(
            run_id="r",
            wall_time=1.0,
            stage="val",
            values={"val_accuracy": 69.5},
            epoch=2,
            step=60,
            percent=("val_accuracy",),
        ),
        ev.BestEpoch(run_id="r", wall_time=1.0, epoch=2),
        ev.RunFinished(run_id="r", wall_time=1.0, status="failed", reason="ValueError: x"),
        ev.RunFinished(run_id="r", wall_time=1.0, status="completed", hold_lines=True),
        ev.Heartbeat(run_id="r", wall_time=1.0),
        ev.Record(
            run_id="r",
            wall_time=1.0,
            kind="dataset",
            name="train/x",
            data={"files": 2, "nested": {"a": [1, float("nan")]}},
        ),
        ev.ConsoleText(run_id="r", wall_time=1.0, text="100%|##| 5/5", stream="stderr"),
        ev.SystemMetrics(run_id="r", wall_time=1.0, step=0, values={"system/rss_mb": 12.5}, stage="system"),
    ]
    assert {type(s) for s in samples} == set(ev.AnyEvent.__args__)
    for sample in samples:
        back = ev.from_json(ev.to_json(sample))
        assert type(back) is type(sample) and same(ev.to_builtins(back), ev.to_builtins(sample))
