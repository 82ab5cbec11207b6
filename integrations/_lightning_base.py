"""What the Lightning adapter reads from Lightning itself, kept apart so that ``lightning.py`` is
the translation of ``Logger`` calls into run calls and nothing else.

* Which Lightning is installed: ``rank_zero_only``, the ``Logger`` base class (``lightning`` first,
  else ``pytorch_lightning``; :func:`logger_class` builds the public class over either) and the
  other ranks' experiment (Lightning's own ``DummyExperiment`` with the no-op run's methods).
* Where in Lightning's loop a ``log_metrics`` call is made (:func:`loop`), read from the
  trainer's progress counters: Lightning passes a logger nothing but the values and the step;
  whether this process is a ``ddp_spawn`` worker (:func:`spawned_worker`); the trainer of a
  module (:func:`trainer_ref`), the 1-indexed epoch of a call (:func:`epoch_number`) and the names
  an epoch record takes (:func:`record_values`).
* The ``log_model`` modes and ``finalize`` statuses (:func:`log_model_mode`, :func:`finalize_status`).
* Which files a ``ModelCheckpoint`` holds (:func:`checkpoint_files`).
"""

from __future__ import annotations

import importlib
import os
import weakref
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple

import epochline

NEEDS_LIGHTNING = (
    "epochline.integrations.lightning needs `lightning` or `pytorch_lightning`: "
    "pip install 'epochline[lightning]'"
)

try:
    from lightning_utilities.core.rank_zero import rank_zero_only
except ImportError:  # every Lightning 2.x installs lightning_utilities; without it, no Lightning
    try:
        from pytorch_lightning.utilities import rank_zero_only  # type: ignore[no-redef, unused-ignore]
    except ImportError as exc:
        raise ImportError(NEEDS_LIGHTNING) from exc

__all__ = [
    "NEEDS_LIGHTNING",
    "rank_zero_only",
    "RankExperiment",
    "logger_class",
    "derives_from",
    "trainer_fn",
    "Loop",
    "loop",
    "spawned_worker",
    "checkpoint_files",
    "best_checkpoint",
    "log_model_mode",
    "finalize_status",
    "epoch_number",
    "record_values",
    "trainer_ref",
]

STAGES = {"train": "train", "validate": "val", "sanity_check": "val", "test": "test", "predict": "predict"}
"""Lightning's ``RunningStage`` values -> the stage a run records."""


def _dummy_experiment_class() -> type:
    Dummy: Any = object
    for module, name in (
        ("lightning.fabric.loggers.logger", "_DummyExperiment"),
        ("pytorch_lightning.loggers.logger", "DummyExperiment"),
    ):
        try:
            Dummy = getattr(importlib.import_module(module), name)
            break
        except (ImportError, AttributeError):
            continue
    return type(
        "RankExperiment",
        (epochline.NoOpRun, Dummy),
        {
            "__doc__": "Other ranks' experiment: a no-op run that also accepts any other call "
            "(``experiment.anything(...)`` returns None), as Lightning's DummyExperiment.",
            "__module__": "epochline.integrations.lightning",
        },
    )


RankExperiment = _dummy_experiment_class()


def logger_class(mixin: type, package: Optional[str] = None, name: str = "KoguLogger") -> type:
    """``class <name>(mixin, <package>.loggers.Logger)``. Without ``package``: over
    ``lightning.pytorch``'s ``Logger``, else ``pytorch_lightning``'s; ImportError if missing."""
    if package is None:
        try:
            return logger_class(mixin, "lightning.pytorch", name)
        except ImportError:  # only pytorch_lightning installed (or neither: that import raises)
            try:
                return logger_class(mixin, "pytorch_lightning", name)
            except ImportError as exc:
                raise ImportError(NEEDS_LIGHTNING) from exc
    base = importlib.import_module(f"{package}.loggers").Logger
    return type(
        name,
        (mixin, base),
        {
            "__doc__": (mixin.__doc__ or "")
            + f"\n    This class derives from ``{package}.loggers.Logger``.\n",
            "__module__": "epochline.integrations.lightning",
            "__qualname__": name,
        },
    )


def derives_from(cls: type, package: str) -> bool:
    """Whether ``cls`` is built over ``package``'s ``Logger`` (without importing ``package``)."""
    return any(base.__module__.split(".")[0] == package for base in cls.__mro__)


def _value(enum: Any) -> Optional[str]:
    """``TrainerFn.FITTING`` -> ``"fit"`` (``str()`` of these str-enums is the member name)."""
    return None if enum is None else str(getattr(enum, "value", enum))


def trainer_fn(trainer: Any) -> Optional[str]:
    """The trainer function running (``"fit"``, ``"validate"``, ``"test"``, ``"predict"``) or None."""
    return _value(getattr(getattr(trainer, "state", None), "fn", None))


def _loop_state(trainer: Any) -> Tuple[Optional[str], Optional[str]]:
    """(trainer function, recorded stage) of the call being made now."""
    stage = _value(getattr(getattr(trainer, "state", None), "stage", None))
    return trainer_fn(trainer), STAGES.get(stage or "")


def _train_epoch_end(trainer: Any, fn: Optional[str], stage: Optional[str]) -> bool:
    """True for the call Lightning makes at the end of a training epoch (after its validation):
    the epoch is processed but not yet completed."""
    if fn != "fit" or stage != "train":
        return False
    try:
        current = trainer.fit_loop.epoch_progress.current
        return bool(current.processed > current.completed)
    except AttributeError:
        return False


def _epoch_level(trainer: Any, fn: Optional[str], stage: Optional[str], epoch_end: bool) -> bool:
    """Whether a call's values describe the epoch: validation's, the train-epoch-end call's and
    those logged before the epoch's first batch (LearningRateMonitor); not a step's."""
    if trainer is None or fn != "fit" or stage != "train" or epoch_end:
        return True
    try:  # on_train_epoch_start runs between the epoch's "ready" and "started" marks
        current = trainer.fit_loop.epoch_progress.current
        return bool(current.ready > current.started)
    except AttributeError:
        return True


def _max_epochs(trainer: Any) -> Optional[int]:
    """``trainer.max_epochs`` when it is a real bound (not -1 / None)."""
    value = getattr(trainer, "max_epochs", None)
    return value if isinstance(value, int) and value > 0 else None


class Loop(NamedTuple):
    """Where in Lightning's loop a ``log_metrics`` call is made, read from the trainer's state and
    progress counters (Lightning passes a logger nothing but the values and the step)."""

    fn: Optional[str]
    """The trainer function running: ``"fit"``, ``"validate"``, ``"test"``, ``"predict"``, or
    None when no trainer is known."""
    stage: Optional[str]
    """The stage the run records: ``train``, ``val`` (sanity check too), ``test``, ``predict``."""
    epoch_level: bool
    """The values describe the epoch: validation's, the train-epoch-end call's and those logged
    before the epoch's first batch (LearningRateMonitor); not a training step's."""
    epoch_end: bool
    """The call Lightning makes at the end of a training epoch (after its validation)."""
    max_epochs: Optional[int]
    """``trainer.max_epochs`` when it is a real bound."""

    @property
    def evaluating(self) -> bool:
        """A ``validate``/``test`` call (its values join the last epoch's record)."""
        return self.fn in ("validate", "test")


def loop(trainer: Any) -> Loop:
    """The :class:`Loop` state of ``trainer`` now (all None/True without a trainer)."""
    fn, stage = _loop_state(trainer)
    end = _train_epoch_end(trainer, fn, stage)
    return Loop(fn, stage, _epoch_level(trainer, fn, stage, end), end, _max_epochs(trainer))


def spawned_worker(trainer: Any) -> bool:
    """Whether this process is a worker that Lightning's launcher spawned (``ddp_spawn``): with a
    launcher that spawns processes, Lightning trains (and calls ``log_graph``) only in a worker."""
    launcher = getattr(getattr(trainer, "strategy", None), "launcher", None)
    return type(launcher).__name__ == "_MultiProcessingLauncher"


def checkpoint_files(callback: Any) -> List[str]:
    """What MLflow's and W&B's loggers store of a ModelCheckpoint: last, best and the top k."""
    paths = {
        getattr(callback, "last_model_path", None),
        getattr(callback, "best_model_path", None),
        *getattr(callback, "best_k_models", {}).keys(),
    }
    return sorted(os.path.abspath(p) for p in paths if p and os.path.isfile(p))


LOG_MODEL_MODES = ("none", "best", "end", "all")


def log_model_mode(value: Any) -> str:
    """``log_model=`` as MLflow's and W&B's loggers take it: False -> none; True -> end (top-k,
    best and last of each ModelCheckpoint when fit ends); "best" -> the best of each monitoring
    checkpoint; "all" -> each one when it is saved."""
    if value is None or value is False:
        return "none"
    if value is True:
        return "end"
    if value not in LOG_MODEL_MODES:
        raise ValueError(f"log_model must be False, True, 'best' or 'all', got {value!r}")
    return str(value)


def finalize_status(status: str) -> Tuple[str, str]:
    """(run status, reason) of a ``finalize(status)`` with no exception in flight."""
    if status == "finished":
        return "interrupted", "Lightning stopped the run to requeue it (SLURM)"
    if status == "failed":
        return "failed", "Lightning reported a failure"
    return "failed", f"Lightning finalized the run with status {status!r}"


def epoch_number(epoch: Any, trainer: Any) -> Optional[int]:
    """The 1-indexed epoch of a ``log_metrics`` call: Lightning's 0-based ``epoch`` key, else the
    trainer's current epoch (a logged ``"step"`` key or ``LearningRateMonitor`` leaves it out)."""
    if epoch is None:
        epoch = getattr(trainer, "current_epoch", None)
    return None if epoch is None else int(epoch) + 1


def record_values(metrics: Mapping[str, Any]) -> Dict[str, Any]:
    """The values an epoch record takes, under Lightning's names: ``loss_epoch`` as ``loss``;
    ``*_step`` values (one batch's) left out."""
    return {k[:-6] if k.endswith("_epoch") else k: v for k, v in metrics.items() if not k.endswith("_step")}


def trainer_ref(model: Any) -> Optional[Callable[[], Any]]:
    """A weak reference to the trainer of a LightningModule (None without one)."""
    trainer = getattr(model, "trainer", None)
    if trainer is None:
        return None
    try:
        return weakref.ref(trainer)
    except TypeError:  # pytorch_lightning 1.9 hands over a weakref.proxy, not the trainer
        return lambda: trainer


def best_checkpoint(callback: Any) -> Optional[Tuple[Optional[str], str, Any]]:
    """(monitor, path, score) of a ModelCheckpoint's best file so far (monitor None: a periodic
    callback, its latest file), or None before it saved one."""
    best = getattr(callback, "best_model_path", None)
    if not best:
        return None
    return getattr(callback, "monitor", None), best, getattr(callback, "best_model_score", None)
