"""Lightning adapter: ``Trainer(logger=KoguLogger(path="digits/mlp"))``.

It only translates Lightning's ``Logger`` calls into run calls (the rules and their reasons:
docs/lightning.md). :class:`KoguLogger` derives from ``lightning.pytorch.loggers.Logger`` (from
``pytorch_lightning.loggers.Logger`` when only that is installed; :class:`PLKoguLogger` is built on
``pytorch_lightning`` on first access). It records on rank zero only; other ranks get an experiment
that accepts any call, as Lightning's own ``DummyExperiment``. The run starts on first use; its id
is the logger's ``version``, fixed when the logger is built so that every rank and every later
stage agree on it. Epoch-level values gather into the epoch's record, closed at Lightning's
train-epoch-end call; ``validate``/``test`` after ``fit`` add to the last record. ``finalize``:
``success`` -> completed; ``failed`` -> the exception in flight; ``finished`` (SLURM) -> interrupted.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import epochline

from . import _lightning_base as fw
from ._session import Reopening, Session
from ._support import (
    DEFAULT_EMIT,
    INIT_KEYWORDS,
    adapter_options,
    catch_and_warn,
    exception_in_flight,
    flatten_params,
    image_captions,
    lightning_datasets,
    local_directory,
    prefixed,
    prefixed_key,
    table_text,
)


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
        allowed = (*INIT_KEYWORDS, "total_epochs")
        options = adapter_options(
            type(self).__name__, {"path": path, **init_kwargs}, run=run, allowed=allowed
        )
        self._prefix, self._log_model = prefix, fw.log_model_mode(log_model)
        self._run_id = (
            run.id if run is not None and run.id else (options.get("run_id") or epochline.new_run_id())
        )
        self._session = Session("lightning", {**options, "run_id": self._run_id}, run)
        self._trainer_ref: Any = None  # a weak reference to the trainer, from log_graph
        self._eval: Dict[str, Any] = {}  # values of a validate/test call outside fit
        self._hparams: Optional[Dict[str, Any]] = None
        self._checkpoint_callbacks: Dict[int, Any] = {}
        self._finalized: Optional[Tuple[Any, ...]] = None

    # -- Logger properties -----------------------------------------------------------------
    @property
    def name(self) -> str:
        """The run's path (Lightning puts checkpoints under ``save_dir/name/version``)."""
        given = self._session.given
        return given.path if given else self._session.options["path"]

    @property
    def version(self) -> str:
        """The run id (also the id to pass as ``run_id=`` to resume the run)."""
        return self._run_id

    @property
    def save_dir(self) -> Optional[str]:
        """``<store>/lightning`` for a local store (Lightning's files, e.g. checkpoints), else None."""
        given = self._session.given
        directory = local_directory(given.store_uri if given else self._session.options.get("store"))
        return None if directory is None else os.path.join(os.fspath(directory), "lightning")

    @property
    def root_dir(self) -> Optional[str]:
        return None if self.save_dir is None else os.path.join(self.save_dir, self.name)

    @property
    def log_dir(self) -> Optional[str]:
        return None if self.root_dir is None else os.path.join(self.root_dir, self.version)

    @property
    def experiment(self) -> Any:
        """The :class:`epochline.Run` (on other ranks an experiment that accepts any call)."""
        if getattr(fw.rank_zero_only, "rank", 0) > 0:
            return fw.RankExperiment()
        run, session = self._session.run, self._session
        if run is not None and run.finished and session.owned:
            return Reopening(run, session.current)  # Lightning reads it at every stage's setup
        return self._session.current()

    def _trainer(self) -> Any:
        return self._trainer_ref() if self._trainer_ref is not None else None

    def _total(self, loop: fw.Loop) -> Optional[int]:
        total = self._session.options.get("total_epochs")
        return total if total is not None else loop.max_epochs

    def __getstate__(self) -> Dict[str, Any]:
        # ddp_spawn pickles the trainer and its loggers: the session leaves its run here (the
        # spawned rank zero opens it by id: the live one when it is this process)
        return {**self.__dict__, "_trainer_ref": None, "_checkpoint_callbacks": {}}

    # -- Logger methods ------------------------------------------------------------------------
    @catch_and_warn
    def log_graph(self, model: Any, input_array: Any = None) -> None:
        """Lightning calls this on every rank right after the hyper-parameters, with the module:
        the adapter takes the trainer from it (no graph is recorded)."""
        ref = fw.trainer_ref(model)
        if ref is None:
            return
        self._trainer_ref = ref
        if fw.spawned_worker(ref()):
            self._session.in_worker()
        if fw.trainer_fn(ref()) == "fit":
            self._session.begin("fit")  # left unfinished inside it, the run ends failed

    @fw.rank_zero_only
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
                self._session.current().log_params(params)
        if metrics:
            self._session.current().summary(prefixed(metrics, self._prefix, self.LOGGER_JOIN_CHAR))

    @fw.rank_zero_only
    @catch_and_warn
    def log_metrics(self, metrics: Mapping[str, Any], step: Optional[int] = None) -> None:
        run, epochs, trainer = self._session.current(), self._session.epochs, self._trainer()
        raw = dict(metrics)
        epoch = fw.epoch_number(raw.pop("epoch", None), trainer)
        values = prefixed(raw, self._prefix, self.LOGGER_JOIN_CHAR)  # the record keeps Lightning's names
        record, loop = fw.record_values(raw), fw.loop(trainer)
        if loop.evaluating or (loop.fn is None and record and all(k.startswith("test") for k in record)):
            last = epochs.epoch or epoch  # (no trainer known: only test metrics are told apart, by name)
            run.log(values, step=step, epoch=last, stage=loop.stage)
            self._eval.update(record)
            if record:  # the final record's test values (or a later validate's)
                kind = "test" if loop.fn in ("test", None) else "val"
                run.end_evaluation(
                    record, stage=kind, epoch=last if loop.fn == "validate" else None, step=step
                )
            return
        run.log(values, step=step, epoch=epoch, stage=loop.stage)
        if loop.stage == "val" and record:  # every validation counts for the best (val_check_interval<1)
            run.end_evaluation(record, stage="val", epoch=epoch, step=step)
        # a training step's values: the record takes the epoch's, not the last batch's
        epochs.add(run, epoch, record if loop.epoch_level else {}, self._total(loop))
        if loop.epoch_end:
            epochs.close(run, self._total(loop))
            if epochs.closed == 1:  # the loaders are loaded now: their sizes cost a len()
                lightning_datasets(run, trainer)

    @fw.rank_zero_only
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
        pairs = image_captions(images, caption)
        step = getattr(self._trainer(), "global_step", None) if step is None else step
        key = prefixed_key(key, self._prefix, self.LOGGER_JOIN_CHAR)
        return [self._session.current().log_image(key, im, step=step, caption=c) for im, c in pairs]

    @fw.rank_zero_only
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
        text = table_text(columns, data, dataframe)
        if text:
            self._session.current().log_text(text, logger=key)

    log_table = log_text

    @fw.rank_zero_only
    @catch_and_warn
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Remember each monitoring callback's best (``summary``); store checkpoints by ``log_model``."""
        self._checkpoint_callbacks[id(checkpoint_callback)] = checkpoint_callback
        best = fw.best_checkpoint(checkpoint_callback)
        if best is not None:
            self._session.checkpoints.note_best(*best)
        if self._log_model == "all":
            self._store_checkpoints(fw.checkpoint_files(checkpoint_callback))

    def _store_checkpoints(self, paths: Iterable[str]) -> None:
        run = self._session.current()
        for path in paths:
            self._session.checkpoints.store(run, path, name=f"checkpoints/{os.path.basename(path)}")

    def save(self) -> None:
        """Nothing to do: the run's writer thread stores events as they come."""

    @fw.rank_zero_only
    @catch_and_warn
    def finalize(self, status: str) -> None:
        """End of a fit/validate/test/predict call (Lightning calls it inside its ``except``
        block on failure, so the exception in flight tells failed from interrupted)."""
        exc = exception_in_flight()
        key = (status, id(exc) if exc is not None else None)
        if status != "success" and key == self._finalized:
            return  # the same failure finalized twice (DDP's launcher does): one final set
        self._finalized = key
        session, run = self._session, self._session.run
        if run is None or run.finished:
            if status == "success" or not session.owned or (run is not None and run.status != "completed"):
                return  # nothing new was logged in this stage, or it already ended so (SIGTERM)
            run = self._session.current()  # record the failure of a later stage in the same run
        loop = fw.loop(self._trainer())
        fn, total = loop.fn, self._total(loop)
        if self._eval:  # validate/test values join the last epoch's record (one line, not two)
            values, self._eval = self._eval, {}
            session.add_to_last(values, total)
        session.epochs.close(run, total)
        if fn in ("fit", None):
            run.summary(session.checkpoints.best_summary())  # (nothing without checkpoints)
            if self._log_model == "best":
                self._store_checkpoints(path for path, _ in session.checkpoints.monitored().values())
            elif self._log_model == "end":
                for callback in self._checkpoint_callbacks.values():
                    self._store_checkpoints(fw.checkpoint_files(callback))
        if status == "success":  # after fit a test may follow: the final lines wait for it
            session.end(hold_lines=fn == "fit")
        elif status == "failed" and exc is not None:
            session.end(exc)
        else:
            ending, reason = fw.finalize_status(status)
            session.end(status=ending, reason=reason)


KoguLogger = fw.logger_class(KoguLoggerMixin)  # over lightning.pytorch, else pytorch_lightning
if fw.derives_from(KoguLogger, "pytorch_lightning"):
    PLKoguLogger = KoguLogger  # only pytorch_lightning installed: one class serves both names


def __getattr__(name: str) -> Any:
    if name == "PLKoguLogger":  # built on first use: importing pytorch_lightning takes seconds
        cls = globals()["PLKoguLogger"] = fw.logger_class(
            KoguLoggerMixin, "pytorch_lightning", "PLKoguLogger"
        )
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["KoguLogger", "PLKoguLogger", "KoguLoggerMixin", "DEFAULT_EMIT"]
