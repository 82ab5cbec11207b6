"""Lightning adapter: ``Trainer(logger=KoguLogger(path="digits/mlp"))``.

It only translates Lightning's ``Logger`` calls into run calls; naming, percent scaling, epoch
records, line emitters and exit handling live in the core. Two classes, one mixin:

* :class:`KoguLogger` derives from ``lightning.pytorch.loggers.Logger`` (from
  ``pytorch_lightning.loggers.Logger`` when only ``pytorch_lightning`` is installed);
* :class:`PLKoguLogger` derives from ``pytorch_lightning.loggers.Logger``: use it with
  ``import pytorch_lightning`` when both packages are installed. It is built on first access, so
  ``import epochline.integrations.lightning`` does not import ``pytorch_lightning``.

What happens when (Lightning calls its loggers on every rank; all of this runs on rank zero only):

* The run starts lazily on the first use (Lightning touches ``experiment`` while setting up fit,
  validate or test) with ``default_emit="kogu,progress"``; ``version`` is its id, chosen when the
  logger is built so that every rank and every later stage agree on it.
* ``log_metrics(metrics, step)``: one ``run.log`` at Lightning's step, with Lightning's ``epoch``
  (0-based) stored 1-indexed as the row's epoch. Epoch-level values (keys not ending ``_step``; a
  trailing ``_epoch`` dropped) are gathered per epoch and the epoch is closed with
  ``run.end_epoch(epoch, values, total_epochs=trainer.max_epochs)`` at the train-epoch-end call
  (after the epoch's validation), else when the next epoch's metrics arrive, else at ``finalize``.
* ``validate``/``test``/``predict`` after ``fit``: their metrics go to the same run (re-opened by
  id if ``fit`` already finished it) and close the last epoch again with the ``val_*``/``test_*``
  values added; ``finalize`` then finishes it again. A stage that logs nothing re-opens nothing.
* ``finalize(status)``: ``"success"`` -> ``completed``; ``"failed"`` (any exception, Ctrl-C too)
  -> ``epochline.exit_status`` of the exception in flight: ``failed`` with its type and message,
  or ``interrupted`` for ``KeyboardInterrupt``; ``"finished"`` (SLURM requeue) -> ``interrupted``.
* The trainer is picked up in ``log_graph`` (Lightning passes the module right after the
  hyper-parameters): it gives ``max_epochs``, the stage, and the train-epoch-end moment. With
  ``Trainer(enable_autolog_hparams=False)`` that call does not happen and epochs close one call
  later (still during training); pass ``total_epochs=`` then.

Nothing here ever stops the training: a failure inside the logger is warned about once per kind.
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
import weakref
from typing import Any, Dict, Iterable, List, Mapping, Optional, Union

import epochline
from epochline import exit_status
from epochline.values import flatten_params

try:
    from lightning_utilities.core.rank_zero import rank_zero_only
except ImportError:  # pragma: no cover - every Lightning 2.x installs lightning_utilities
    from pytorch_lightning.utilities import rank_zero_only  # type: ignore

DEFAULT_EMIT = "kogu,progress"
LOG_MODEL_MODES = ("none", "best", "all")
_STAGES = {"train": "train", "validate": "val", "sanity_check": "val", "test": "test",
           "predict": "predict"}


def _log_model_mode(value: Union[bool, str, None]) -> str:
    if value is None or value is False:
        return "none"
    if value is True:
        return "best"
    if value not in LOG_MODEL_MODES:
        raise ValueError(f"log_model must be False/'none', True/'best' or 'all', got {value!r}")
    return value


def _rank_zero_experiment(fn: Any) -> Any:
    """Like Lightning's ``rank_zero_experiment``, but other ranks get epochline's no-op run."""

    @functools.wraps(fn)
    def experiment(self: Any) -> Any:
        if getattr(rank_zero_only, "rank", 0) > 0:
            return epochline.NoOpRun()
        return fn(self)

    return experiment


def _value(enum: Any) -> Optional[str]:
    """``TrainerFn.FITTING`` -> ``"fit"`` (``str()`` of these str-enums is the member name)."""
    return None if enum is None else str(getattr(enum, "value", enum))


def _strip_epoch(key: str) -> str:
    return key[:-6] if key.endswith("_epoch") else key


class _Reopening:
    """What ``experiment`` returns after a stage finished the run: any use re-opens it by id.

    Lightning reads ``logger.experiment`` when each stage sets up, so re-opening at that read
    would restart (and re-finish) the run even for a ``predict`` that logs nothing.
    """

    _READ_ONLY = frozenset({"id", "name", "path", "store_uri", "status", "reason", "finished", "step",
                            "params", "fingerprint", "best", "lost", "epochs_done", "accuracy_scale"})

    def __init__(self, logger: "KoguLoggerMixin"):
        self._logger = logger

    def __getattr__(self, name: str) -> Any:
        if name in self._READ_ONLY or name.startswith("_"):  # reading does not re-open
            return getattr(self._logger._run, name)
        return getattr(self._logger._open(), name)

    def __repr__(self) -> str:
        return f"<epochline run {self._logger.version} (finished; re-opened on use)>"


class KoguLoggerMixin:
    """Record a Lightning fit (and the validate/test after it) as one epochline run.

    ``path``, ``name``, ``tags``, ``params``, ``store``, ``emit``, ``run_id`` (resume that run)
    and ``**init_kwargs`` (``alias``, ``ignore_params``, ``accuracy_scale``, ...) go to
    :func:`epochline.init`. ``log_model``: ``False``/``"none"`` (default), ``True``/``"best"``
    (store the best checkpoint at the end of fit) or ``"all"`` (store each checkpoint when saved).
    ``total_epochs`` overrides ``trainer.max_epochs`` in the epoch records; ``scales`` and
    ``field_map`` go to :func:`epochline.init`.
    """

    def __init__(self, path: str = "default", *, name: Optional[str] = None,
                 tags: Iterable[str] = (), params: Any = None, store: Any = None,
                 emit: Union[str, Iterable[str], None] = None, run_id: Optional[str] = None,
                 log_model: Union[bool, str] = False, total_epochs: Optional[int] = None,
                 scales: Optional[Mapping[str, str]] = None,
                 field_map: Optional[Mapping[str, str]] = None, **init_kwargs: Any) -> None:
        super().__init__()
        if type(path) is not str:
            raise TypeError(f"path must be a string such as 'digits/mlp', got {path!r}")
        self._path = path
        self._run_name = name
        self._tags = (tags,) if isinstance(tags, str) else tuple(tags)
        self._params = params
        self._store = store
        self._emit = emit
        self._run_id = run_id or epochline.new_run_id()
        self._log_model = _log_model_mode(log_model)
        self._total_epochs = total_epochs
        self._scales = dict(scales or {})
        self._field_map = dict(field_map or {})
        self._init_kwargs = init_kwargs
        self._run: Any = None
        self._phase: Any = None  # the run's "fit" phase while fit runs
        self._trainer_ref: Any = None
        self._epoch = 0  # the 1-indexed epoch whose values are being gathered
        self._values: Dict[str, Any] = {}
        self._dirty = False  # values of self._epoch not yet in a record
        self._eval: Dict[str, Any] = {}  # values of a validate/test call outside fit
        self._hparams: Optional[Dict[str, Any]] = None
        self._checkpoints: Dict[str, float] = {}  # stored path -> mtime
        self._best: Optional[tuple] = None  # (path, score)
        self._warned: set = set()

    # -- Logger properties -----------------------------------------------------------------
    @property
    def name(self) -> str:
        """The run's path (Lightning puts checkpoints under ``save_dir/name/version``)."""
        return self._path

    @property
    def version(self) -> str:
        """The run id (also the id to pass as ``run_id=`` to resume the run)."""
        return self._run_id

    @property
    def save_dir(self) -> Optional[str]:
        """``<store>/lightning`` for a local store (Lightning's files, e.g. checkpoints), else None."""
        from epochline.store import local_directory

        directory = local_directory(self._store)
        return None if directory is None else os.path.join(os.fspath(directory), "lightning")

    @property
    def root_dir(self) -> Optional[str]:
        save_dir = self.save_dir
        return None if save_dir is None else os.path.join(save_dir, self.name)

    @property
    def log_dir(self) -> Optional[str]:
        root = self.root_dir
        return None if root is None else os.path.join(root, self.version)

    @property
    @_rank_zero_experiment
    def experiment(self) -> Any:
        """The :class:`epochline.Run` (no-op run on other ranks) for everything else."""
        run = self._run
        if run is not None and run.finished:
            return _Reopening(self)
        return self._open()

    # -- the run -----------------------------------------------------------------------------
    def _open(self) -> Any:
        run = self._run
        if run is not None and not run.finished:
            return run
        run = epochline.init(
            self._path, name=self._run_name, tags=self._tags if run is None else (),
            params=self._params if run is None else None, store=self._store,
            run_id=self._run_id, framework="lightning", emit=self._emit, default_emit=DEFAULT_EMIT,
            total_epochs=self._total_epochs, scales=self._scales, field_map=self._field_map,
            **self._init_kwargs)
        self._run = run
        return run

    def _trainer(self) -> Any:
        return self._trainer_ref() if self._trainer_ref is not None else None

    def _total(self, trainer: Any) -> Optional[int]:
        if self._total_epochs is not None:
            return self._total_epochs
        max_epochs = getattr(trainer, "max_epochs", None)
        return max_epochs if isinstance(max_epochs, int) and max_epochs > 0 else None

    def _warn_once(self, what: str, exc: BaseException) -> None:
        key = (what, type(exc).__name__)
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(f"epochline: KoguLogger.{what} failed ({type(exc).__name__}: {exc}); "
                          "training goes on", RuntimeWarning, stacklevel=3)

    def __getstate__(self) -> Dict[str, Any]:
        # ddp_spawn pickles the trainer and its loggers: the run (threads, connections) stays
        # here; rank zero of the spawned processes opens it.
        state = self.__dict__.copy()
        state["_run"] = None
        state["_phase"] = None
        state["_trainer_ref"] = None
        return state

    # -- Logger methods ------------------------------------------------------------------------
    def log_graph(self, model: Any, input_array: Any = None) -> None:
        """Lightning calls this on every rank right after the hyper-parameters, with the module:
        the adapter takes the trainer from it (no graph is recorded)."""
        try:
            trainer = getattr(model, "trainer", None)
            if trainer is None:
                return
            try:
                self._trainer_ref = weakref.ref(trainer)
            except TypeError:  # pytorch_lightning 1.9 hands over a weakref.proxy, not the trainer
                self._trainer_ref = lambda proxy=trainer: proxy
            run = self._run
            if run is not None and not run.finished and _value(trainer.state.fn) == "fit":
                self._phase = run.phase("fit")
        except Exception as exc:  # never stop the fit
            self._warn_once("log_graph", exc)

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """Module + datamodule hparams (dict, Namespace, OmegaConf...), flattened without calling
        anything; a later stage with the same hparams records nothing again."""
        try:
            if params is None:
                return
            flat = flatten_params(params)
            if not flat or flat == self._hparams:
                return
            self._hparams = flat
            self._open().log_params(params)
        except Exception as exc:
            self._warn_once("log_hyperparams", exc)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: Optional[int] = None) -> None:
        try:
            self._log_metrics(metrics, step)
        except Exception as exc:
            self._warn_once("log_metrics", exc)

    def _log_metrics(self, metrics: Mapping[str, Any], step: Optional[int]) -> None:
        run = self._open()
        values = dict(metrics)
        epoch0 = values.pop("epoch", None)
        epoch = int(epoch0) + 1 if epoch0 is not None else None
        trainer = self._trainer()
        state = getattr(trainer, "state", None)
        fn = _value(getattr(state, "fn", None))
        stage = _STAGES.get(_value(getattr(state, "stage", None)))
        epoch_values = {_strip_epoch(k): v for k, v in values.items() if not k.endswith("_step")}
        if fn is not None:
            evaluating = fn in ("validate", "test")
        else:  # no trainer known: only test metrics are told apart, by name
            evaluating = bool(epoch_values) and all(k.startswith("test") for k in epoch_values)
        if evaluating:
            run.log(values, step=step, epoch=self._epoch or epoch, stage=stage)
            self._eval.update(epoch_values)
            return
        run.log(values, step=step, epoch=epoch, stage=stage)
        if epoch is not None and epoch > self._epoch:
            self._close(run, trainer)
            self._epoch, self._values = epoch, {}
        if epoch_values and self._epoch > 0:
            self._values.update(epoch_values)
            self._dirty = True
            if self._train_epoch_end(trainer, fn, stage):
                self._close(run, trainer)

    @staticmethod
    def _train_epoch_end(trainer: Any, fn: Optional[str], stage: Optional[str]) -> bool:
        """True for the call Lightning makes at the end of a training epoch (after its
        validation): the epoch is processed but not yet completed."""
        if fn != "fit" or stage != "train":
            return False
        try:
            current = trainer.fit_loop.epoch_progress.current
            return current.processed > current.completed
        except AttributeError:
            return False

    def _close(self, run: Any, trainer: Any) -> None:
        if self._dirty:
            self._dirty = False
            run.end_epoch(self._epoch, self._values, total_epochs=self._total(trainer))

    @rank_zero_only
    def log_image(self, key: str, images: Any, step: Optional[int] = None,
                  caption: Union[str, List[Optional[str]], None] = None, **kwargs: Any) -> List[Optional[str]]:
        """Store images (a list, or one image: PIL, array, tensor, bytes, path) under ``key``
        at ``step`` (default: the trainer's global step); ``caption`` one text or one per image.
        Returns the stored paths."""
        if not isinstance(images, (list, tuple)):
            images = [images]
        if caption is None or isinstance(caption, str):
            captions: List[Optional[str]] = [caption] * len(images)
        else:
            captions = list(caption)
            if len(captions) != len(images):
                raise ValueError(f"log_image got {len(images)} images and {len(captions)} captions")
        if step is None:
            step = getattr(self._trainer(), "global_step", None)
        run = self._open()
        return [run.log_image(key, image, step=step, caption=text) for image, text in zip(images, captions)]

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """``log_model="all"``: store each new checkpoint file now; ``"best"``: remember the best
        one, stored when fit ends."""
        if self._log_model == "none":
            return
        try:
            best = getattr(checkpoint_callback, "best_model_path", None)
            if best:
                score = getattr(checkpoint_callback, "best_model_score", None)
                self._best = (best, None if score is None else float(score))
            if self._log_model == "all":
                paths = {getattr(checkpoint_callback, "last_model_path", None), best,
                         *getattr(checkpoint_callback, "best_k_models", {}).keys()}
                for path in sorted(p for p in paths if p):
                    self._store_checkpoint(path)
        except Exception as exc:
            self._warn_once("after_save_checkpoint", exc)

    def _store_checkpoint(self, path: str) -> None:
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            return
        if self._checkpoints.get(path) != mtime:
            self._checkpoints[path] = mtime
            self._open().log_artifact(path, name=f"checkpoints/{os.path.basename(path)}")

    def save(self) -> None:
        """Nothing to do: the run's writer thread stores events as they come."""

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """End of a fit/validate/test/predict call (Lightning calls it inside its ``except``
        block on failure, so the exception in flight tells failed from interrupted)."""
        try:
            self._finalize(status, sys.exc_info()[1])
        except Exception as exc:
            self._warn_once("finalize", exc)

    def _finalize(self, status: str, exc: Optional[BaseException]) -> None:
        if status == "success":
            result, reason = "completed", None
        elif status == "failed":
            result, reason = exit_status(exc) if exc is not None else ("failed", None)
            if result == "completed":  # e.g. SystemExit(0) raised inside the fit
                result, reason = "failed", f"Lightning reported a failure ({reason or type(exc).__name__})"
            reason = reason or "Lightning reported a failure"
        elif status == "finished":
            result, reason = "interrupted", "Lightning stopped the run to requeue it (SLURM)"
        else:
            result, reason = "failed", f"Lightning finalized the run with status {status!r}"
        run = self._run
        if run is None or run.finished:
            if result == "completed" or (run is not None and run.status == result):
                return  # nothing new was logged in this stage, or already ended so (SIGTERM)
            run = self._open()  # record the failure of a later stage in the same run
        trainer = self._trainer()
        if self._eval:  # validate/test values join the last epoch's record (one line, not two)
            self._values.update(self._eval)
            self._eval = {}
            self._epoch, self._dirty = max(self._epoch, 1), True
        self._close(run, trainer)
        if self._best is not None and _value(getattr(getattr(trainer, "state", None), "fn", None)) in ("fit", None):
            path, score = self._best
            run.summary(best_checkpoint=path, best_checkpoint_score=score)
            if self._log_model == "best":
                self._store_checkpoint(path)
        run.finish(result, reason)  # also ends the "fit" phase


def _make(base: type, package: str) -> type:
    cls = type("KoguLogger", (KoguLoggerMixin, base), {
        "__doc__": KoguLoggerMixin.__doc__ + f"\n    This class derives from ``{package}.loggers.Logger``.\n",
        "__module__": __name__,
    })
    return cls


def _pytorch_lightning_logger() -> type:
    from pytorch_lightning.loggers import Logger

    cls = _make(Logger, "pytorch_lightning")
    cls.__name__ = cls.__qualname__ = "PLKoguLogger"
    return cls


try:
    from lightning.pytorch.loggers import Logger as _LightningLogger
except ImportError:  # only pytorch_lightning installed (or neither: that import raises)
    try:
        PLKoguLogger = KoguLogger = _pytorch_lightning_logger()
    except ImportError as exc:
        raise ImportError("epochline.integrations.lightning needs `lightning` or `pytorch_lightning`: "
                          "pip install 'epochline[lightning]'") from exc
else:
    KoguLogger = _make(_LightningLogger, "lightning.pytorch")


def __getattr__(name: str) -> Any:
    if name == "PLKoguLogger":  # built on first use: importing pytorch_lightning takes seconds
        cls = globals()["PLKoguLogger"] = _pytorch_lightning_logger()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["KoguLogger", "PLKoguLogger", "KoguLoggerMixin", "DEFAULT_EMIT"]
