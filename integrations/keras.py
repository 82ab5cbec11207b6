"""Keras 3 adapter: ``model.fit(x, y, callbacks=[TrackerCallback(path="digits/keras")])``.

It only translates Keras callback calls into run calls (the rules and their reasons: docs/keras.md),
through the public ``keras`` API only, so it works on every backend; the tests run it on torch.
One run per ``fit``: it starts at ``on_train_begin`` (the fit's parameters logged, the run's
``"fit"`` phase begun), each ``on_epoch_end`` logs the epoch's logs and closes its record (Keras
epochs are 0-based, its accuracies fractions), ``on_train_end`` stores the checkpoint and ends the
run. Keras does not call that when ``fit`` raises: the core's excepthook/atexit or the callback's
``with`` block ends the run then. ``evaluate(..., callbacks=[cb])`` after ``fit`` adds ``test_*``
values to the same run and its last record.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Literal, Mapping, Optional

import keras

from . import _keras_model as fw
from ._session import Session
from ._support import (
    INIT_KEYWORDS,
    adapter_options,
    catch_and_warn,
    check_function,
    check_positive_int,
    end_run,
    log_images,
    repeated_call,
    warn_once,
)

BATCH_PREFIX = "batch_"
"""Per-batch values (running means within the epoch) are logged as ``batch_loss``, ... so that
the per-epoch series ``loss``, ``accuracy`` stay one value per epoch."""

ImagesFn = Callable[[Any, int], Optional[Mapping[str, Any]]]


class TrackerCallback(keras.callbacks.Callback):
    """Record a Keras ``fit`` (and a following ``evaluate``) as one epochline run.

    ``path``, ``name``, ``alias``, ``tags``, ``params``, ``store``, ``emit``, ``run_id``,
    ``accuracy_scale``, ``scales``, ``field_map``, ``ignore_params`` and ``flush_interval`` go to
    :func:`epochline.init` (checked now). ``run=``: record into a run you started (you finish it;
    every ``fit`` continues its epoch numbering). ``images=fn`` is called as ``fn(model, epoch)``
    after each epoch (1-indexed) and returns ``{key: image}`` (or None). ``log_every_n_batches=N``
    also logs the batch logs every N optimizer steps (Keras then calls the callback synchronously
    on every batch, so it is off by default). ``checkpoint=``: the ``ModelCheckpoint`` also passed
    to ``fit`` (or its file path); its newest file is stored when ``fit`` ends. ``callback.run``
    is the run, for anything else (started on first use).
    """

    def __init__(
        self,
        path: str = "default",
        *,
        images: Optional[ImagesFn] = None,
        log_every_n_batches: Optional[int] = None,
        checkpoint: Any = None,
        run: Any = None,
        **init_kwargs: Any,
    ) -> None:
        super().__init__()
        check_positive_int("log_every_n_batches", log_every_n_batches)
        check_function("images", images, "fn(model, epoch) -> {key: image}")
        options = adapter_options(
            "TrackerCallback", {"path": path, **init_kwargs}, run=run, allowed=INIT_KEYWORDS
        )
        self._run_id = options.pop("run_id", None)  # the first run's; a later fit starts a new run
        self._session = Session("keras", options, run)
        self._images, self._every, self._checkpoint = images, log_every_n_batches, checkpoint
        self._fitting = False
        self._offset = 0  # a later fit in the same run continues the epoch numbering
        self._total_epochs: Optional[int] = None
        self._candidates: Dict[str, None] = {}  # the files the checkpoint callback wrote, in order
        self._scope: Any = None
        if log_every_n_batches:
            # Only defined when asked for: a batch hook turns off Keras' async batch dispatch.
            self.on_train_batch_end = self._on_train_batch_end

    # -- the run -------------------------------------------------------------------------------
    @property
    def run(self) -> Any:
        """The current run (started on first use); a :class:`epochline.NoOpRun` when tracking is off."""
        return self._session.run if self._session.run is not None else self._start()

    def _start(self, reopen: bool = False) -> Any:
        """A new run, or (``reopen``) the run to evaluate into: the last one re-opened, or a new one."""
        session = self._session
        run = (
            session.current(total_epochs=self._total_epochs) if reopen else session.start(run_id=self._run_id)
        )
        self._run_id = None
        return run

    def finish(self, status: str = "completed", reason: Optional[str] = None) -> None:
        """End the run now (for code that manages the run itself); idempotent."""
        end_run(self._session.run, status=status, reason=reason)

    def __enter__(self) -> "TrackerCallback":
        """``with TrackerCallback(...) as cb: model.fit(..., callbacks=[cb])``: the block is the
        run (every ``fit`` inside continues the epoch numbering). It ends when the block does,
        after any ``evaluate``: ``completed``; ``failed``/``interrupted`` with the exception in
        flight (in-process); ``failed`` if a ``fit`` inside did not reach its end."""
        self._scope = self._session.scope(self.finish)
        self._scope.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> Literal[False]:
        self._fitting = False
        scope, self._scope = self._scope, None
        scope.__exit__(exc_type, exc, tb)
        return False

    # -- fit -----------------------------------------------------------------------------------
    @catch_and_warn
    def on_train_begin(self, logs: Optional[Mapping[str, Any]] = None) -> None:
        if repeated_call(self, "on_train_begin", id(logs)):
            return
        run = self._session.run
        if run is None or run.finished:
            run = self._start()
        self._session.begin("fit")
        self._fitting, self._epoch_seen = True, False
        self._total_epochs, self._steps = self.params.get("epochs"), self.params.get("steps")
        self._base = run.step + 1  # this fit's steps follow anything already logged
        self._done = 0  # optimizer steps of this fit's finished epochs
        self._epoch_batches: Optional[int] = None
        self._last_logged = 0
        self._candidates = {}
        self._siblings = fw.sibling_callbacks()
        ignore = ("verbose", "model.name", "model.layer_names")
        run.log_params(fw.fit_params(self, self.model, self.params), ignore=ignore)
        summary = fw.summary_text(self, self.model)
        if summary:
            run.log_text(summary, logger="keras.summary")

    @catch_and_warn
    def on_epoch_begin(self, epoch: int, logs: Optional[Mapping[str, Any]] = None) -> None:
        if repeated_call(self, "on_epoch_begin", epoch):
            return
        self._epoch_batches = None
        if not getattr(self, "_epoch_seen", True):  # this fit's first epoch
            self._epoch_seen = True
            last = self._session.epochs.closed or self._session.run.epochs_done
            # a second fit in the same run without initial_epoch: continue, never overwrite
            self._offset = last - epoch if last and epoch + 1 <= last else 0
            if self._total_epochs is not None:
                self._total_epochs += self._offset

    @catch_and_warn
    def _on_train_batch_end(self, batch: int, logs: Optional[Mapping[str, Any]] = None) -> None:
        self._epoch_batches = batch + 1
        step = self._base + self._done + batch + 1
        if step - self._last_logged >= self._every and logs:
            self._last_logged = step
            self._session.run.log({BATCH_PREFIX + k: v for k, v in logs.items()}, step=step, stage="train")

    @catch_and_warn
    def on_epoch_end(self, epoch: int, logs: Optional[Mapping[str, Any]] = None) -> None:
        run, epochs = self._session.run, self._session.epochs
        if run is None or run.finished or repeated_call(self, "on_epoch_end", epoch, id(logs)):
            return
        self._done += self._epoch_batches or self._steps or 1
        step, number = self._base + self._done, epoch + self._offset + 1
        values = fw.with_learning_rate(logs, self.model)
        run.log(values, step=step, epoch=number)
        epochs.end(run, number, values, self._total_epochs)
        if self._images is not None:
            log_images(self, run, self._images, self.model, number, step=step, caption=f"epoch {number}")
        path = fw.checkpoint_file(self._checkpoint, epoch, logs or {})  # Keras' own epoch number
        if path is not None:
            self._candidates[path] = None

    @catch_and_warn
    def on_train_end(self, logs: Optional[Mapping[str, Any]] = None) -> None:
        self._fitting = False
        run = self._session.run
        if run is None or run.finished or repeated_call(self, "on_train_end", id(logs)):
            return
        newest = self._session.checkpoints.store_newest(run, self._candidates)
        if newest is not None:  # with save_best_only: the best model
            stored = {"best_model_file": newest[0], "best_model_stored": newest[1]}
            run.summary({**stored, **fw.checkpoint_monitor(self._checkpoint)})
        elif self._checkpoint is not None:
            what = getattr(self._checkpoint, "filepath", self._checkpoint)
            warn_once(
                self, "checkpoint", FileNotFoundError(f"no checkpoint file was found to store ({what!r})")
            )
        stops, restored = fw.early_stops(self._siblings, self._offset)
        if restored is not None:  # the final record reports the restored epoch
            run.set_best(epoch=restored)
        if self._session.epochs.closed:
            stops["epochs_trained"] = self._session.epochs.closed
        run.summary(stops)  # (nothing without early stopping or epochs)
        self._session.end(hold_lines=True)  # an evaluate() may follow

    # -- evaluate ------------------------------------------------------------------------------
    @catch_and_warn
    def on_test_begin(self, logs: Optional[Mapping[str, Any]] = None) -> None:
        if self._fitting or repeated_call(self, "on_test_begin", id(logs)):
            return  # fit's validation: its results arrive as val_* in the epoch logs
        self._start(reopen=self._session.run is not None)  # after fit: the same run; alone: its own
        self._session.begin("evaluate")

    @catch_and_warn
    def on_test_end(self, logs: Optional[Mapping[str, Any]] = None) -> None:
        run, last = self._session.run, self._session.epochs.closed
        if self._fitting or run is None or run.finished or repeated_call(self, "on_test_end", id(logs)):
            return
        test = {f"test_{k}": v for k, v in (logs or {}).items()}
        run.log(test, step=max(run.step, 0), epoch=last or None, stage="test")
        run.end_evaluation(test, stage="test")  # the final record's test values
        if last:  # the last epoch's record again, now with test_loss/test_accuracy
            self._session.add_to_last(test, self._total_epochs)
        self._session.end()
