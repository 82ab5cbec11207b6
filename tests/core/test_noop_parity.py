"""Run and NoOpRun have the same public names and signatures, and the no-op does nothing."""

import inspect

import epochline
from epochline import NoOpRun, Run


def _public(cls):
    return {n for n in dir(cls) if not n.startswith("_")}


def test_same_public_names_and_signatures(store_dir):
    run = epochline.init("parity", capture_env=False)
    try:
        real = _public(Run) | {n for n in vars(run) if not n.startswith("_")}
    finally:
        run.finish()
    assert real == _public(NoOpRun)
    for name in sorted(real):
        attr = inspect.getattr_static(Run, name, None)
        if callable(attr) and not isinstance(attr, (property, type)):
            assert inspect.signature(getattr(Run, name)) == inspect.signature(getattr(NoOpRun, name)), name


def test_every_method_of_the_no_op_run_does_nothing(tmp_path, store_dir):
    epochline.set_enabled(False)
    try:
        run = epochline.init("off", capture_console=True, system_metrics=True, snapshot_code=True)
    finally:
        epochline.set_enabled(True)
    assert isinstance(run, NoOpRun) and not run
    (tmp_path / "c.yaml").write_text("a: 1\n")
    assert run.log({"a": 1}, wall_time=1.0) is None
    assert run.log_config(extra={"a": 1}, config_files=[tmp_path / "c.yaml"]) is None
    assert run.log_dataset("d", tmp_path, save=True) is None
    assert run.log_model("m", tmp_path) is None and run.log_pretrained("m") is None
    assert run.set_best(3) is None and run.end_epoch(1, {"acc": 0.5}) == {}
    assert run.logging_handler().__class__.__name__ == "NullHandler"
    assert not store_dir.exists()  # nothing was written anywhere
