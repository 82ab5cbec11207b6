"""The run returned when tracking is off: same methods, does nothing, costs nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    import logging


class NoOpRun:
    id = None
    name = None
    path = None
    store_uri = None
    step = -1
    params: dict = {}
    fingerprint = None
    finished = False
    status = "disabled"
    reason = None
    lost = 0
    best = None

    def _noop(self, *args: Any, **kwargs: Any) -> None:
        return None

    log = log_params = log_image = log_artifact = log_text = comment = tag = untag = _noop
    rename = declare_plot = log_histogram = set_primary_metric = summary = finish = _noop
    end_epoch = set_best_epoch = _noop
    in_progress = None
    accuracy_scale = "fraction"
    scales: dict = {}
    field_map: dict = {}
    epochs_done = 0

    def epoch_record(self, values: Any, *, scales: Any = None) -> dict:
        return {}

    def end_evaluation(self, values: Any, *, stage: str = "val", epoch: Any = None, step: Any = None,
                       scales: Any = None) -> dict:
        return {}

    def phase(self, name: str) -> _NoOpPhase:
        return _NoOpPhase(name)

    def logging_handler(self, level: int = 20, fmt: Optional[str] = None) -> logging.Handler:
        import logging

        return logging.NullHandler(level)

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
