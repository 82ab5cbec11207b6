"""Keras 3 adapter: ``model.fit(x, y, callbacks=[TrackerCallback(path="digits/keras")])``.

It only translates Keras callback calls into run calls; naming, percent scaling, epoch records and
exit handling live in the core. It uses nothing but the public ``keras`` API (``keras.ops`` for the
learning rate), so it works on every Keras backend; the tests run it on torch.

What happens when (one run per ``fit``):

* ``on_train_begin``: the run starts (``default_emit="kogu,progress"``), the parameters are logged
  (``self.params``, the optimizer config, the loss, the layer summary and parameter counts, the
  user's ``params=``) and the run's ``"fit"`` phase begins (``run.phase("fit")``).
* ``on_epoch_end``: the epoch's logs (``loss``, ``accuracy``, ``val_*``, any compiled metric, the
  learning rate) are logged at ``step`` = optimizer steps so far, and the epoch is closed with
  ``run.end_epoch(epoch + 1, logs)`` (Keras epochs are 0-based; its accuracies are fractions).
* ``on_train_end``: the checkpoint (``checkpoint=``) is stored, the phase ends and the
  run finishes ``completed``. Keras does not call it when ``fit`` raises: then the core's chained
  ``sys.excepthook`` (uncaught: ``failed``/``interrupted``), its ``atexit`` (caught and swallowed:
  ``failed``, because the ``fit`` phase is still running) or the callback used as a context manager
  (``with TrackerCallback(...) as cb:``, in-process) ends the run.
* ``model.evaluate(..., callbacks=[cb])`` after ``fit`` adds ``test_*`` metrics to the same run
  (reopening it if ``fit`` already finished it) and closes the last epoch again with them.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Literal, Mapping, Optional

import keras

import epochline

from ._checkpoints import Checkpoints
from ._keras_model import (
    checkpoint_file,
    early_stops,
    fit_params,
    learning_rate,
    sibling_callbacks,
    summary_text,
)
from ._support import (
    INIT_KEYWORDS,
    adapter_options,
    catch_and_warn,
    end_run,
    log_images,
    open_run,
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
    after each epoch (``epoch`` 1-indexed) and returns ``{key: image}`` (or None).
    ``log_every_n_batches=N`` also logs the batch logs every N optimizer steps (this makes Keras
    call the callback synchronously on every batch, so it is off by default). ``checkpoint=`` is
    the ``keras.callbacks.ModelCheckpoint`` also passed to ``fit`` (or its file path): at the end
    of ``fit`` the newest file it wrote is stored as an artifact. Use ``callback.run`` for anything
    else (it starts the run if ``fit`` has not).
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
        if log_every_n_batches is not None and (
            type(log_every_n_batches) is not int or log_every_n_batches < 1
        ):
            raise ValueError(f"log_every_n_batches must be a positive int, got {log_every_n_batches!r}")
        if images is not None and not callable(images):
            raise TypeError("images= takes a function fn(model, epoch) -> {key: image}")
        self._init = adapter_options(
            "TrackerCallback", {"path": path, **init_kwargs}, run=run, allowed=INIT_KEYWORDS
        )
        self._user_params = self._init.pop("params", None)
        self._run_id = self._init.pop("run_id", None)
        self._given = run
        self._images = images
        self._every = log_every_n_batches
        self._checkpoint = checkpoint
        self._run: Any = run
        self._phase: Any = None  # the running "fit"/"evaluate" phase of the run
        self._scoped = False  # inside `with callback:` the with block ends the run
        self._fitting = False
        self._last_epoch: Optional[int] = None  # 1-indexed
        self._offset = 0  # a later fit in the same run continues the epoch numbering
        self._last_logs: Dict[str, Any] = {}
        self._total_epochs: Optional[int] = None
        self._candidates: Dict[str, None] = {}  # the files the checkpoint callback wrote, in order
        self._checkpoints = Checkpoints()
        if log_every_n_batches:
            # Only defined when asked for: a batch hook turns off Keras' async batch dispatch.
            self.on_train_batch_end = self._on_train_batch_end

    # -- the run -------------------------------------------------------------------------------
    @property
    def run(self) -> Any:
        """The current run (started on first use); a :class:`epochline.NoOpRun` when tracking is off."""
        if self._run is None:
            self._start()
        return self._run

    def _start(self, resume: bool = False) -> Any:
        """A new run, or (``resume``) the finished one reopened under the same id."""
        if self._given is not None:
            return self._given
        if resume:
            self._run = open_run("keras", **self._init, reopen=self._run.id, total_epochs=self._total_epochs)
            return self._run
        self._run = open_run("keras", **self._init, params=self._user_params, run_id=self._run_id)
        self._run_id = None  # a later fit with this callback starts a new run
        self._last_epoch, self._last_logs, self._offset, self._total_epochs = None, {}, 0, None
        self._checkpoints = Checkpoints()
        return self._run

    def finish(self, status: str = "completed", reason: Optional[str] = None) -> None:
        """End the run now (for code that manages the run itself); idempotent."""
        end_run(self._run, status=status, reason=reason)

    def __enter__(self) -> "TrackerCallback":
        """``with TrackerCallback(...) as cb: model.fit(..., callbacks=[cb])``: the block is the
        run. It ends when the block does: ``completed``, or ``failed``/``interrupted`` with the
        exception in flight (in-process, no excepthook needed), after any ``evaluate``. Every
        ``fit`` inside the block continues the epoch numbering."""
        self._scoped = True
        return self

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> Literal[False]:
        self._scoped = False
        self._fitting = False
        if self._given is None:
            end_run(self._run, exc)
        return False

    def _end_stage(self, run: Any, **how: Any) -> None:
        """The fit or evaluate ended: its phase ends, and the run unless a ``with`` block or the
        user owns it."""
        if self._phase is not None:
            self._phase.end()
        if not self._scoped and self._given is None:
            end_run(run, **how)

    # -- fit -----------------------------------------------------------------------------------
    @catch_and_warn
    def on_train_begin(self, logs: Optional[Mapping[str, Any]] = None) -> None:
        if repeated_call(self, "on_train_begin", id(logs)):
            return
        if self._run is None or self._run.finished:
            self._start()
        run = self._run
        if self._given is None:
            self._phase = run.phase("fit")
        self._fitting = True
        self._epoch_seen = False
        self._total_epochs = self.params.get("epochs")
        self._steps = self.params.get("steps")
        self._base = run.step + 1  # this fit's steps follow anything already logged
        self._done = 0  # optimizer steps of this fit's finished epochs
        self._epoch_batches: Optional[int] = None
        self._last_logged = 0
        self._candidates = {}
        self._siblings = sibling_callbacks()
        run.log_params(
            fit_params(self, self.model, self.params), ignore=("verbose", "model.name", "model.layer_names")
        )
        summary = summary_text(self, self.model)
        if summary:
            run.log_text(summary, logger="keras.summary")

    @catch_and_warn
    def on_epoch_begin(self, epoch: int, logs: Optional[Mapping[str, Any]] = None) -> None:
        if repeated_call(self, "on_epoch_begin", epoch):
            return
        self._epoch_batches = None
        if not getattr(self, "_epoch_seen", True):  # this fit's first epoch
            self._epoch_seen = True
            last = self._last_epoch or self._run.epochs_done if isinstance(self._run, epochline.Run) else 0
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
            self._run.log({BATCH_PREFIX + k: v for k, v in logs.items()}, step=step, stage="train")

    @catch_and_warn
    def on_epoch_end(self, epoch: int, logs: Optional[Mapping[str, Any]] = None) -> None:
        run = self._run
        if run is None or run.finished or repeated_call(self, "on_epoch_end", epoch, id(logs)):
            return
        epoch += self._offset
        self._done += self._epoch_batches or self._steps or 1
        step = self._base + self._done
        values = dict(logs or {})
        if "learning_rate" not in values and "lr" not in values:
            lr = learning_rate(self.model)
            if lr is not None:
                values["learning_rate"] = lr
        run.log(values, step=step, epoch=epoch + 1)
        run.end_epoch(epoch + 1, values, total_epochs=self._total_epochs)
        self._last_epoch, self._last_logs = epoch + 1, values
        if self._images is not None:
            log_images(
                self, run, self._images, self.model, epoch + 1, step=step, caption=f"epoch {epoch + 1}"
            )
        path = checkpoint_file(self._checkpoint, epoch, logs or {})
        if path is not None:
            self._candidates[path] = None

    @catch_and_warn
    def on_train_end(self, logs: Optional[Mapping[str, Any]] = None) -> None:
        self._fitting = False
        run = self._run
        if run is None or run.finished or repeated_call(self, "on_train_end", id(logs)):
            return
        self._store_checkpoint(run)
        for monitor, stopped, restored in early_stops(self._siblings):
            info: Dict[str, Any] = {
                "early_stopping.stopped_epoch": stopped + 1 + self._offset,
                "early_stopping.monitor": monitor,
            }
            if restored is not None:  # the final record reports the restored epoch
                info["early_stopping.restored_epoch"] = restored + 1 + self._offset
                run.set_best(epoch=restored + 1 + self._offset)
            run.summary(info)
        if self._last_epoch is not None:
            run.summary({"epochs_trained": self._last_epoch})
        self._end_stage(run, hold_lines=True)  # an evaluate() may follow

    def _store_checkpoint(self, run: Any) -> None:
        """The newest file the checkpoint callback wrote (with ``save_best_only``: the best model)."""
        files = [p for p in self._candidates if os.path.exists(p)]
        if not files:
            if self._checkpoint is not None:
                what = getattr(self._checkpoint, "filepath", self._checkpoint)
                warn_once(
                    self,
                    "checkpoint",
                    FileNotFoundError(f"no checkpoint file was found to store (checkpoint={what!r})"),
                )
            return
        newest = os.path.abspath(max(files, key=os.path.getmtime))
        info: Dict[str, Any] = {
            "best_model_file": newest,
            "best_model_stored": self._checkpoints.store(run, newest),
        }
        monitor, best = getattr(self._checkpoint, "monitor", None), getattr(self._checkpoint, "best", None)
        if monitor is not None and getattr(self._checkpoint, "save_best_only", False):
            info.update(best_model_monitor=monitor, best_model_value=best)
        run.summary(info)

    # -- evaluate ------------------------------------------------------------------------------
    @catch_and_warn
    def on_test_begin(self, logs: Optional[Mapping[str, Any]] = None) -> None:
        if self._fitting or repeated_call(self, "on_test_begin", id(logs)):
            return  # fit's validation: its results arrive as val_* in the epoch logs
        if self._run is None:
            self._start()  # evaluate() on its own: a run of its own
        elif self._run.finished:
            self._start(resume=True)  # evaluate() after fit(): the same run, reopened
        if self._given is None:
            self._phase = self._run.phase("evaluate")

    @catch_and_warn
    def on_test_end(self, logs: Optional[Mapping[str, Any]] = None) -> None:
        run = self._run
        if self._fitting or run is None or run.finished or repeated_call(self, "on_test_end", id(logs)):
            return
        test = {f"test_{k}": v for k, v in (logs or {}).items()}
        run.log(test, step=max(run.step, 0), epoch=self._last_epoch, stage="test")
        run.end_evaluation(test, stage="test")  # the final record's test values
        if self._last_epoch is not None:
            # The last epoch's record again, now with test_loss/test_accuracy.
            self._last_logs = {**self._last_logs, **test}
            run.end_epoch(self._last_epoch, self._last_logs, total_epochs=self._total_epochs)
        self._end_stage(run)
