"""The per-epoch record: which logged names are which PROGRESS fields, and accuracies in percent.

An adapter (or a user) calls ``run.end_epoch(epoch, values)`` once per completed epoch. This module
turns ``values`` into the record the line emitters print:

* **Names** follow one table (:func:`canonical_field`): the name is lower-cased, ``/ - . space``
  become ``_``, a trailing ``_epoch`` is dropped; a ``train_``/``training_`` prefix (or none) means
  train, ``val_``/``valid_``/``validation_``/``eval_`` means val, ``test_`` means test; ``loss``
  is a loss and ``acc``, ``accuracy``, ``categorical_accuracy``, ``sparse_categorical_accuracy``,
  ``binary_accuracy`` are accuracies. So ``val_acc``, ``eval_accuracy``, ``val/accuracy`` and
  ``val_accuracy_epoch`` all become ``val_accuracy``. ``field_map`` overrides or extends the table.
* **Scale** is declared, never guessed: each accuracy is a fraction (0..1) or in percent by the
  run's ``accuracy_scale`` (default ``"fraction"``, which is what torchmetrics, Keras, scikit-learn
  and transformers' ``compute_metrics`` usually return) or a per-metric ``scales`` entry. Fractions
  are multiplied by 100. A value that contradicts its declared scale (a "fraction" above 1, a
  percent above 100) is kept as declared and warned about once.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Mapping, Optional, Tuple

SCALES = ("fraction", "percent")
ACCURACY_NAMES = frozenset({"acc", "accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
                            "binary_accuracy"})
_STAGE_PREFIXES = (("training_", "train"), ("train_", "train"), ("validation_", "val"),
                   ("valid_", "val"), ("val_", "val"), ("eval_", "val"), ("test_", "test"))
_SEPARATORS = re.compile(r"[/\-. ]+")


def normalise_name(name: str) -> str:
    text = _SEPARATORS.sub("_", name.strip().lower())
    return text[: -len("_epoch")] if text.endswith("_epoch") else text


def canonical_field(name: str, field_map: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The PROGRESS field a logged metric name stands for, or None."""
    if field_map and name in field_map:
        return field_map[name]
    text = normalise_name(name)
    stage = "train"
    for prefix, which in _STAGE_PREFIXES:
        if text.startswith(prefix):
            stage, text = which, text[len(prefix):]
            break
    if text == "loss":
        return f"{stage}_loss"
    if text in ACCURACY_NAMES:
        return f"{stage}_accuracy"
    return None


def is_accuracy(field: str) -> bool:
    return field.endswith("_accuracy")


def check_scale(what: str, scale: Any) -> str:
    """``scale`` if it is ``"fraction"`` or ``"percent"``; a clear error otherwise."""
    if scale not in SCALES:
        raise ValueError(f"{what} must be 'fraction' or 'percent', got {scale!r}")
    return scale


def check_scales(scales: Optional[Mapping[str, str]]) -> Dict[str, str]:
    """A copy of a per-metric ``scales=`` mapping ({metric name: "fraction" | "percent"}), checked."""
    if scales is None:
        return {}
    if not isinstance(scales, Mapping):
        raise TypeError(f"scales= takes a dict such as {{'top1': 'percent'}}, got {type(scales).__name__}")
    return {str(name): check_scale(f"scale of {name!r}", scale) for name, scale in scales.items()}


def check_field_map(field_map: Optional[Mapping[str, str]]) -> Dict[str, str]:
    """A copy of a ``field_map=`` mapping ({logged name: PROGRESS field name}), checked."""
    if field_map is None:
        return {}
    if not isinstance(field_map, Mapping) or not all(
            type(k) is str and type(v) is str and v for k, v in field_map.items()):
        raise TypeError("field_map= takes a dict of metric name -> field name such as "
                        f"{{'acc@1': 'val_accuracy'}}, got {field_map!r}")
    return dict(field_map)


def epoch_record(values: Mapping[str, Any], *, accuracy_scale: str = "fraction",
                 scales: Optional[Mapping[str, str]] = None,
                 field_map: Optional[Mapping[str, str]] = None) -> Tuple[Dict[str, Any], Tuple[str, ...], list]:
    """(record, percent_keys, warnings) for one epoch's values.

    ``record`` holds every numeric value: known ones under their canonical field (accuracies in
    percent), the others under their own name. When two names map to one field the first wins
    and the other keeps its own name, so nothing is silently merged.
    """
    check_scale("accuracy_scale", accuracy_scale)
    record: Dict[str, Any] = {}
    percent = []
    problems = []
    for name, value in values.items():
        if type(value) is bool or not isinstance(value, (int, float)):
            continue
        field = canonical_field(name, field_map)
        if field is None or field in record:
            record.setdefault(name, value)
            continue
        if is_accuracy(field):
            scale = check_scale(f"scale of {name!r}", (scales or {}).get(name, accuracy_scale))
            if value == value:
                if scale == "fraction" and not (0.0 <= value <= 1.0):
                    problems.append(f"{name}={value!r} is declared a fraction but is outside 0..1")
                elif scale == "percent" and not (0.0 <= value <= 100.0):
                    problems.append(f"{name}={value!r} is declared in percent but is outside 0..100")
            value = float(value) * 100.0 if scale == "fraction" else float(value)
            percent.append(field)
        record[field] = value
    return record, tuple(percent), problems
