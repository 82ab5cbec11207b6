"""What the transformers adapter reads from the ``Trainer``'s objects, kept apart so that
``transformers.py`` is the translation of ``TrainerCallback`` events into run calls and nothing else.

Everything here turns ``TrainingArguments``, ``TrainerState`` and the model into plain values (no
run calls): the parameters of a training, the best-model metric, the 1-indexed epoch of
transformers' float epochs, and an identity for a ``logs``/``metrics`` dict (to tell a callback
registered twice from a real second event).
"""

from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Optional, Tuple

from ._support import parameter_count

__all__ = [
    "IGNORED_ARGS",
    "training_arguments",
    "model_params",
    "run_params",
    "total_epochs",
    "primary_metric",
    "epoch_number",
    "content",
]

IGNORED_ARGS = (
    "output_dir",
    "logging_dir",
    "run_name",
    "overwrite_output_dir",
    "report_to",
    "disable_tqdm",
    "logging_steps",
    "logging_first_step",
    "logging_strategy",
    "save_steps",
    "save_strategy",
    "save_total_limit",
    "dataloader_num_workers",
    "push_to_hub",
    "hub_token",
    "hub_model_id",
    "hub_strategy",
    "hub_private_repo",
    "model.transformers_version",
)
"""Parameters recorded but not counted in the run's fingerprint: they do not change the result."""


def training_arguments(args: Any) -> Any:
    """``args.to_dict()``: enums as their values and hub tokens masked (the object itself if that fails)."""
    try:
        return args.to_dict()
    except Exception:
        return args


def model_params(model: Any) -> Dict[str, Any]:
    """The model's config (``config.to_dict()``), class and parameter counts (all, trainable)."""
    out: Dict[str, Any] = {}
    config = getattr(model, "config", None)
    if config is not None:
        try:
            out = dict(config.to_dict())
        except Exception:
            out = {"config": config}
    if model is not None:
        out["class"] = type(model).__name__
        try:
            params = list(model.parameters())
            out["num_parameters"] = parameter_count(params)
            out["num_trainable_parameters"] = parameter_count(p for p in params if p.requires_grad)
        except Exception:
            pass
    return out


def run_params(state: Any, args: Any, model: Any) -> Dict[str, Any]:
    """What a training adds to ``TrainingArguments`` as run parameters: the planned steps and
    epochs (``trainer.*``) and the model (``model.*``: config, class, parameter counts)."""
    params: Dict[str, Any] = {
        "trainer": {"max_steps": state.max_steps, "total_epochs": total_epochs(state, args)}
    }
    if model is not None:
        params["model"] = model_params(model)
    return params


def total_epochs(state: Any, args: Any) -> Optional[int]:
    """The planned number of epochs (a fractional ``num_train_epochs`` counts its last part)."""
    total = getattr(state, "num_train_epochs", None) or getattr(args, "num_train_epochs", None)
    return int(math.ceil(total)) if total else None


def primary_metric(args: Any) -> Optional[Tuple[str, str]]:
    """(metric, "max"/"min") of ``metric_for_best_model`` as the Trainer reads it, or None."""
    best = getattr(args, "metric_for_best_model", None)
    if not best:
        return None
    higher = getattr(args, "greater_is_better", None)
    mode = "max" if higher or (higher is None and "loss" not in best) else "min"
    return (best if best.startswith("eval_") else f"eval_{best}"), mode


def epoch_number(epoch: Optional[float]) -> Optional[int]:
    """1-indexed epoch of a transformers float epoch: 0.4 -> 1, 1.0 -> 1 (it just ended), 1.2 -> 2."""
    if epoch is None:
        return None
    return max(1, int(math.ceil(float(epoch) - 1e-9)))


def content(metrics: Optional[Mapping[str, Any]]) -> Any:
    """A comparable identity of a logs/metrics dict's content."""
    return tuple(sorted((str(k), repr(v)) for k, v in (metrics or {}).items()))
