"""Run and NoOpRun have the same public names, signatures and return types, and the no-op does
nothing."""

import inspect
import logging
import typing

import epochline
from epochline import NoOpRun, Run
from epochline.noop import public_methods
from epochline.run import Phase


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


def _conforms(value, hint) -> bool:
    """Whether ``value`` is of the annotated type ``hint`` (the shapes Run's annotations use)."""
    if hint is typing.Any:
        return True
    if hint is type(None):
        return value is None
    origin = typing.get_origin(hint)
    if origin is typing.Union:
        return any(_conforms(value, arm) for arm in typing.get_args(hint))
    if hint is Phase:  # the no-op's phase is a duck of Phase: the same public methods
        return {n for n in dir(Phase) if not n.startswith("_")} <= set(dir(value))
    return isinstance(value, origin or hint)


def test_no_op_methods_return_what_run_annotates(store_dir):
    """A caller that uses a return value (``end_epoch``'s record, ``phase()`` as a context) gets
    a value of the same type from the no-op run, so code written for ``Run`` never breaks on it."""
    epochline.set_enabled(False)
    try:
        run = epochline.init("off")
    finally:
        epochline.set_enabled(True)
    checked = 0
    for name, method in sorted(public_methods(Run).items()):
        hint = typing.get_type_hints(method, localns={"logging": logging})["return"]
        params = list(inspect.signature(method).parameters.values())[1:]
        args = [None for p in params if p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty]
        kwargs = {p.name: None for p in params if p.kind is p.KEYWORD_ONLY and p.default is p.empty}
        result = getattr(run, name)(*args, **kwargs)
        assert _conforms(result, hint), f"NoOpRun.{name} returned {result!r}; Run annotates {hint}"
        checked += 1
    assert checked == len(public_methods(Run)) >= 20
