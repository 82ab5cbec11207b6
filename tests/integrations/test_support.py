"""The helpers the three adapters share (``integrations/_support.py``, ``_checkpoints.py``), on a
real run and a real store, without any framework: each rule the adapters rely on, once."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

import epochline
from epochline.integrations._checkpoints import Checkpoints
from epochline.integrations._support import (
    UsageError,
    image_captions,
    log_images,
    parameter_count,
    safely,
    table_text,
)


class Owner:
    """Stands for an adapter object: warnings are kept once per owner, method and error kind."""


def test_a_checkpoint_is_stored_once_per_version(store_dir, store, tmp_path):
    path = tmp_path / "model.ckpt"
    path.write_bytes(b"first")
    checkpoints = Checkpoints()
    with epochline.init("support/checkpoints", emit="none") as run:
        first = checkpoints.store(run, path, name="checkpoints/model.ckpt")
        again = checkpoints.store(run, path, name="checkpoints/model.ckpt")  # announced again, unchanged
        path.write_bytes(b"second")
        later = os.stat(path).st_mtime + 5
        os.utime(path, (later, later))  # a new version, whatever the file system's mtime resolution
        second = checkpoints.store(run, path, name="checkpoints/model.ckpt")
        gone = checkpoints.store(run, tmp_path / "missing.ckpt")
        run_id = run.id
    assert first is not None and again == first and second not in (None, first) and gone is None
    assert checkpoints.last == str(path)
    with store() as opened:
        artifacts = opened.run(run_id).artifacts()
    assert [a.name for a in artifacts] == ["checkpoints/model.ckpt"] * 2
    assert [Path(a.path).read_bytes() for a in artifacts] == [b"first", b"second"]


def test_the_best_checkpoint_per_monitor_and_a_periodic_one_only_alone(tmp_path):
    checkpoints = Checkpoints()
    checkpoints.note_best(None, "last.ckpt")
    assert checkpoints.monitored() == {"": (os.path.abspath("last.ckpt"), None)}
    checkpoints.note_best("val_acc", tmp_path / "a.ckpt", 0.5)
    checkpoints.note_best("val_loss", tmp_path / "b.ckpt", 0.25)
    checkpoints.note_best("val_acc", tmp_path / "c.ckpt", np.float32(0.75))  # a better one replaces it
    assert checkpoints.monitored() == {
        "val_acc": (str(tmp_path / "c.ckpt"), 0.75),
        "val_loss": (str(tmp_path / "b.ckpt"), 0.25),
    }
    assert type(checkpoints.monitored()["val_acc"][1]) is float  # a tensor/numpy score stored as a number


def test_images_of_a_user_function_are_logged_and_a_failing_one_warns_once(store_dir, store):
    owner = Owner()
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    with epochline.init("support/images", emit="none") as run:
        log_images(owner, run, lambda model, epoch: {"sample": image, 7: image}, None, 1, step=3, caption="x")
        log_images(owner, run, lambda model, epoch: None, None, 2, step=4)  # nothing to log
        with pytest.warns(RuntimeWarning, match=r"Owner\.images function failed \(ZeroDivisionError"):
            log_images(owner, run, lambda model, epoch: 1 / 0, None, 3, step=5)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the same failure again: no second warning, no raise
            log_images(owner, run, lambda model, epoch: 1 / 0, None, 4, step=6)
            assert safely(owner, "images function", lambda: 1 / 0) is None
        run_id = run.id
    with store() as opened:
        images = opened.run(run_id).images()
    assert sorted((i.key, i.step, i.caption) for i in images) == [("7", 3, "x"), ("sample", 3, "x")]


def test_parameter_count_reads_shapes_only():
    assert parameter_count([np.zeros((3, 4)), np.zeros(5), np.zeros(())]) == 12 + 5 + 1
    assert parameter_count([]) == 0


def test_a_saved_checkpoint_is_recorded_by_path_once_and_a_missing_one_warned(store_dir, store, tmp_path):
    folder = tmp_path / "checkpoint-10"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"weights")
    checkpoints = Checkpoints()
    with epochline.init("support/saved", emit="none") as run:
        assert checkpoints.saved(run, str(folder), copy=False, logger="tests")
        assert not checkpoints.saved(run, str(folder), copy=False, logger="tests")  # announced twice
        assert not checkpoints.saved(run, str(tmp_path / "checkpoint-20"), copy=False, logger="tests")
        copied = tmp_path / "checkpoint-30"
        copied.mkdir()
        (copied / "model.bin").write_bytes(b"more")
        assert checkpoints.saved(run, str(copied), copy=True, logger="tests")
        run_id = run.id
    with store() as opened:
        view = opened.run(run_id)
        texts = [(t.level, t.text) for t in view.texts()]
        artifacts = [a.name for a in view.artifacts()]
    assert texts == [
        (None, f"checkpoint saved: {folder}"),
        ("WARNING", f"checkpoint not found at {tmp_path / 'checkpoint-20'}"),
        (None, f"checkpoint saved: {copied}"),
    ]
    assert len(artifacts) == 1 and artifacts[0].startswith("checkpoint-30")  # only the copied one


def test_the_newest_checkpoint_of_several_is_stored(store_dir, store, tmp_path):
    old, new = tmp_path / "old.keras", tmp_path / "new.keras"
    old.write_bytes(b"old")
    new.write_bytes(b"new")
    os.utime(old, (1_000_000, 1_000_000))
    checkpoints = Checkpoints()
    with epochline.init("support/newest", emit="none") as run:
        assert checkpoints.store_newest(run, [tmp_path / "gone.keras"]) is None
        path, stored = checkpoints.store_newest(run, [new, old, tmp_path / "gone.keras"])
    assert path == str(new) and Path(stored).read_bytes() == b"new"


def test_the_best_checkpoint_summary_names_each_monitor_only_when_there_are_several(tmp_path):
    checkpoints = Checkpoints()
    assert checkpoints.best_summary() == {}
    checkpoints.note_best(None, tmp_path / "last.ckpt")  # periodic: its latest file, no score
    assert checkpoints.best_summary() == {
        "best_checkpoint": str(tmp_path / "last.ckpt"),
        "best_checkpoint_score": None,
    }
    checkpoints.note_best("val_acc", tmp_path / "a.ckpt", 0.5)
    assert checkpoints.best_summary() == {
        "best_checkpoint": str(tmp_path / "a.ckpt"),
        "best_checkpoint_score": 0.5,
    }
    checkpoints.note_best("val_loss", tmp_path / "b.ckpt", 0.25)
    assert checkpoints.best_summary() == {
        "best_checkpoint": str(tmp_path / "a.ckpt"),
        "best_checkpoint_score": 0.5,
        "best_checkpoints.val_acc": str(tmp_path / "a.ckpt"),
        "best_checkpoints.val_acc_score": 0.5,
        "best_checkpoints.val_loss": str(tmp_path / "b.ckpt"),
        "best_checkpoints.val_loss_score": 0.25,
    }


def test_images_and_captions_pair_up_or_the_call_is_refused():
    assert image_captions("a.png", None) == [("a.png", None)]
    assert image_captions(["a", "b"], "both") == [("a", "both"), ("b", "both")]
    assert image_captions(("a", "b"), ["one", None]) == [("a", "one"), ("b", None)]
    with pytest.raises(UsageError, match="2 images and 1 captions"):
        image_captions(["a", "b"], ["one"])


def test_a_table_becomes_tab_separated_text():
    pd = pytest.importorskip("pandas")
    assert table_text(["a", "b"], [[1, "x"], [2, None]], None) == "a\tb\n1\tx\n2\tNone"
    frame = pd.DataFrame({"epoch": [1, 2], "acc": [0.5, 0.75]})
    assert table_text(None, None, frame) == "epoch\tacc\n1\t0.5\n2\t0.75"
    assert table_text(None, None, None) == "" and table_text([], [], None) == ""


def test_an_epoch_ended_with_nothing_to_say_still_gets_its_record(store_dir, store):
    from epochline.integrations._support import EpochAccumulator

    epochs = EpochAccumulator()
    with epochline.init("support/epochs", emit="none") as run:
        epochs.end(run, 1, {})  # e.g. transformers with logging_steps longer than an epoch
        epochs.end(run, 2, {"train_loss": 0.5}, total_epochs=3)
        assert epochs.end(run, 2, {"train_loss": 0.1}) is None  # closed already: never rewritten
        run_id = run.id
    with store() as opened:
        records = opened.run(run_id).epochs()
    assert [(r["epoch"], r["values"]) for r in records] == [(1, {}), (2, {"train_loss": 0.5})]
