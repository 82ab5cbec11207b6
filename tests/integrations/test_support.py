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
from epochline.integrations._support import log_images, parameter_count, safely


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
