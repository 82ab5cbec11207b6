"""What the Keras adapter reads from Keras objects, kept apart so that ``keras.py`` is the
translation of callback calls into run calls and nothing else.

Everything here reads a model, its optimizer or the other callbacks of a ``fit`` into plain values
(no run calls), through the public ``keras`` API only, so it works on every backend. Model code
that fails (an unbuilt layer, a custom optimizer's ``get_config``) is warned about once, through
:func:`~epochline.integrations._support.safely`, and never stops the training.
"""

from __future__ import annotations

import os
import sys
from types import FrameType
from typing import Any, Dict, List, Mapping, Optional, Tuple

import keras

from ._support import parameter_count, safely

__all__ = [
    "fit_params",
    "summary_text",
    "with_learning_rate",
    "sibling_callbacks",
    "early_stops",
    "checkpoint_file",
    "checkpoint_monitor",
]


def fit_params(owner: Any, model: Any, params: Mapping[str, Any]) -> Dict[str, Any]:
    """The parameters of a ``fit``: ``epochs``/``steps``/``verbose``, the optimizer's config, the
    loss's name and the model's class, parameter counts and layers."""
    out: Dict[str, Any] = {k: params.get(k) for k in ("epochs", "steps", "verbose")}
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        config = safely(owner, "optimizer config", optimizer.get_config) or {}
        out["optimizer"] = {"class": type(optimizer).__name__, **config}
    loss = getattr(model, "loss", None)
    if loss is not None:
        out["loss"] = (
            loss
            if isinstance(loss, str)
            else getattr(loss, "name", getattr(loss, "__name__", type(loss).__name__))
        )
    layers = _layers(model)
    out["model"] = {
        "class": type(model).__name__,
        "name": model.name,
        "params": safely(owner, "parameter count", model.count_params),
        "trainable_params": parameter_count(model.trainable_weights),
        "layers": [f"{cls}: {n}" for _, cls, n, _ in layers],
        "layer_names": [name for name, _, _, _ in layers],
    }
    return out


def _layers(model: Any) -> List[Tuple[str, str, int, str]]:
    """(name, class, parameter count, output shape) of each top-level layer."""
    rows = []
    for layer in getattr(model, "layers", []):
        try:
            count = layer.count_params()
        except Exception:  # an unbuilt layer
            count = parameter_count(layer.weights)
        try:
            shape = str(tuple(layer.output.shape))
        except Exception:
            shape = "?"
        rows.append((layer.name, type(layer).__name__, count, shape))
    return rows


def summary_text(owner: Any, model: Any) -> str:
    """Keras' ``model.summary()`` table as plain text (Keras' own prints rich markup to stdout)."""
    rows = _layers(model)
    if not rows:
        return ""
    width = max(len(f"{n} ({c})") for n, c, _, _ in rows) + 2
    lines = [
        f'Model "{model.name}" ({type(model).__name__})',
        f"{'Layer (type)':<{width}}{'Output shape':<22}{'Params':>10}",
    ]
    lines += [f"{f'{n} ({c})':<{width}}{s:<22}{p:>10,}" for n, c, p, s in rows]
    total = safely(owner, "parameter count", model.count_params)
    lines.append(f"Total params: {total:,}" if isinstance(total, int) else "Total params: ?")
    return "\n".join(lines)


def with_learning_rate(logs: Optional[Mapping[str, Any]], model: Any) -> Dict[str, Any]:
    """An epoch's logs plus the optimizer's current learning rate (a schedule's value at this
    step) as ``learning_rate``, unless the logs carry one (``LearningRateScheduler`` logs ``lr``)."""
    values = dict(logs or {})
    lr = getattr(getattr(model, "optimizer", None), "learning_rate", None)
    if lr is not None and "learning_rate" not in values and "lr" not in values:
        try:
            values["learning_rate"] = float(keras.ops.convert_to_numpy(lr))
        except Exception:
            pass
    return values


def sibling_callbacks() -> List[Any]:
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


def early_stops(callbacks: List[Any], offset: int = 0) -> Tuple[Dict[str, Any], Optional[int]]:
    """The summary of each ``EarlyStopping`` that stopped the fit (stopped epoch, monitor, and the
    restored epoch with ``restore_best_weights=True``: the model is then the best epoch's, not the
    last's), and that restored epoch; epochs 1-indexed, after ``offset`` earlier epochs."""
    info: Dict[str, Any] = {}
    restored_epoch = None
    for callback in callbacks:
        if not isinstance(callback, keras.callbacks.EarlyStopping):
            continue
        stopped, best = getattr(callback, "stopped_epoch", 0), getattr(callback, "best_epoch", None)
        if stopped and best is not None:
            info.update({"early_stopping.stopped_epoch": stopped + 1 + offset})
            info["early_stopping.monitor"] = callback.monitor
            if getattr(callback, "restore_best_weights", False):
                restored_epoch = info["early_stopping.restored_epoch"] = best + 1 + offset
    return info, restored_epoch


def checkpoint_file(checkpoint: Any, epoch: int, logs: Mapping[str, Any]) -> Optional[str]:
    """The file a ``ModelCheckpoint`` (or a path given for one) writes after 0-based ``epoch``:
    its ``filepath`` may be a template (``"w-{epoch:02d}-{val_loss:.2f}.keras"``)."""
    template = getattr(checkpoint, "filepath", checkpoint)
    if template is None:
        return None
    template = os.fspath(template)
    try:
        return str(template.format(epoch=epoch + 1, **logs))
    except (KeyError, IndexError, ValueError):
        return template


def checkpoint_monitor(checkpoint: Any) -> Dict[str, Any]:
    """What a ``save_best_only`` ``ModelCheckpoint`` watches and its best value (else nothing)."""
    monitor, best = getattr(checkpoint, "monitor", None), getattr(checkpoint, "best", None)
    if monitor is not None and getattr(checkpoint, "save_best_only", False):
        return {"best_model_monitor": monitor, "best_model_value": best}
    return {}
