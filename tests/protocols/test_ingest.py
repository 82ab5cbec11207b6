"""The line parser: each protocol read back, garbage survived, and the emitters' round trip."""

from __future__ import annotations

import contextlib
import io
import json
import math
from itertools import count

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import epochline
from epochline import cli
from epochline.ingest import MAX_LINE, LineParser, ingest_lines, legacy_values, outcome
from epochline.protocol import KeyMapper

from .helpers import check_lines, same

_ids = count()


def parse(lines, **init):
    run = epochline.init(f"ingest/{next(_ids)}", accuracy_scale="percent", emit="none", **init)
    parser = ingest_lines(run, lines)
    parser.copy_uploads()
    run.finish(*outcome(parser))
    with epochline.open() as store:
        view = store.run(run.id)
        data = {
            "view": view.to_dict(),
            "epochs": [(e["epoch"], e["total_epochs"], e["values"]) for e in view.epochs()],
        }
    return parser, data


def test_kogu_messages(store_dir, tmp_path):
    upload = tmp_path / "weights.bin"
    upload.write_bytes(b"\x00\x01")
    parser, data = parse(
        [
            '{"parameters": {"a": 3, "b": -2.4, "c": "Text", "d": true, "e": [2, 3, 5], "n": null}}',
            '{"metric": {"iteration": 0, "metrics": {"a": 3, "b": -2.5}}}',
            '{"metric": {"iteration": 0, "metrics": {"b": 5.5, "c": true}}}',
            '{"metric": {"iteration": -1, "metrics": {"final": "NaN", "best": 0.9}}}',
            '{"metric": {"metrics": {"default_iteration": 1}}}',
            '{"plot": {"type": "line", "name": "Signals", "y_label": "Y", "metrics": ["a", "b"]}}',
            '{"comment": "This is a comment!"}',
            f'{{"upload": "{upload}"}}',
            f'{{"upload": {{"name": "{upload}", "append": false}}}}',
            '{"tag": "Super"}',
            '{"tag": "Other"}',
            '{"untag": "Other"}',
            '{"name": "New-Experiment"}',
            "#PARAM: lr=0.1",
            "#I2: acc=0.5",
            "#COMMENT: old style",
        ]
    )
    view = data["view"]
    assert view["params"] == {"a": 3, "b": -2.4, "c": "Text", "d": True, "e": [2, 3, 5], "lr": 0.1}
    assert view["metrics"]["b"][0][1:] == [0, 5.5] and view["metrics"]["c"][0][1:] == [0, True]
    assert view["metrics"]["acc"][0][1:] == [2, 0.5]
    assert same(view["summary"], {"final": math.nan, "best": 0.9, "default_iteration": 1})
    assert view["plots"] == [{"name": "Signals", "kind": "line", "y_label": "Y", "metrics": ["a", "b"]}]
    assert view["comments"] == ["This is a comment!", "old style"]
    assert view["tags"] == ["Super"] and view["name"] == "New-Experiment"
    assert [a["name"] for a in view["artifacts"]] == ["weights.bin"]  # the same file once
    assert view["status"] == "completed"
    assert parser.counts["kogu"] == 13 and parser.counts["kogu_old"] == 3
    assert sum(parser.skipped.values()) == 0


@pytest.mark.parametrize(
    "reason, status, why",
    [
        ("", "failed", None),
        ("out of memory", "failed", "out of memory"),
        ("failed: ValueError: x", "failed", "ValueError: x"),
        ("interrupted: KeyboardInterrupt", "interrupted", "KeyboardInterrupt"),
        ("crashed", "crashed", None),
    ],
)
def test_fail_line(store_dir, reason, status, why):
    _, data = parse([json.dumps({"fail": reason})])
    assert (data["view"]["status"], data["view"]["reason"]) == (status, why)


def test_progress_lines(store_dir):
    parser, data = parse(
        [
            (
                'PROGRESS: {"epoch": 1, "total_epochs": 2, "train_loss": 0.5, "train_accuracy": 85.5, '
                '"test_loss": 0.4, "test_accuracy": 88.0, "lr": 0.1, "status": "training"}'
            ),
            'PROGRESS: {"epoch": 2, "total_epochs": 2, "loss": 0.3, "accuracy": 91.0, "status": "training"}',
            ' PROGRESS: {"epoch": 3, "status": "training"}',  # not at column 0: not a PROGRESS line
            (
                'PROGRESS: {"epoch": 2, "total_epochs": 2, "test_accuracy": 91.0, "train_loss": 0.3, '
                '"status": "completed"}'
            ),
        ]
    )
    assert data["epochs"] == [
        (
            1,
            2,
            {"train_loss": 0.5, "train_accuracy": 85.5, "test_loss": 0.4, "test_accuracy": 88.0, "lr": 0.1},
        ),
        (2, 2, {"test_accuracy": 91.0, "train_loss": 0.3}),
    ]
    assert data["view"]["summary"] == {
        "final_test_accuracy": 91.0,
        "final_train_loss": 0.3,
        # the run's own final record (best epoch by test accuracy)
        "test_accuracy": 91.0,
        "train_loss": 0.3,
        "best_epoch": 2,
        "total_epochs": 2,
    }
    assert data["view"]["metrics"]["test_accuracy"][1][1:] == [2, 91.0]
    assert parser.counts["progress"] == 3 and data["view"]["status"] == "completed"


def test_progress_failed_status(store_dir):
    _, data = parse(
        [
            'PROGRESS: {"epoch": 1, "train_loss": 0.5, "status": "training"}',
            'PROGRESS: {"epoch": 1, "status": "failed"}',
        ]
    )
    assert data["view"]["status"] == "failed" and [e[0] for e in data["epochs"]] == [1]


@pytest.mark.parametrize(
    "text, values",
    [
        (
            "Epoch 1/10, Train Loss: 0.5432, Train Accuracy: 85.5%",
            {"train_loss": 0.5432, "train_accuracy": 85.5},
        ),
        ("Train Loss: 0.4321 | Train Acc: 85.50%", {"train_loss": 0.4321, "train_accuracy": 85.5}),
        ("Test Loss: 0.3210 | Test Acc: 88.20%", {"test_loss": 0.321, "test_accuracy": 88.2}),
        ("val_loss=0.25 val_acc=0.9", {"val_loss": 0.25, "val_accuracy": 90.0}),
        (
            "32/32 - 1s - accuracy: 0.8750 - loss: 0.4 - val_accuracy: 0.5 - val_loss: 1e-2",
            {"train_accuracy": 87.5, "train_loss": 0.4, "val_accuracy": 50.0, "val_loss": 0.01},
        ),
        ("Validation Loss: 0.2, Validation Accuracy: 75%", {"val_loss": 0.2, "val_accuracy": 75.0}),
        ("no numbers here, losses happen", {}),
    ],
)
def test_legacy_values(text, values):
    assert legacy_values(text) == pytest.approx(values)


def test_legacy_lines_single_and_multi_line(store_dir):
    parser, data = parse(
        [
            "starting",
            "loss: 9.9 (before any epoch header: ignored)",
            "Epoch 1/2, Train Loss: 0.5432, Train Accuracy: 85.5%",
            "Epoch 2/2",
            "Train Loss: 0.4321 | Train Acc: 86.50%",
            "Test Loss: 0.3210 | Test Acc: 88.20%",
            "\x1b[32mdone\x1b[0m",
        ]
    )
    assert data["epochs"] == [
        (1, 2, {"train_loss": 0.5432, "train_accuracy": 85.5}),
        (2, 2, {"train_loss": 0.4321, "train_accuracy": 86.5, "test_loss": 0.321, "test_accuracy": 88.2}),
    ]
    assert parser.counts["legacy"] == 3


def test_progress_lines_win_over_legacy_text(store_dir):
    # the PROGRESS document's own example prints both for every epoch
    _, data = parse(
        [
            "Epoch 1/2",
            "Train Loss: 0.9 | Train Acc: 10.00%",
            'PROGRESS: {"epoch": 1, "total_epochs": 2, "train_loss": 0.5, "train_accuracy": 85.5, "status": "training"}',
            "Epoch 2/2",
            "Train Loss: 0.9 | Train Acc: 10.00%",
            'PROGRESS: {"epoch": 2, "total_epochs": 2, "train_loss": 0.4, "train_accuracy": 86.0, "status": "training"}',
        ]
    )
    assert data["epochs"] == [
        (1, 2, {"train_loss": 0.5, "train_accuracy": 85.5}),
        (2, 2, {"train_loss": 0.4, "train_accuracy": 86.0}),
    ]


def test_garbage_is_counted_and_skipped(store_dir):
    run = epochline.init("garbage", emit="none")
    parser = LineParser(run)
    chunks = [
        b'{"metric": {"iteration": 1, "metrics": {"ok": 1}}}\n',
        b"{not json\n",
        b'{"unknown": 1}\n',
        b'{"tag": 5, "bogus": 1}\n',
        b'{"metric": {"iteration": "x"}}\n',
        b'{"metric": {"iteration": 2, "metrics": {"a": [1], "b": {"c": 1}, "d": 2}}}\n',
        b'{"parameters": {"x": {"y": 1}, "z": [1, [2]]}}\n',
        b'{"parameters": 7}\n',
        b'PROGRESS: {"epoch": "one", "train_loss": "low"}\n',
        b"PROGRESS: [1, 2]\n",
        b"PROGRESS: {\n",
        b"\xff\xfe\xfd invalid utf-8\n",
        b"binary \x00\x01\x02 stuff\n",
        b"{" + b"[" * 100_000 + b"\n",  # deep nesting: RecursionError inside json
        b"x" * (MAX_LINE + 10) + b"\n",  # one long line, fed in one piece
        b"{'loss': 0.25, 'epoch': 1.0}\n",  # a Python dict repr (the HF Trainer's logs): console text
    ]
    for chunk in chunks:
        parser.feed(chunk)
    long_line = b'{"tag": "' + b"y" * (3 * MAX_LINE) + b'"}\n'  # fed in small pieces
    for i in range(0, len(long_line), 65536):
        parser.feed(long_line[i : i + 65536])
    parser.feed(b'{"tag": "last"}')  # no newline at the end
    parser.close()
    run.finish(*outcome(parser))
    assert parser.counts["kogu"] == 7 and parser.counts["lines"] == len(chunks) + 2
    assert parser.skipped == {
        "malformed_json": 3,
        "unknown_message": 1,
        "unknown_key": 1,
        "bad_value": 10,
        "invalid_utf8": 1,
        "binary": 1,
        "too_long": 2,
    }
    report = parser.report()
    assert "skipped 19" in report and "lines over" in report
    with epochline.open() as store:
        view = store.run(run.id)
        assert view.tags == ["last"] and view.metrics("d")[0][1:] == (2, 2) and view.metrics("ok")
        assert view.status == "completed"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.binary(max_size=200)
        | st.sampled_from(
            [
                b'{"metric": {"iteration": ',
                b'PROGRESS: {"epoch": ',
                b"Epoch 1/3 loss: ",
                b"\n",
                b"}",
                b"NaN",
                b'{"upload": ',
                b"#I1: a=",
                b"\r",
                b"\xc3",
            ]
        ),
        max_size=40,
    )
)
def test_random_bytes_never_raise(store_dir, chunks):
    run = epochline.init("fuzz", emit="none", accuracy_scale="percent")
    parser = LineParser(run, max_line=256)
    for chunk in chunks:
        parser.feed(chunk)
    parser.close()
    parser.copy_uploads()
    run.finish(*outcome(parser, 0))
    assert parser.counts["lines"] >= sum(c.count(b"\n") for c in chunks)


def test_ingest_command(store_dir, tmp_path, capsys):
    log = tmp_path / "train.log"
    log.write_bytes(b'{"name": "from-log"}\nEpoch 1/1, Train Loss: 0.5, Train Accuracy: 50%\n{oops\n')
    assert cli.main(["ingest", str(log), "--path", "logs/x"]) == 0
    err = capsys.readouterr().err
    assert "completed" in err and "3 lines read" in err and "1 legacy" in err and "skipped 1" in err
    with epochline.open() as store:
        view = store.run("from-log")
        assert view.path == "logs/x" and view.epochs()[0]["values"] == {
            "train_loss": 0.5,
            "train_accuracy": 50.0,
        }
        assert view.artifacts()[0].name == "console.log"
        assert view.artifacts()[0].path.read_bytes() == log.read_bytes()
    assert cli.main(["ingest", str(tmp_path / "missing.log")]) == 2


# -- round trip: what the emitters print, parsed back, is the same run --------------------------
# no NUL: a name or tag holding one is refused at init (tests/faults), so it never reaches a line
_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"),
    min_size=1,
    max_size=10,
).filter(lambda s: s not in ("NaN", "Infinity", "-Infinity"))
_name = st.text("abcXYZ019_./-@ ", min_size=1, max_size=8)
_finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
_param = (
    st.integers(-(2**53), 2**53)
    | st.floats()
    | st.booleans()
    | _text
    | st.lists(st.integers(-1000, 1000), max_size=3)
    | st.lists(_text, max_size=3)
    | st.lists(st.booleans(), min_size=1, max_size=3)
)
# an honest accuracy of at most 1 % reads as a fraction on the consumer's side (documented)
_accuracy = st.just(0.0) | st.floats(0.0101, 1)
_epoch = st.fixed_dictionaries(
    {},
    optional={
        "loss": _finite,
        "accuracy": _accuracy,
        "val_loss": _finite,
        "val_accuracy": _accuracy,
        "test_loss": _finite,
        "test_acc": _accuracy,
        "lr": st.floats(),
        "grad-norm": _finite,
    },
)
_summary = st.dictionaries(
    _name.map(lambda s: "s_" + s), st.integers(-1000, 1000) | st.floats() | st.booleans() | _text, max_size=4
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    params=st.dictionaries(_name, _param, max_size=6),
    epochs=st.lists(_epoch, max_size=4),
    tags=st.lists(_text, unique=True, max_size=3),
    untag=st.booleans(),
    name=_text,
    rename=st.none() | _text,
    summary=_summary,
    total=st.booleans(),
    end=st.sampled_from(
        [
            ("completed", None),
            ("failed", "ValueError: x"),
            ("failed", None),
            ("interrupted", "KeyboardInterrupt"),
            ("crashed", "lost"),
        ]
    ),
)
def test_round_trip(store_dir, params, epochs, tags, untag, name, rename, summary, total, end):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        run = epochline.init(
            f"rt/{next(_ids)}",
            name=name,
            params=params,
            tags=tags,
            emit="kogu,progress",
            total_epochs=len(epochs) if total and epochs else None,
        )
        for epoch, values in enumerate(epochs, start=1):
            run.end_epoch(epoch, values)
        if untag and tags:
            run.untag(tags[0])
        if rename:
            run.rename(rename)
        if summary:
            run.summary(summary)
        run.finish(*end)
    lines = check_lines(out.getvalue())
    parser, data = parse(lines)
    assert sum(parser.skipped.values()) == 0
    with epochline.open() as store:
        original = store.run(run.id)
        back = data["view"]
        mapper = KeyMapper()  # keys are mapped in the order the run used them, not the store's order
        stored = original.params
        assert same(back["params"], {mapper(k): stored[k] for k in params if stored[k] is not None})
        assert sorted(back["tags"]) == sorted(original.tags)
        assert back["name"] == original.name
        assert (back["status"], back["reason"]) == (original.status, original.reason)
        mapper = KeyMapper()
        stored = original.summary
        expected_summary = {mapper(k): stored[k] for k in summary}
        # the user's summary values came back (beside the final records of both runs)
        assert same({k: back["summary"].get(k) for k in expected_summary}, expected_summary)
        records = original.epochs()
        fields = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy")
        assert data["epochs"] == [
            (
                r["epoch"],
                r["total_epochs"],
                {k: v for k, v in r["values"].items() if k in fields and math.isfinite(v)},
            )
            for r in records
        ]
        mapper = KeyMapper()
        for record in records:  # every record value, as a metric at step = epoch (the Kogu lines)
            for key, value in record["values"].items():
                points = {step: v for _, step, v in (tuple(p) for p in back["metrics"][mapper(key)])}
                assert same(points[record["epoch"]], value)
        if end[0] == "completed" and any(k.endswith("accuracy") for r in records for k in r["values"]):
            assert "final_test_accuracy" in back["summary"]


# -- read as the consumers read them ------------------------------------------------------------
def test_progress_accuracies_follow_the_consumers_rule(store_dir):
    _, data = parse(
        [
            (
                'PROGRESS: {"epoch": 1, "total_epochs": 2, "train_accuracy": 0.5, "val_accuracy": 85.5, '
                '"status": "training"}'
            ),
            'PROGRESS: {"epoch": 2, "total_epochs": 2, "accuracy": 0.9, "status": "training"}',
            'PROGRESS: {"epoch": 2, "total_epochs": 2, "test_accuracy": 0.92, "status": "completed"}',
        ]
    )
    assert data["epochs"] == [
        (1, 2, {"train_accuracy": 50.0, "val_accuracy": 85.5}),
        (2, 2, {"test_accuracy": 90.0}),
    ]
    assert data["view"]["summary"]["final_test_accuracy"] == 92.0


def test_progress_epoch_zero_is_kept_as_step_zero(store_dir):
    parser, data = parse(
        [
            'PROGRESS: {"epoch": 0, "total_epochs": 2, "train_loss": 0.7, "status": "training"}',
            'PROGRESS: {"epoch": 0, "status": "training"}',  # nothing positive: the consumer drops it
            'PROGRESS: {"epoch": 1, "total_epochs": 2, "train_loss": 0.5, "status": "training"}',
        ]
    )
    assert data["view"]["metrics"]["train_loss"][0][1:] == [0, 0.7]
    assert [e[0] for e in data["epochs"]] == [1] and parser.skipped["bad_value"] == 1


def test_legacy_percent_sign_follows_the_consumers_rule_and_summary_lines_stay_apart(store_dir):
    _, data = parse(
        [
            "Epoch 1/2, Train Loss: 0.5, Train Accuracy: 0.5%",
            "Epoch 2/2, Train Loss: 0.4, Val Accuracy: 85%",
            "Best Val Accuracy: 90%",
            "Final train loss: 0.35",
        ]
    )
    assert data["epochs"] == [
        (1, 2, {"train_loss": 0.5, "train_accuracy": 50.0}),
        (2, 2, {"train_loss": 0.4, "val_accuracy": 85.0}),
    ]
    summary = data["view"]["summary"]
    assert summary["best_val_accuracy"] == 90.0 and summary["final_train_loss"] == 0.35


def test_old_kogu_helper_lines(store_dir):
    parser, data = parse(
        [
            "#PARAM: a=1 b=2 name=resnet",
            "#I0: loss=1.0 acc=0.5",
            "#I1: loss=0.5",
            "#I-1: acc=0.75",
            "#NAME: old-helper",
            "#TAG: legacy",
            "#TAG: gone",
            "#UNTAG: gone",
            "#COMMENT: two words",
            "#FAIL: out of memory",
        ]
    )
    view = data["view"]
    assert view["params"] == {"a": 1, "b": 2, "name": "resnet"}
    assert view["metrics"]["loss"] == [
        [view["metrics"]["loss"][0][0], 0, 1.0],
        [view["metrics"]["loss"][1][0], 1, 0.5],
    ]
    assert view["metrics"]["acc"][0][1:] == [0, 0.5] and view["summary"]["acc"] == 0.75
    assert view["name"] == "old-helper" and view["tags"] == ["legacy"]
    assert view["comments"] == ["two words"]
    assert (view["status"], view["reason"]) == ("failed", "out of memory")
    assert parser.counts["kogu_old"] == 10 and sum(parser.skipped.values()) == 0
