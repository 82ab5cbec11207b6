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
import sys
from types import FrameType
from typing import Any, Callable, Dict, Iterable, List, Literal, Mapping, Optional

import keras

import epochline

from ._support import (
    DEFAULT_EMIT,
    INIT_KEYWORDS,
    adapter_options,
    catch_and_warn,
    end_run,
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
        self._candidates: Dict[str, None] = {}
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
            self._run = open_run(
                **{**self._init, "tags": ()},
                run_id=self._run.id,
                framework="keras",
                default_emit=DEFAULT_EMIT,
                total_epochs=self._total_epochs,
            )
        else:
            self._run = open_run(
                **self._init,
                params=self._user_params,
                run_id=self._run_id,
                framework="keras",
                default_emit=DEFAULT_EMIT,
            )
            self._run_id = None  # a later fit with this callback starts a new run
            self._last_epoch, self._last_logs, self._offset = None, {}, 0
            self._total_epochs = None
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
        self._siblings = _sibling_callbacks()
        run.log_params(self._fit_params(), ignore=("verbose", "model.name", "model.layer_names"))
        summary = self._summary_text()
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

    def _on_train_batch_end(self, batch: int, logs: Optional[Mapping[str, Any]] = None) -> None:
        try:
            self._epoch_batches = batch + 1
            step = self._base + self._done + batch + 1
            if step - self._last_logged >= self._every and logs:
                self._last_logged = step
                self._run.log({BATCH_PREFIX + k: v for k, v in logs.items()}, step=step, stage="train")
        except Exception as exc:
            warn_once(self, "on_train_batch_end", exc)

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
            lr = self._learning_rate()
            if lr is not None:
                values["learning_rate"] = lr
        run.log(values, step=step, epoch=epoch + 1)
        run.end_epoch(epoch + 1, values, total_epochs=self._total_epochs)
        self._last_epoch, self._last_logs = epoch + 1, values
        if self._images is not None:
            self._log_images(epoch + 1, step)
        self._note_checkpoint(epoch, logs or {})

    @catch_and_warn
    def on_train_end(self, logs: Optional[Mapping[str, Any]] = None) -> None:
        self._fitting = False
        run = self._run
        if run is None or run.finished or repeated_call(self, "on_train_end", id(logs)):
            return
        self._store_checkpoint()
        self._early_stopping(run)
        if self._last_epoch is not None:
            run.summary({"epochs_trained": self._last_epoch})
        if self._phase is not None:
            self._phase.end()
            self._phase = None
        if not self._scoped and self._given is None:
            end_run(run, hold_lines=True)  # an evaluate() may follow

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
        if self._fitting or self._run is None or self._run.finished:
            return
        if repeated_call(self, "on_test_end", id(logs)):
            return
        run = self._run
        test = {f"test_{k}": v for k, v in (logs or {}).items()}
        run.log(test, step=max(run.step, 0), epoch=self._last_epoch, stage="test")
        run.end_evaluation(test, stage="test")  # the final record's test values
        if self._last_epoch is not None:
            # The last epoch's record again, now with test_loss/test_accuracy.
            self._last_logs = {**self._last_logs, **test}
            run.end_epoch(self._last_epoch, self._last_logs, total_epochs=self._total_epochs)
        if self._phase is not None:
            self._phase.end()
            self._phase = None
        if not self._scoped and self._given is None:
            end_run(run)

    def _early_stopping(self, run: Any) -> None:
        """EarlyStopping(restore_best_weights=True) restored an earlier epoch: record it and the
        epoch where training stopped (the model is the best epoch's, not the last's)."""
        for callback in self._siblings:
            if not isinstance(callback, keras.callbacks.EarlyStopping):
                continue
            stopped = getattr(callback, "stopped_epoch", 0)
            best = getattr(callback, "best_epoch", None)
            if not stopped or best is None:
                continue
            info: Dict[str, Any] = {
                "early_stopping.stopped_epoch": stopped + 1 + self._offset,
                "early_stopping.monitor": callback.monitor,
            }
            if getattr(callback, "restore_best_weights", False):
                info["early_stopping.restored_epoch"] = best + 1 + self._offset
                run.set_best(epoch=best + 1 + self._offset)  # the final record reports it
            run.summary(info)

    # -- helpers -------------------------------------------------------------------------------
    def _fit_params(self) -> Dict[str, Any]:
        model = self.model
        out: Dict[str, Any] = {k: self.params.get(k) for k in ("epochs", "steps", "verbose")}
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None:
            config = self._safely("optimizer config", optimizer.get_config) or {}
            out["optimizer"] = {"class": type(optimizer).__name__, **config}
        loss = getattr(model, "loss", None)
        if loss is not None:
            out["loss"] = (
                loss
                if isinstance(loss, str)
                else getattr(loss, "name", getattr(loss, "__name__", type(loss).__name__))
            )
        layers = self._layers()
        out["model"] = {
            "class": type(model).__name__,
            "name": model.name,
            "params": self._safely("parameter count", model.count_params),
            "trainable_params": _count(model.trainable_weights),
            "layers": [f"{cls}: {n}" for _, cls, n, _ in layers],
            "layer_names": [name for name, _, _, _ in layers],
        }
        return out

    def _layers(self) -> List[tuple]:
        """(name, class, parameter count, output shape) of each top-level layer."""
        rows = []
        for layer in getattr(self.model, "layers", []):
            try:
                count = layer.count_params()
            except Exception:  # an unbuilt layer
                count = _count(layer.weights)
            try:
                shape = str(tuple(layer.output.shape))
            except Exception:
                shape = "?"
            rows.append((layer.name, type(layer).__name__, count, shape))
        return rows

    def _summary_text(self) -> str:
        rows = self._layers()
        if not rows:
            return ""
        width = max(len(f"{n} ({c})") for n, c, _, _ in rows) + 2
        lines = [
            f'Model "{self.model.name}" ({type(self.model).__name__})',
            f"{'Layer (type)':<{width}}{'Output shape':<22}{'Params':>10}",
        ]
        lines += [f"{f'{n} ({c})':<{width}}{s:<22}{p:>10,}" for n, c, p, s in rows]
        total = self._safely("parameter count", self.model.count_params)
        lines.append(f"Total params: {total:,}" if isinstance(total, int) else "Total params: ?")
        return "\n".join(lines)

    def _learning_rate(self) -> Optional[float]:
        optimizer = getattr(self.model, "optimizer", None)
        lr = getattr(optimizer, "learning_rate", None)
        if lr is None:
            return None
        try:
            return float(keras.ops.convert_to_numpy(lr))
        except Exception:
            return None

    def _log_images(self, epoch: int, step: int) -> None:
        if self._images is None:
            return
        images = self._safely("images function", self._images, self.model, epoch)
        for key, image in (images or {}).items():
            self._run.log_image(str(key), image, step=step, caption=f"epoch {epoch}")

    def _note_checkpoint(self, epoch: int, logs: Mapping[str, Any]) -> None:
        """Remember the file the checkpoint callback writes for this epoch (it may be a template)."""
        template = getattr(self._checkpoint, "filepath", self._checkpoint)
        if template is None:
            return
        template = os.fspath(template)
        try:
            path = template.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError, ValueError):
            path = template
        self._candidates[path] = None

    def _store_checkpoint(self) -> None:
        files = [p for p in self._candidates if os.path.exists(p)]
        if not files:
            if self._checkpoint is not None:
                warn_once(
                    self,
                    "checkpoint",
                    FileNotFoundError(
                        "no checkpoint file was found to store (checkpoint="
                        f"{getattr(self._checkpoint, 'filepath', self._checkpoint)!r})"
                    ),
                )
            return
        newest = os.path.abspath(max(files, key=os.path.getmtime))  # save_best_only: the best model
        stored = self._run.log_artifact(newest)
        info: Dict[str, Any] = {"best_model_file": newest, "best_model_stored": stored}
        monitor, best = getattr(self._checkpoint, "monitor", None), getattr(self._checkpoint, "best", None)
        if monitor is not None and getattr(self._checkpoint, "save_best_only", False):
            info.update(best_model_monitor=monitor, best_model_value=best)
        self._run.summary(info)

    def _safely(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Call user or model code whose failure must not stop the training (warned once)."""
        try:
            return fn(*args)
        except Exception as exc:
            warn_once(self, what, exc)
            return None


def _sibling_callbacks() -> List[Any]:
    """The other callbacks of this ``fit`` (EarlyStopping...): Keras gives a callback no handle on
    them, so they are read from the ``CallbackList`` that is calling us, found on the stack."""
    frame: Optional[FrameType] = sys._getframe(1)
    for _ in range(8):
        if frame is None:
            break
        owner = frame.f_locals.get("self")
        if isinstance(owner, keras.callbacks.CallbackList):
            return list(owner.callbacks)
        frame = frame.f_back
    return []


def _count(weights: Iterable[Any]) -> int:
    total = 0
    for w in weights:
        n = 1
        for d in w.shape:
            n *= int(d)
        total += n
    return total
