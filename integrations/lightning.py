"""Lightning adapter: ``Trainer(logger=KoguLogger(path="digits/mlp"))``.

It only translates Lightning's ``Logger`` calls into run calls (the rules and their reasons:
docs/lightning.md). :class:`KoguLogger` derives from ``lightning.pytorch.loggers.Logger`` (from
``pytorch_lightning.loggers.Logger`` when only that is installed); :class:`PLKoguLogger` is built
on ``pytorch_lightning`` on first access. All of it runs on rank zero only; other ranks get an
experiment that accepts any call, as Lightning's own ``DummyExperiment``.

* The run starts on first use (``experiment``); ``version`` is its id, fixed when the logger is
  built so that every rank and every later stage agree on it. ``run=`` records into a run you
  started yourself (you finish it).
* ``log_metrics``: one ``run.log`` at Lightning's step, stored with the 1-indexed epoch (Lightning's
  ``epoch`` key, else the trainer's current epoch: a logged ``"step"`` key or a callback such as
  ``LearningRateMonitor`` leaves it out). Epoch-level values gather into the epoch's record, which is
  closed once, at Lightning's train-epoch-end call.
* ``validate``/``test`` after ``fit`` add their values to the last epoch's record.
* ``finalize``: ``success`` -> completed; ``failed`` -> the exception in flight; ``finished``
  (SLURM requeue) -> interrupted.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import epochline

from ._checkpoints import Checkpoints
from ._lightning_base import (
    NEEDS_LIGHTNING,
    RankExperiment,
    checkpoint_files,
    epoch_level,
    logger_class,
    loop_state,
    max_epochs,
    rank_zero_only,
    spawned_worker,
    train_epoch_end,
    trainer_fn,
)
from ._support import (
    DEFAULT_EMIT,
    INIT_KEYWORDS,
    EpochAccumulator,
    UsageError,
    adapter_options,
    catch_and_warn,
    end_run,
    exception_in_flight,
    flatten_params,
    leave_to_launcher,
    lightning_datasets,
    local_directory,
    open_run,
    prefixed,
    prior_record,
    receive_held_lines,
)

LOG_MODEL_MODES = ("none", "best", "end", "all")


def _log_model_mode(value: Union[bool, str, None]) -> str:
    """False -> none; True -> end (top-k, best and last of each ModelCheckpoint when fit ends, as
    MLflow's and W&B's loggers); "best" -> the best of each monitoring checkpoint; "all" -> each."""
    if value is None or value is False:
        return "none"
    if value is True:
        return "end"
    if value not in LOG_MODEL_MODES:
        raise ValueError(f"log_model must be False, True, 'best' or 'all', got {value!r}")
    return value


_ENDINGS = {  # finalize's status, no exception in flight -> the run's status and reason
    "failed": ("failed", "Lightning reported a failure"),
    "finished": ("interrupted", "Lightning stopped the run to requeue it (SLURM)"),
}


class _Reopening:
    """What ``experiment`` returns after a stage finished the run: any use re-opens it by id.

    Lightning reads ``logger.experiment`` when each stage sets up, so re-opening at that read
    would restart (and re-finish) the run even for a ``predict`` that logs nothing.
    """

    _READ_ONLY = frozenset(("id", "name", "path", "store_uri", "status", "reason", "finished", "step"))
    _READ_ONLY |= {"params", "fingerprint", "best", "lost", "epochs_done", "accuracy_scale"}

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

    ``path``, ``name``, ``tags``, ``params``, ``store``, ``emit``, ``run_id`` (resume that run),
    ``alias``, ``ignore_params``, ``accuracy_scale``, ``scales``, ``field_map``, ``total_epochs``
    (else ``trainer.max_epochs``) and ``flush_interval`` go to :func:`epochline.init`, checked
    now. ``run=``: record into this existing run instead (you finish it). ``prefix``: put before
    every metric key, joined with ``-`` (as Lightning's own loggers). ``log_model``: ``False``
    (default), ``True`` (top-k, best and last checkpoints when fit ends), ``"best"`` or ``"all"``.
    """

    LOGGER_JOIN_CHAR = "-"

    def __init__(
        self,
        path: str = "default",
        *,
        prefix: str = "",
        log_model: Union[bool, str] = False,
        run: Any = None,
        **init_kwargs: Any,
    ) -> None:
        super().__init__()
        if type(prefix) is not str:
            raise TypeError(f"prefix must be a string, got {prefix!r}")
        self._options = adapter_options(
            type(self).__name__,
            {"path": path, **init_kwargs},
            run=run,
            allowed=(*INIT_KEYWORDS, "total_epochs"),
        )
        self._prefix = prefix
        self._log_model = _log_model_mode(log_model)
        self._given = run
        self._run: Any = run
        self._run_id = (
            run.id if run is not None and run.id else (self._options.get("run_id") or epochline.new_run_id())
        )
        self._trainer_ref: Any = None
        self._epochs = EpochAccumulator()
        self._eval: Dict[str, Any] = {}  # values of a validate/test call outside fit
        self._hparams: Optional[Dict[str, Any]] = None
        self._checkpoints = Checkpoints()
        self._checkpoint_callbacks: Dict[int, Any] = {}
        self._finalized: Optional[Tuple[Any, ...]] = None
        self._phase: Any = None  # the run's "fit" phase while fit runs
        self._worker = False  # a ddp_spawn worker: its launcher finalizes a failure
        self._handover: Optional[str] = None  # where a worker leaves its final lines (launcher's)

    # -- Logger properties -----------------------------------------------------------------
    @property
    def name(self) -> str:
        """The run's path (Lightning puts checkpoints under ``save_dir/name/version``)."""
        return self._given.path if self._given else self._options["path"]

    @property
    def version(self) -> str:
        """The run id (also the id to pass as ``run_id=`` to resume the run)."""
        return self._run_id

    @property
    def save_dir(self) -> Optional[str]:
        """``<store>/lightning`` for a local store (Lightning's files, e.g. checkpoints), else None."""
        directory = local_directory(self._given.store_uri if self._given else self._options.get("store"))
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
    def experiment(self) -> Any:
        """The :class:`epochline.Run` (on other ranks an experiment that accepts any call)."""
        if getattr(rank_zero_only, "rank", 0) > 0:
            return RankExperiment()
        run = self._run
        if run is not None and run.finished and self._given is None:
            return _Reopening(self)
        return self._open()

    # -- the run -----------------------------------------------------------------------------
    def _open(self) -> Any:
        run = self._run
        if run is not None and (not run.finished or self._given is not None):
            return run
        reopen = self._run_id if run is not None else None  # a later stage: tags, params recorded
        self._run = open_run("lightning", **{**self._options, "run_id": self._run_id}, reopen=reopen)
        if self._worker:
            leave_to_launcher(self._run, self._handover)
        return self._run

    def _trainer(self) -> Any:
        return self._trainer_ref() if self._trainer_ref is not None else None

    def _total(self, trainer: Any) -> Optional[int]:
        total = self._options.get("total_epochs")
        return total if total is not None else max_epochs(trainer)

    def __getstate__(self) -> Dict[str, Any]:
        # ddp_spawn pickles the trainer and its loggers: the run (threads, connections) stays
        # here; rank zero of the spawned processes opens it (by id: the live one in this process).
        state = self.__dict__.copy()
        state.update(_run=None, _given=None, _phase=None, _trainer_ref=None, _checkpoint_callbacks={})
        if self._given is None:  # the worker's final lines come back here, printed once for all stages
            state["_handover"] = receive_held_lines(self._run_id)
        return state

    # -- Logger methods ------------------------------------------------------------------------
    @catch_and_warn
    def log_graph(self, model: Any, input_array: Any = None) -> None:
        """Lightning calls this on every rank right after the hyper-parameters, with the module:
        the adapter takes the trainer from it (no graph is recorded)."""
        import weakref

        trainer = getattr(model, "trainer", None)
        if trainer is None:
            return
        try:
            self._trainer_ref = weakref.ref(trainer)
        except TypeError:  # pytorch_lightning 1.9 hands over a weakref.proxy, not the trainer
            self._trainer_ref = lambda proxy=trainer: proxy
        run = self._run
        if spawned_worker(trainer) and self._given is None:
            self._worker = True
            leave_to_launcher(run, self._handover)
        if run is not None and not run.finished and trainer_fn(trainer) == "fit" and self._given is None:
            self._phase = run.phase("fit")  # left unfinished inside it, the run ends failed

    @rank_zero_only
    @catch_and_warn
    def log_hyperparams(
        self, params: Any, metrics: Optional[Mapping[str, Any]] = None, *args: Any, **kwargs: Any
    ) -> None:
        """Module + datamodule hparams (dict, Namespace, OmegaConf...), flattened without calling
        anything; a later stage with the same hparams records nothing again. ``metrics`` (as
        TensorBoard's ``hp_metric``) go into the run's summary."""
        if params is not None:
            flat = flatten_params(params)
            if flat and flat != self._hparams:
                self._hparams = flat
                self._open().log_params(params)
        if metrics:
            self._open().summary(prefixed(metrics, self._prefix, self.LOGGER_JOIN_CHAR))

    @rank_zero_only
    @catch_and_warn
    def log_metrics(self, metrics: Mapping[str, Any], step: Optional[int] = None) -> None:
        run = self._open()
        raw = dict(metrics)
        epoch0 = raw.pop("epoch", None)
        values = prefixed(raw, self._prefix, self.LOGGER_JOIN_CHAR)
        trainer = self._trainer()
        fn, stage = loop_state(trainer)
        if epoch0 is None and trainer is not None:  # a logged "step", LearningRateMonitor, ...
            epoch0 = getattr(trainer, "current_epoch", None)
        epoch = int(epoch0) + 1 if epoch0 is not None else None
        # the record takes Lightning's names (the prefix is for the stored series)
        epoch_values = {
            k[:-6] if k.endswith("_epoch") else k: v for k, v in raw.items() if not k.endswith("_step")
        }
        if fn is not None:
            evaluating = fn in ("validate", "test")
        else:  # no trainer known: only test metrics are told apart, by name
            evaluating = bool(epoch_values) and all(k.startswith("test") for k in epoch_values)
        if evaluating:
            last = self._epochs.epoch or epoch
            run.log(values, step=step, epoch=last, stage=stage)
            self._eval.update(epoch_values)
            if epoch_values:  # the final record's test values (or a later validate's)
                kind = "test" if fn in ("test", None) else "val"
                run.end_evaluation(
                    epoch_values, stage=kind, epoch=last if fn == "validate" else None, step=step
                )
            return
        run.log(values, step=step, epoch=epoch, stage=stage)
        if stage == "val" and epoch_values:  # every validation counts for the best (val_check_interval<1)
            run.end_evaluation(epoch_values, stage="val", epoch=epoch, step=step)
        if not epoch_level(trainer, fn, stage):
            epoch_values = {}  # a training step's values: the record takes the epoch's, not the last batch's
        self._epochs.add(run, epoch, epoch_values, self._total(trainer))
        if train_epoch_end(trainer, fn, stage):
            self._epochs.close(run, self._total(trainer))
            if self._epochs.closed == 1:  # the loaders are loaded now: their sizes cost a len()
                lightning_datasets(run, trainer)

    @rank_zero_only
    @catch_and_warn
    def log_image(
        self,
        key: str,
        images: Any,
        step: Optional[int] = None,
        caption: Union[str, List[Optional[str]], None] = None,
        **kwargs: Any,
    ) -> List[Optional[str]]:
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
                raise UsageError(f"log_image got {len(images)} images and {len(captions)} captions")
        if step is None:
            step = getattr(self._trainer(), "global_step", None)
        run = self._open()
        key = prefixed({key: None}, self._prefix, self.LOGGER_JOIN_CHAR).popitem()[0]
        return [run.log_image(key, image, step=step, caption=text) for image, text in zip(images, captions)]

    @rank_zero_only
    @catch_and_warn
    def log_text(
        self,
        key: str,
        columns: Optional[List[str]] = None,
        data: Optional[List[List[Any]]] = None,
        dataframe: Any = None,
        step: Optional[int] = None,
    ) -> None:
        """W&B's signature, also of :meth:`log_table` (epochline has no table records): a table
        becomes one text record (a header line, then one tab-separated line per row) under
        logger ``key``; ``key`` alone records nothing."""
        rows = _rows(columns, data, dataframe)
        if rows:
            self._open().log_text("\n".join(rows), logger=key)

    log_table = log_text

    @rank_zero_only
    @catch_and_warn
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Remember each monitoring callback's best (``summary``); store checkpoints by ``log_model``."""
        self._checkpoint_callbacks[id(checkpoint_callback)] = checkpoint_callback
        best = getattr(checkpoint_callback, "best_model_path", None)
        if best:  # monitor None: a periodic callback, its latest file
            monitor = getattr(checkpoint_callback, "monitor", None)
            self._checkpoints.note_best(monitor, best, getattr(checkpoint_callback, "best_model_score", None))
        if self._log_model == "all":
            self._store_checkpoints(checkpoint_files(checkpoint_callback))

    def _store_checkpoints(self, paths: Iterable[str]) -> None:
        run = self._open()
        for path in paths:
            self._checkpoints.store(run, path, name=f"checkpoints/{os.path.basename(path)}")

    def save(self) -> None:
        """Nothing to do: the run's writer thread stores events as they come."""

    @rank_zero_only
    @catch_and_warn
    def finalize(self, status: str) -> None:
        """End of a fit/validate/test/predict call (Lightning calls it inside its ``except``
        block on failure, so the exception in flight tells failed from interrupted)."""
        exc = exception_in_flight()
        key = (status, id(exc) if exc is not None else None)
        if status != "success" and key == self._finalized:
            return  # the same failure finalized twice (DDP's launcher does): one final set
        self._finalized = key
        run = self._run
        if run is None or run.finished:
            if (
                status == "success"
                or self._given is not None
                or (run is not None and run.status != "completed")
            ):
                return  # nothing new was logged in this stage, or it already ended so (SIGTERM)
            run = self._open()  # record the failure of a later stage in the same run
        trainer = self._trainer()
        fn, total = trainer_fn(trainer), self._total(trainer)
        if self._eval:  # validate/test values join the last epoch's record (one line, not two)
            values, self._eval = self._eval, {}
            if self._epochs.closed == 0 and self._epochs.epoch == 0 and run.epochs_done:
                self._epochs.resume(run.epochs_done, prior_record(run, run.epochs_done))
            self._epochs.add_to_last(run, values, total)
        self._epochs.close(run, total)
        if fn in ("fit", None):
            self._checkpoint_summary(run)
        if self._phase is not None:
            self._phase.end()
        if self._given is not None:
            return  # the user's run: they finish it
        if status == "success":  # after fit a test may follow: the final lines wait for it
            end_run(run, hold_lines=fn == "fit")
        elif status == "failed" and exc is not None:
            end_run(run, exc)
        else:
            ending = _ENDINGS.get(status, ("failed", f"Lightning finalized the run with status {status!r}"))
            end_run(run, status=ending[0], reason=ending[1])

    def _checkpoint_summary(self, run: Any) -> None:
        monitored = self._checkpoints.monitored()
        if monitored:  # a monitoring callback's best, never a periodic one's latest file
            (path, score), *_ = monitored.values()
            summary: Dict[str, Any] = {"best_checkpoint": path, "best_checkpoint_score": score}
            if len(monitored) > 1:
                for monitor, (other, value) in monitored.items():
                    summary[f"best_checkpoints.{monitor}"] = other
                    summary[f"best_checkpoints.{monitor}_score"] = value
            run.summary(summary)
        if self._log_model == "best":
            self._store_checkpoints(path for path, _ in monitored.values())
        elif self._log_model == "end":
            for callback in self._checkpoint_callbacks.values():
                self._store_checkpoints(checkpoint_files(callback))


def _rows(
    columns: Optional[Iterable[Any]], data: Optional[Iterable[Iterable[Any]]], dataframe: Any
) -> List[str]:
    if dataframe is not None:
        columns = [str(c) for c in dataframe.columns]
        data = dataframe.itertuples(index=False)
    lines = ["\t".join(str(c) for c in columns)] if columns else []
    lines += ["\t".join(str(v) for v in row) for row in (data or [])]
    return lines


try:
    KoguLogger = logger_class(KoguLoggerMixin, "lightning.pytorch")
except ImportError:  # only pytorch_lightning installed (or neither: that import raises)
    try:
        PLKoguLogger = KoguLogger = logger_class(KoguLoggerMixin, "pytorch_lightning", "PLKoguLogger")
    except ImportError as exc:
        raise ImportError(NEEDS_LIGHTNING) from exc


def __getattr__(name: str) -> Any:
    if name == "PLKoguLogger":  # built on first use: importing pytorch_lightning takes seconds
        cls = globals()["PLKoguLogger"] = logger_class(KoguLoggerMixin, "pytorch_lightning", "PLKoguLogger")
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["KoguLogger", "PLKoguLogger", "KoguLoggerMixin", "DEFAULT_EMIT"]
