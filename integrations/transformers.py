"""HuggingFace transformers: ``Trainer(..., callbacks=[TrackerCallback(path="nlp/tiny-bert")])``.

It only translates Trainer events into run calls (the rules and their reasons: docs/transformers.md).
At train begin the ``TrainingArguments`` (``args.to_dict()``, tokens masked), the model config and
parameter counts become params; each ``on_log`` is logged at ``state.global_step``, each
``on_evaluate``/``on_predict`` with its 1-indexed epoch. One record per training epoch holds the
latest ``loss`` as ``train_loss`` and the epoch's last evaluation. ``evaluate()``/``predict()``
after ``train()`` add to the last record, re-opening the run by id. ``on_train_end`` completes the
run; the Trainer has no failure event, so the run's ``"train"`` phase makes an exception ``failed``
(at exit, or at once inside ``with callback.guard():``). Only world process zero logs.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Iterator, Mapping, Optional

from transformers import TrainerCallback

import epochline

from . import _transformers_trainer as fw
from ._session import Session
from ._support import (
    INIT_KEYWORDS,
    adapter_options,
    catch_and_warn,
    check_choice,
    check_flag,
    check_function,
    end_run,
    huggingface_model,
    log_images,
    repeated_call,
)

CHECKPOINT_MODES = ("paths", "none", "best", "all")

ImagesFn = Callable[[Any, Any], Optional[Mapping[str, Any]]]


class TrackerCallback(TrainerCallback):
    """Records a ``Trainer`` run in epochline (see the module docstring and docs/transformers.md).

    ``path``, ``name``, ``alias``, ``tags``, ``params``, ``store``, ``emit``, ``run_id``,
    ``accuracy_scale``, ``scales``, ``field_map``, ``ignore_params`` and ``flush_interval`` go to
    :func:`epochline.init` (checked now). ``run=``: record into a run you started (you finish it).
    ``checkpoints``: ``"paths"`` (default) records each checkpoint folder's absolute path, copying
    nothing; ``"all"`` also copies every checkpoint into the store; ``"best"`` copies one at train
    end; ``"none"`` records nothing. ``epoch_loss``: ask the Trainer to log the running loss at
    each epoch end, so every record has a ``train_loss``. ``finish_on_train_end=False`` keeps the
    run open after ``train()``; end it with :meth:`finish` or a :meth:`guard` block.
    """

    def __init__(
        self,
        path: str = "default",
        *,
        images: Optional[ImagesFn] = None,
        checkpoints: str = "paths",
        epoch_loss: bool = True,
        finish_on_train_end: bool = True,
        run: Any = None,
        **init_kwargs: Any,
    ):
        self.checkpoints = check_choice("checkpoints", checkpoints, CHECKPOINT_MODES)
        self.images = check_function("images", images, "(state, model) -> {key: image}")
        self.epoch_loss = check_flag("epoch_loss", epoch_loss)
        self.finish_on_train_end = check_flag("finish_on_train_end", finish_on_train_end)
        if run is None:
            init_kwargs.setdefault("ignore_params", fw.IGNORED_ARGS)
        options = adapter_options(
            "TrackerCallback", {"path": path, **init_kwargs}, run=run, allowed=INIT_KEYWORDS
        )
        self._user_params = options.pop("params", None)  # logged after the Trainer's own
        self._session = Session("transformers", options, run)
        self._reset()

    def _reset(self) -> None:
        self._params_done = False
        self._closing: Optional[int] = None  # epoch that ended and awaits its evaluation
        self._train_loss: Optional[float] = None
        self._total_epochs: Optional[int] = None

    # -- the run -----------------------------------------------------------------------------------
    @property
    def run(self) -> Any:
        """The run (created on first use; a NoOpRun on a non-zero rank or when tracking is off)."""
        session = self._session
        return session.run if session.run is not None else session.start(all_ranks=False)

    def _live(self, state: Any, create: bool = False, args: Any = None, model: Any = None) -> Any:
        """The run to log to on this process, or None (other rank, tracking off)."""
        if not getattr(state, "is_world_process_zero", True):
            return None
        session = self._session
        run = session.run
        if create and session.owned and (run is None or run.finished or run.in_progress == "train"):
            if run is not None and not run.finished:  # the last train() never reached its end
                reason = "train did not reach its end (an exception was raised and caught by the caller)"
                end_run(run, status="failed", reason=reason)  # and this train() is a new run
            self._reset()
            session.start(all_ranks=True)
        if not isinstance(session.run, epochline.Run) or (session.run.finished and not session.owned):
            return None
        run = session.current(all_ranks=True)  # a finished run re-opened (a later stage)
        if not self._params_done and args is not None:
            self._params_done = True
            self._log_params(run, args, model, state)
        return run

    def finish(self, status: str = "completed", reason: Optional[str] = None) -> None:
        """Close the last epoch record and end the run (idempotent; nothing if there is none)."""
        run = self._session.live
        if run is None:
            return
        if status == "completed" and self._closing is not None:
            self._close_epoch(run)
        end_run(run, status=status, reason=reason)

    @contextlib.contextmanager
    def guard(self) -> Iterator["TrackerCallback"]:
        """``with cb.guard(): trainer.train()``: an exception (or Ctrl-C) ends the run failed
        (interrupted) at once, with its reason, and is re-raised. A block that ends normally
        finishes a still-open run: completed, or failed if ``train()`` did not reach its end."""
        with self._session.scope(self.finish, scoped=False):
            yield self

    # -- Trainer events ----------------------------------------------------------------------------
    @catch_and_warn
    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if repeated_call(self, "on_train_begin", state, state.global_step):
            return
        run = self._live(state, create=True, args=args, model=model)
        if run is None:
            return
        self._session.begin("train")
        primary = fw.primary_metric(args)
        if primary is not None:
            run.set_primary_metric(*primary)

    @catch_and_warn
    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        run = self._live(state)
        if run is not None and self._closing is not None:
            self._close_epoch(run)

    @catch_and_warn(default=None)
    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if repeated_call(self, "on_epoch_end", state, state.global_step):
            return None
        if self.epoch_loss and state.global_step > 0:
            control.should_log = True  # on every rank: logging gathers the loss across processes
        run = self._live(state)
        if run is not None:
            if self._closing is not None:
                self._close_epoch(run)
            self._closing = max(self._session.epochs.closed + 1, fw.epoch_number(state.epoch) or 1)
        return control

    @catch_and_warn
    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        if not logs or repeated_call(self, "on_log", state, state.global_step, id(logs), fw.content(logs)):
            return
        if any(str(k).startswith(("eval_", "test_")) for k in logs):
            return  # evaluate()/predict()'s log: recorded by on_evaluate/on_predict, with its epoch
        run = self._live(state)
        if run is None:
            return
        if "loss" in logs:
            self._train_loss = logs["loss"]
        run.log(logs, step=state.global_step, stage="train", epoch=self._current_epoch(state))
        if "train_runtime" in logs:  # train()'s closing log: run totals (its loss is the whole run's mean)
            run.summary(
                {("train_loss_mean" if k == "train_loss" else k): v for k, v in logs.items() if k != "epoch"}
            )

    @catch_and_warn
    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any) -> None:
        model = kwargs.get("model")
        run = self._results_run("on_evaluate", args, state, metrics, model)
        if run is None:
            return
        metrics = {k: v for k, v in (metrics or {}).items() if k != "epoch"}
        stage = "test" if all(str(k).startswith("test_") for k in metrics) else "val"
        training, step = run.in_progress == "train", state.global_step
        epoch = self._current_epoch(state) if training or step == 0 else self._session.last_epoch()
        run.log(metrics, step=step, stage=stage, epoch=epoch)
        if training and step > 0:  # not an eval_on_start
            run.end_evaluation(metrics, stage="val", epoch=epoch, step=step)
            self._session.epochs.add(run, epoch, metrics)
            if self._closing is not None:
                self._close_epoch(run)
        elif step > 0:  # after train(): the last epoch's (a test set's with metric_key_prefix="test")
            run.end_evaluation(metrics, stage=stage, epoch=None if stage == "test" else epoch, step=step)
            self._session.add_to_last(metrics)
        if self.images is not None:
            log_images(self, run, self.images, state, model, step=step)
        self._after_train(run)

    @catch_and_warn
    def on_predict(self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any) -> None:
        if not metrics:
            return
        run = self._results_run("on_predict", args, state, metrics, kwargs.get("model"))
        if run is None:
            return
        run.log(metrics, step=state.global_step, stage="test", epoch=self._session.last_epoch())
        run.end_evaluation(metrics, stage="test", step=state.global_step)
        self._session.add_to_last(metrics)
        self._after_train(run)

    def _results_run(self, event: str, args: Any, state: Any, metrics: Any, model: Any) -> Any:
        """The run that an evaluate()/predict() result goes to: None for the same event again (a
        callback registered twice) or another rank; a run of its own without a train() before."""
        if repeated_call(self, event, state, id(metrics), fw.content(metrics)):
            return None
        return self._live(state, create=self._session.run is None, args=args, model=model)

    def _after_train(self, run: Any) -> None:
        """An evaluate()/predict() after a train() that finished the run ends it again."""
        if run.in_progress is None and self.finish_on_train_end and self._session.epochs.closed > 0:
            self._session.end()

    @catch_and_warn
    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        run = self._live(state)
        if run is None or self.checkpoints == "none":
            return
        folder = os.path.abspath(os.path.join(args.output_dir, f"checkpoint-{state.global_step}"))
        copy = self.checkpoints == "all"
        if self._session.checkpoints.saved(run, folder, copy=copy, logger="epochline.transformers"):
            summary = {"checkpoint.last": folder, "checkpoint.last_step": state.global_step}
            if state.best_model_checkpoint:
                summary["checkpoint.best"] = os.path.abspath(state.best_model_checkpoint)
            run.summary(summary)

    @catch_and_warn
    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if repeated_call(self, "on_train_end", state, state.global_step):
            return
        run = self._live(state)
        if run is None:
            return
        if self._closing is not None:
            self._close_epoch(run)
        if self.checkpoints == "best":
            best = state.best_model_checkpoint or self._session.checkpoints.last
            if best and os.path.isdir(best):
                run.summary({"checkpoint.best": os.path.abspath(best)})
                self._session.checkpoints.store(run, best, name="checkpoint-best")
        self._session.end(hold_lines=True, finish=self.finish_on_train_end)  # evaluate() may follow

    # -- helpers -----------------------------------------------------------------------------------
    def _close_epoch(self, run: Any) -> None:
        epoch, self._closing = self._closing or 1, None
        values = {"train_loss": self._train_loss} if self._train_loss is not None else {}
        total = max(self._total_epochs, epoch) if self._total_epochs else None
        self._session.epochs.end(run, epoch, values, total)

    def _current_epoch(self, state: Any) -> Optional[int]:
        """The 1-indexed epoch in progress (the one that ended, between its end and the next)."""
        return self._closing if self._closing is not None else fw.epoch_number(state.epoch)

    def _log_params(self, run: Any, args: Any, model: Any, state: Any) -> None:
        """``TrainingArguments`` as the run's config, the model as a model record and as params."""
        run.log_config(args=fw.training_arguments(args))
        huggingface_model(run, model)  # _name_or_path and config.to_dict() as a model record
        params = fw.run_params(state, args, model)
        self._total_epochs = params["trainer"]["total_epochs"]
        run.log_params(params)
        if self._user_params is not None:
            run.log_params(self._user_params)
