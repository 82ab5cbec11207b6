"""The run returned when tracking is off: same methods, does nothing, costs nothing.

Its methods are made from :class:`~epochline.Run`'s, so both always have the same public names and
signatures (``tests/core/test_noop_parity.py`` checks it); each returns what the real method
returns when nothing was recorded (None, an empty record, a handler that drops records).
"""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any, Callable, Optional

from .run import Run

if TYPE_CHECKING:
    import logging


class NoOpRun:
    id = None
    name = None
    path = None
    store_uri = None
    emit: frozenset = frozenset()
    step = -1
    params: dict = {}
    fingerprint = None
    finished = False
    status = "disabled"
    reason = None
    lost = 0
    recorded = False  # nothing of a disabled run is in any store
    best = None
    in_progress = None
    accuracy_scale = "fraction"
    scales: dict = {}
    field_map: dict = {}
    epochs_done = 0

    def epoch_record(self, values: Any, *, scales: Any = None) -> dict:
        return {}

    def end_evaluation(
        self, values: Any, *, stage: str = "val", epoch: Any = None, step: Any = None, scales: Any = None
    ) -> dict:
        return {}

    def phase(self, name: str) -> _NoOpPhase:
        return _NoOpPhase(name)

    def logging_handler(self, level: int = 20, fmt: Optional[str] = None) -> logging.Handler:
        import logging

        return logging.NullHandler(level)

    def end_epoch(self, *args: Any, **kwargs: Any) -> dict:
        return {}

    def __enter__(self) -> NoOpRun:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "<epochline.NoOpRun (tracking is off)>"


class _NoOpPhase:
    def __init__(self, name: str):
        self.name = name

    def end(self) -> None:
        return None

    def __enter__(self) -> _NoOpPhase:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


def _noop_like(method: Callable[..., Any], body: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def noop(self: Any, *args: Any, **kwargs: Any) -> Any:
        return body(self, *args, **kwargs)

    noop.__signature__ = inspect.signature(method)  # type: ignore[attr-defined]
    return noop


def _nothing(self: Any, *args: Any, **kwargs: Any) -> None:
    return None


def public_methods(cls: type) -> dict:
    """Public callables of ``cls`` (properties and data attributes left out)."""
    out = {}
    for name, value in inspect.getmembers(cls):
        if name.startswith("_") or isinstance(inspect.getattr_static(cls, name), property):
            continue
        if callable(value):
            out[name] = value
    return out


for _name, _method in public_methods(Run).items():
    _own = NoOpRun.__dict__.get(_name)
    setattr(NoOpRun, _name, _noop_like(_method, _own if _own is not None else _nothing))
del _name, _method, _own
