"""HuggingFace transformers: ``Trainer(..., callbacks=[TrackerCallback(path="nlp/tiny-bert")])``.

What it records (details and the reasons in docs/transformers.md):

* **Params** at train begin: every ``TrainingArguments`` field (``args.to_dict()``, which masks
  tokens), the model config under ``model.*`` and the parameter counts.
* **Metrics**: each ``on_log`` at ``state.global_step`` (names kept as transformers writes them:
  ``loss``, ``learning_rate``, ``grad_norm``, ``epoch``...), each ``on_evaluate`` (``eval_*``) with
  its 1-indexed epoch, each ``on_predict`` (``test_*``).
* **Epoch records**: one per *training epoch* (1-indexed, ``ceil(state.epoch)``, strictly
  increasing), holding the latest ``loss`` as ``train_loss`` and the metrics of the last evaluation
  made in that epoch (``eval_accuracy`` -> ``val_accuracy`` in percent, via epochline.epochs). It is
  closed at the epoch's evaluation (``eval_strategy="epoch"``) or, when no evaluation follows the
  epoch's end (step-based or no evaluation), when the next epoch begins or training ends.
* **Status**: ``on_train_end`` -> completed. Trainer has no failure event: ``run.in_progress`` is
  ``"train"`` meanwhile, so the core's chained ``sys.excepthook`` marks an uncaught exception
  ``failed`` (Ctrl-C: ``interrupted``) and a swallowed one is ``failed`` at exit; ``with
  callback.guard(): trainer.train()`` does it at once, in-process.

Only the world process zero (``state.is_world_process_zero``) creates a run and logs.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from typing import Any, Callable, Dict, Iterable, Iterator, Mapping, Optional, Union

from transformers import TrainerCallback

import epochline
from epochline import NoOpRun, Run

CHECKPOINT_MODES = ("paths", "none", "best", "all")
DEFAULT_EMIT = "kogu,progress"
IGNORED_ARGS = ("output_dir", "logging_dir", "run_name", "overwrite_output_dir", "report_to",
                "disable_tqdm", "logging_steps", "logging_first_step", "logging_strategy",
                "save_steps", "save_strategy", "save_total_limit", "dataloader_num_workers",
                "push_to_hub", "hub_token", "hub_model_id", "hub_strategy", "hub_private_repo",
                "model.transformers_version")
"""Parameters recorded but not counted in the run's fingerprint: they do not change the result."""

ImagesFn = Callable[[Any, Any], Optional[Mapping[str, Any]]]


class TrackerCallback(TrainerCallback):
    """Records a ``Trainer`` run in epochline (see the module docstring and docs/transformers.md).

    ``checkpoints``: ``"paths"`` (default) records each checkpoint folder's path (a text line and
    ``summary["checkpoint.last"]``/``["checkpoint.best"]``), copying nothing; ``"all"`` also copies
    every checkpoint into the store; ``"best"`` copies one at train end (the Trainer's best
    checkpoint, else the last one saved); ``"none"`` records nothing.
    ``epoch_loss``: ask the Trainer to log the running loss at each epoch end, so every epoch
    record has a ``train_loss`` even when ``logging_steps`` is longer than an epoch.
    ``finish_on_train_end=False`` keeps the run open after ``train()`` for ``trainer.evaluate()``
    / ``predict()``; end it with :meth:`finish` or a :meth:`guard` block.
    """

    def __init__(self, path: str = "default", *, name: Optional[str] = None,
                 tags: Iterable[str] = (), params: Any = None, store: Any = None,
                 emit: Union[str, Iterable[str], None] = None, images: Optional[ImagesFn] = None,
                 checkpoints: str = "paths", accuracy_scale: str = "fraction",
                 epoch_loss: bool = True, finish_on_train_end: bool = True,
                 run_id: Optional[str] = None, ignore_params: Iterable[str] = IGNORED_ARGS):
        if checkpoints not in CHECKPOINT_MODES:
            raise ValueError(f"checkpoints must be one of {', '.join(CHECKPOINT_MODES)}; got {checkpoints!r}")
        if images is not None and not callable(images):
            raise TypeError("images must be a function (state, model) -> {key: image}")
        self._init_kwargs = dict(path=path, name=name, tags=tuple(tags) if not isinstance(tags, str)
                                 else (tags,), store=store, emit=emit, run_id=run_id,
                                 accuracy_scale=accuracy_scale)
        self._user_params = params
        self._ignore = tuple(ignore_params)
        self.images = images
        self.checkpoints = checkpoints
        self.epoch_loss = epoch_loss
        self.finish_on_train_end = finish_on_train_end
        self._run: Union[Run, NoOpRun, None] = None
        self._phase: Any = None  # the run's "train" phase while train() runs
        self._reset()

    def _reset(self) -> None:
        self._params_done = False
        self._last_epoch = 0          # last epoch record emitted (1-indexed)
        self._closing: Optional[int] = None  # epoch that ended and awaits its evaluation
        self._pending: Dict[str, Any] = {}   # metrics of the last evaluation in this epoch
        self._train_loss: Optional[float] = None
        self._last_checkpoint: Optional[str] = None
        self._warned: set = set()

    # -- the run -----------------------------------------------------------------------------------
    @property
    def run(self) -> Union[Run, NoOpRun]:
        """The run (created on first use; a NoOpRun on a non-zero rank or when tracking is off)."""
        if self._run is None:
            self._run = self._start(all_ranks=False)
        return self._run

    def _start(self, all_ranks: bool) -> Union[Run, NoOpRun]:
        return epochline.init(**self._init_kwargs, framework="transformers",
                              default_emit=DEFAULT_EMIT, all_ranks=all_ranks,
                              ignore_params=self._ignore)

    def _live(self, state: Any, create: bool = False, args: Any = None, model: Any = None) -> Optional[Run]:
        """The run to log to on this process, or None (other rank, tracking off, run finished)."""
        if not getattr(state, "is_world_process_zero", True):
            return None
        if create and (self._run is None or self._run.finished):
            if self._run is not None:  # a second train() with the same callback: a new run
                self._reset()
            self._run = self._start(all_ranks=True)
        run = self._run
        if run is None or isinstance(run, NoOpRun):
            return None
        if run.finished:
            self._warn_once("finished", f"epochline: run {run.id} already finished ({run.status}); "
                            "this event is not recorded. Pass finish_on_train_end=False to record "
                            "trainer.evaluate()/predict() after train().")
            return None
        if not self._params_done and args is not None:
            self._params_done = True
            self._log_params(run, args, model, state)
        return run

    def finish(self, status: str = "completed", reason: Optional[str] = None) -> None:
        """Close the last epoch record and end the run (idempotent; nothing if there is none)."""
        run = self._run
        if run is None or isinstance(run, NoOpRun) or run.finished:
            return
        if status == "completed" and self._closing is not None:
            self._close_epoch(run)
        run.finish(status, reason)  # also ends the "train" phase

    @contextlib.contextmanager
    def guard(self) -> Iterator["TrackerCallback"]:
        """``with cb.guard(): trainer.train()``: an exception (or Ctrl-C) ends the run failed
        (interrupted) at once, with its reason, and is re-raised. A block that ends normally
        finishes a still-open run: completed, or failed if ``train()`` did not reach its end."""
        try:
            yield self
        except BaseException as exc:
            self.finish(*epochline.exit_status(exc))
            raise
        run = self._run
        if run is not None and not isinstance(run, NoOpRun) and not run.finished and run.in_progress:
            self.finish("failed", f"{run.in_progress} did not reach its end (the exception was "
                        "caught inside the guard block)")
        else:
            self.finish("completed")

    # -- Trainer events ----------------------------------------------------------------------------
    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        run = self._live(state, create=True, args=args, model=model)
        if run is None:
            return
        self._phase = run.phase("train")
        self._last_epoch = max(self._last_epoch, int(math.floor((state.epoch or 0) + 1e-9)))
        best = getattr(args, "metric_for_best_model", None)
        if best:
            metric = best if best.startswith("eval_") else f"eval_{best}"
            higher = getattr(args, "greater_is_better", None)
            run.set_primary_metric(metric, "max" if higher or (higher is None and "loss" not in best)
                                   else "min")

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        run = self._live(state)
        if run is not None and self._closing is not None:
            self._close_epoch(run)

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if self.epoch_loss and state.global_step > 0:
            control.should_log = True  # on every rank: logging gathers the loss across processes
        run = self._live(state)
        if run is not None:
            if self._closing is not None:
                self._close_epoch(run)
            self._closing = max(self._last_epoch + 1, _epoch_number(state.epoch) or 1)
        return control

    def on_log(self, args: Any, state: Any, control: Any, logs: Optional[Mapping[str, Any]] = None,
               **kwargs: Any) -> None:
        run = self._live(state)
        if run is None or not logs:
            return
        if any(str(k).startswith("eval_") for k in logs):
            return  # Trainer.evaluate()'s log: recorded by on_evaluate, with its epoch
        if "loss" in logs:
            self._train_loss = logs["loss"]
        run.log(logs, step=state.global_step, stage="train", epoch=self._current_epoch(state))
        if "train_runtime" in logs:  # the final log of train(): totals
            run.summary({k: v for k, v in logs.items() if k != "epoch"})

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Optional[Mapping[str, Any]] = None,
                    model: Any = None, **kwargs: Any) -> None:
        run = self._live(state, create=self._run is None, args=args, model=model)
        if run is None:
            return
        metrics = dict(metrics or {})
        metrics.pop("epoch", None)
        epoch = self._closing if self._closing is not None else self._current_epoch(state)
        run.log(metrics, step=state.global_step, stage="val", epoch=epoch)
        if state.global_step > 0:  # an evaluation before training (eval_on_start) is no epoch's
            self._pending = metrics
            if self._closing is not None:
                self._close_epoch(run)
        if self.images is not None:
            self._log_images(run, state, model)

    def on_predict(self, args: Any, state: Any, control: Any, metrics: Optional[Mapping[str, Any]] = None,
                   model: Any = None, **kwargs: Any) -> None:
        run = self._live(state, create=self._run is None, args=args, model=model)
        if run is not None and metrics:
            run.log(metrics, step=state.global_step, stage="test", epoch=self._current_epoch(state))

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        run = self._live(state)
        if run is None or self.checkpoints == "none":
            return
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        if folder == self._last_checkpoint:  # some versions save twice at the last step (4.46)
            return
        if not os.path.isdir(folder):
            run.log_text(f"checkpoint of step {state.global_step} not found at {folder}",
                         level="WARNING", logger="epochline.transformers")
            return
        self._last_checkpoint = folder
        run.log_text(f"checkpoint saved: {folder}", logger="epochline.transformers")
        summary = {"checkpoint.last": folder, "checkpoint.last_step": state.global_step}
        if state.best_model_checkpoint:
            summary["checkpoint.best"] = state.best_model_checkpoint
        run.summary(summary)
        if self.checkpoints == "all":
            run.log_artifact(folder, name=os.path.basename(folder))

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        run = self._live(state)
        if run is None:
            return
        if self._closing is not None:
            self._close_epoch(run)
        if self.checkpoints == "best":
            best = state.best_model_checkpoint or self._last_checkpoint
            if best and os.path.isdir(best):
                run.summary({"checkpoint.best": best})
                run.log_artifact(best, name="checkpoint-best")
        if self._phase is not None:
            self._phase.end()
        if self.finish_on_train_end:
            run.finish("completed")

    # -- helpers -----------------------------------------------------------------------------------
    def _close_epoch(self, run: Run) -> None:
        epoch, self._closing = self._closing, None
        values = dict(self._pending)
        self._pending = {}
        if self._train_loss is not None:
            values["train_loss"] = self._train_loss
        total = self._total_epochs
        run.end_epoch(epoch, values, total_epochs=max(total, epoch) if total else None)
        self._last_epoch = epoch

    def _current_epoch(self, state: Any) -> Optional[int]:
        """The 1-indexed epoch in progress (the one that ended, between its end and the next)."""
        if self._closing is not None:
            return self._closing
        return _epoch_number(state.epoch)

    def _log_params(self, run: Run, args: Any, model: Any, state: Any) -> None:
        try:
            arguments = args.to_dict()  # enums as values, hub tokens masked
        except Exception:
            arguments = args
        run.log_params(arguments)
        extra: Dict[str, Any] = {}
        config = getattr(model, "config", None)
        if config is not None:
            try:
                extra["model"] = config.to_dict()
            except Exception:
                extra["model"] = {"config": config}
        if model is not None:
            extra.setdefault("model", {})["class"] = type(model).__name__
            try:
                params = list(model.parameters())
                extra["model"]["num_parameters"] = sum(p.numel() for p in params)
                extra["model"]["num_trainable_parameters"] = sum(p.numel() for p in params if p.requires_grad)
            except Exception:
                pass
        total = getattr(state, "num_train_epochs", None) or getattr(args, "num_train_epochs", None)
        self._total_epochs = int(math.ceil(total)) if total else None
        extra["trainer"] = {"max_steps": state.max_steps, "total_epochs": self._total_epochs}
        run.log_params(extra)
        if self._user_params is not None:
            run.log_params(self._user_params)

    _total_epochs: Optional[int] = None

    def _log_images(self, run: Run, state: Any, model: Any) -> None:
        try:
            images = self.images(state, model) or {}
            items = list(images.items())
        except Exception as exc:  # a plotting bug must not stop the training
            self._warn_once(("images", type(exc).__name__),
                            f"epochline: images function raised {type(exc).__name__}: {exc}")
            return
        for key, image in items:
            run.log_image(str(key), image, step=state.global_step)

    def _warn_once(self, key: Any, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, RuntimeWarning, stacklevel=3)


def _epoch_number(epoch: Optional[float]) -> Optional[int]:
    """1-indexed epoch of a transformers float epoch: 0.4 -> 1, 1.0 -> 1 (it just ended), 1.2 -> 2."""
    if epoch is None:
        return None
    return max(1, int(math.ceil(float(epoch) - 1e-9)))
