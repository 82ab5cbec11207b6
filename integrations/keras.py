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
import warnings
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Union

import keras

import epochline
from epochline import exit_status

DEFAULT_EMIT = "kogu,progress"
BATCH_PREFIX = "batch_"
"""Per-batch values (running means within the epoch) are logged as ``batch_loss``, ... so that
the per-epoch series ``loss``, ``accuracy`` stay one value per epoch."""

ImagesFn = Callable[[Any, int], Optional[Mapping[str, Any]]]


class TrackerCallback(keras.callbacks.Callback):
    """Record a Keras ``fit`` (and a following ``evaluate``) as one epochline run.

    ``path``, ``name``, ``tags``, ``params``, ``store``, ``emit``, ``run_id`` and ``**init_kwargs``
    (``alias``, ``ignore_params``, ``accuracy_scale``, ...) go to :func:`epochline.init`.
    ``images=fn`` is called as ``fn(model, epoch)`` after each epoch (``epoch`` 1-indexed) and
    returns ``{key: image}`` (or None). ``log_every_n_batches=N`` also logs the batch logs every
    N optimizer steps (this makes Keras call the callback synchronously on every batch, so it is
    off by default). ``checkpoint=`` is the ``keras.callbacks.ModelCheckpoint`` also passed to
    ``fit`` (or its file path): at the end of ``fit`` the newest file it wrote is stored as an
    artifact. Use ``callback.run`` for anything else (it starts the run if ``fit`` has not).
    """

    def __init__(self, path: str = "default", *, name: Optional[str] = None,
                 tags: Iterable[str] = (), params: Any = None, store: Any = None,
                 emit: Union[str, Iterable[str], None] = None, images: Optional[ImagesFn] = None,
                 log_every_n_batches: Optional[int] = None, checkpoint: Any = None,
                 run_id: Optional[str] = None, **init_kwargs: Any) -> None:
        super().__init__()
        if log_every_n_batches is not None and (type(log_every_n_batches) is not int
                                                or log_every_n_batches < 1):
            raise ValueError(f"log_every_n_batches must be a positive int, got {log_every_n_batches!r}")
        if images is not None and not callable(images):
            raise TypeError("images= takes a function fn(model, epoch) -> {key: image}")
        self._init = dict(path=path, name=name, tags=tuple(tags) if not isinstance(tags, str)
                          else (tags,), store=store, emit=emit, **init_kwargs)
        self._user_params = params
        self._run_id = run_id
        self._images = images
        self._every = log_every_n_batches
        self._checkpoint = checkpoint
        self._run: Any = None
        self._phase: Any = None  # the running "fit"/"evaluate" phase of the run
        self._scoped = False  # inside `with callback:` the with block ends the run
        self._fitting = False
        self._last_epoch: Optional[int] = None  # 1-indexed
        self._last_logs: Dict[str, Any] = {}
        self._last_record: Dict[str, Any] = {}
        self._total_epochs: Optional[int] = None
        self._candidates: Dict[str, None] = {}
        self._warned: set = set()
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
        if resume:
            self._run = epochline.init(**{**self._init, "tags": ()}, run_id=self._run.id,
                                       framework="keras", default_emit=DEFAULT_EMIT,
                                       total_epochs=self._total_epochs)
        else:
            self._run = epochline.init(**self._init, params=self._user_params, run_id=self._run_id,
                                       framework="keras", default_emit=DEFAULT_EMIT)
            self._run_id = None  # a later fit with this callback starts a new run
            self._last_epoch, self._last_logs, self._last_record = None, {}, {}
            self._total_epochs = None
        return self._run

    def finish(self, status: str = "completed", reason: Optional[str] = None) -> None:
        """End the run now (for code that manages the run itself); idempotent."""
        if self._run is not None:
            self._run.finish(status, reason)  # also ends a running phase

    def __enter__(self) -> "TrackerCallback":
        """``with TrackerCallback(...) as cb: model.fit(..., callbacks=[cb])``: the block is the
        run. It ends when the block does: ``completed``, or ``failed``/``interrupted`` with the
        exception in flight (in-process, no excepthook needed), after any ``evaluate``."""
        self._scoped = True
        return self

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> bool:
        self._scoped = False
        self._fitting = False
        self.finish(*exit_status(exc))
        return False

    # -- fit -----------------------------------------------------------------------------------
    def on_train_begin(self, logs: Optional[Mapping[str, Any]] = None) -> None:
        if self._run is None or self._run.finished:
            self._start()
        run = self._run
        self._phase = run.phase("fit")
        self._fitting = True
        self._total_epochs = self.params.get("epochs")
        self._steps = self.params.get("steps")
        self._base = run.step + 1  # this fit's steps follow anything already logged
        self._done = 0  # optimizer steps of this fit's finished epochs
        self._epoch_batches: Optional[int] = None
        self._last_logged = 0
        self._candidates = {}
        run.log_params(self._fit_params(), ignore=("verbose", "model.name", "model.layer_names"))
        summary = self._summary_text()
        if summary:
            run.log_text(summary, logger="keras.summary")

    def on_epoch_begin(self, epoch: int, logs: Optional[Mapping[str, Any]] = None) -> None:
        self._epoch_batches = None

    def _on_train_batch_end(self, batch: int, logs: Optional[Mapping[str, Any]] = None) -> None:
        self._epoch_batches = batch + 1
        step = self._base + self._done + batch + 1
        if step - self._last_logged >= self._every and logs:
            self._last_logged = step
            self._run.log({BATCH_PREFIX + k: v for k, v in logs.items()}, step=step,
                          stage="train")

    def on_epoch_end(self, epoch: int, logs: Optional[Mapping[str, Any]] = None) -> None:
        run = self._run
        if run is None or run.finished:  # fit not started through us, or finished by the user
            return
        self._done += self._epoch_batches or self._steps or 1
        step = self._base + self._done
        values = dict(logs or {})
        if "learning_rate" not in values and "lr" not in values:
            lr = self._learning_rate()
            if lr is not None:
                values["learning_rate"] = lr
        run.log(values, step=step, epoch=epoch + 1)
        self._last_record = run.end_epoch(epoch + 1, values, total_epochs=self._total_epochs) or {}
        self._last_epoch, self._last_logs = epoch + 1, values
        if self._images is not None:
            self._log_images(epoch + 1, step)
        self._note_checkpoint(epoch, logs or {})

    def on_train_end(self, logs: Optional[Mapping[str, Any]] = None) -> None:
        self._fitting = False
        run = self._run
        if run is None or run.finished:
            return
        self._store_checkpoint()
        if self._last_epoch is not None:  # final results = the last epoch's record (percent)
            run.summary({**self._last_record, "epochs_trained": self._last_epoch})
        if self._phase is not None:
            self._phase.end()
        if not self._scoped:
            run.finish("completed")

    # -- evaluate ------------------------------------------------------------------------------
    def on_test_begin(self, logs: Optional[Mapping[str, Any]] = None) -> None:
        if self._fitting:  # fit's validation: its results arrive as val_* in the epoch logs
            return
        if self._run is None:
            self._start()  # evaluate() on its own: a run of its own
        elif self._run.finished:
            self._start(resume=True)  # evaluate() after fit(): the same run, reopened
        self._phase = self._run.phase("evaluate")

    def on_test_end(self, logs: Optional[Mapping[str, Any]] = None) -> None:
        if self._fitting or self._run is None or self._run.finished:
            return
        run = self._run
        test = {f"test_{k}": v for k, v in (logs or {}).items()}
        run.log(test, step=max(run.step, 0), epoch=self._last_epoch, stage="test")
        if self._last_epoch is not None:
            # The last epoch's record (and PROGRESS line) again, now with test_loss/test_accuracy.
            self._last_logs = {**self._last_logs, **test}
            record = run.end_epoch(self._last_epoch, self._last_logs, total_epochs=self._total_epochs)
        else:
            record = run.epoch_record(test)
        run.summary(record)
        if self._phase is not None:
            self._phase.end()
        if not self._scoped:
            run.finish("completed")

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
            out["loss"] = loss if isinstance(loss, str) else getattr(
                loss, "name", getattr(loss, "__name__", type(loss).__name__))
        layers = self._layers()
        out["model"] = {
            "class": type(model).__name__, "name": model.name,
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
        lines = [f'Model "{self.model.name}" ({type(self.model).__name__})',
                 f"{'Layer (type)':<{width}}{'Output shape':<22}{'Params':>10}"]
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
                self._warn("checkpoint", "epochline: no checkpoint file was found to store "
                           f"(checkpoint={getattr(self._checkpoint, 'filepath', self._checkpoint)!r})")
            return
        newest = max(files, key=os.path.getmtime)  # with save_best_only: the best model
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
            self._warn(what, f"epochline: {what} failed ({type(exc).__name__}: {exc}); skipped")
            return None

    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, RuntimeWarning, stacklevel=3)


def _count(weights: Iterable[Any]) -> int:
    total = 0
    for w in weights:
        n = 1
        for d in w.shape:
            n *= int(d)
        total += n
    return total
