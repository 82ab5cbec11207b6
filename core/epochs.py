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
ACCURACY_NAMES = frozenset(
    {"acc", "accuracy", "categorical_accuracy", "sparse_categorical_accuracy", "binary_accuracy"}
)
_STAGE_PREFIXES = (
    ("training_", "train"),
    ("train_", "train"),
    ("validation_", "val"),
    ("valid_", "val"),
    ("val_", "val"),
    ("eval_", "val"),
    ("test_", "test"),
)
_SEPARATORS = re.compile(r"[/\-. ]+")


def normalise_name(name: str) -> str:
    text = _SEPARATORS.sub("_", name.strip().lower())
    return text[: -len("_epoch")] if text.endswith("_epoch") else text


def canonical_field(
    name: str, field_map: Optional[Mapping[str, str]] = None, stage: Optional[str] = None
) -> Optional[str]:
    """The PROGRESS field a logged metric name stands for, or None.

    ``stage="test"`` (a test/evaluate stage's values, see :meth:`Run.end_evaluation`) makes every
    loss/accuracy a ``test_*`` field whatever its prefix: Keras' ``evaluate`` says ``accuracy``,
    transformers' ``evaluate`` says ``eval_accuracy``, and both are the test results there.
    """
    if field_map and name in field_map:
        return field_map[name]
    text = normalise_name(name)
    which_stage = "train"
    for prefix, which in _STAGE_PREFIXES:
        if text.startswith(prefix):
            which_stage, text = which, text[len(prefix) :]
            break
    stage = "test" if stage == "test" else which_stage
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
        type(k) is str and type(v) is str and v for k, v in field_map.items()
    ):
        raise TypeError(
            "field_map= takes a dict of metric name -> field name such as "
            f"{{'acc@1': 'val_accuracy'}}, got {field_map!r}"
        )
    return dict(field_map)


def epoch_record(
    values: Mapping[str, Any],
    *,
    accuracy_scale: str = "fraction",
    scales: Optional[Mapping[str, str]] = None,
    field_map: Optional[Mapping[str, str]] = None,
    stage: Optional[str] = None,
) -> Tuple[Dict[str, Any], Tuple[str, ...], list]:
    """(record, percent_keys, warnings) for one epoch's values.

    ``record`` holds every numeric value: known ones under their canonical field (accuracies in
    percent), the others under their own name. When two names map to one field the first wins
    and the other keeps its own name, so nothing is silently merged.
    """
    check_scale("accuracy_scale", accuracy_scale)
    record: Dict[str, Any] = {}
    percent: list = []
    problems: list = []
    for name, value in values.items():
        if type(value) is bool or not isinstance(value, (int, float)):
            continue
        field = canonical_field(name, field_map, stage)
        if field is None:
            record.setdefault(name, value)
            continue
        if field in record:  # a second name for a taken field keeps its own name, on the same scale
            if is_accuracy(field) and name not in record:
                record[name] = _percent(name, value, scales, accuracy_scale, problems)
                percent.append(name)
            else:
                record.setdefault(name, value)
            continue
        if is_accuracy(field):
            value = _percent(name, value, scales, accuracy_scale, problems)
            percent.append(field)
        record[field] = value
    return record, tuple(percent), problems


def _percent(
    name: str, value: Any, scales: Optional[Mapping[str, str]], accuracy_scale: str, problems: list
) -> float:
    """An accuracy in percent by its declared scale (one rule for every accuracy-like name)."""
    scale = check_scale(f"scale of {name!r}", (scales or {}).get(name, accuracy_scale))
    if value == value:
        if scale == "fraction" and not (0.0 <= value <= 1.0):
            problems.append(f"{name}={value!r} is declared a fraction but is outside 0..1")
        elif scale == "percent" and not (0.0 <= value <= 100.0):
            problems.append(f"{name}={value!r} is declared in percent but is outside 0..100")
    return float(value) * 100.0 if scale == "fraction" else float(value)


# -- the final record ----------------------------------------------------------------------------
# One rule for what a finished run reports, used by the summary, the Kogu ``iteration -1`` line
# and the PROGRESS last line alike (they all print the one ``SummaryUpdate(final=True)`` event).

BEST_BY_ACCURACY = ("val_accuracy", "test_accuracy", "train_accuracy")
"""Which accuracy chooses the best epoch: validation first (choosing on test data is not model
selection), per-epoch test values where an epoch has no validation, then train."""
BEST_BY_LOSS = ("val_loss", "test_loss", "train_loss")
"""Used (lowest wins) when no epoch has an accuracy."""
REPORTED_ACCURACY = ("test_accuracy", "val_accuracy", "train_accuracy")
"""Which accuracy is *the* final accuracy (the PROGRESS consumer's priority)."""


def _num(value: Any) -> Optional[float]:
    if type(value) is bool or not isinstance(value, (int, float)) or value != value:
        return None
    return float(value)


class FinalTracker:
    """What the final record is built from, fed with the run's events on the dispatcher thread.

    It keeps the epoch records, every evaluation, the test stage's values, an explicit best epoch,
    the primary metric and the user's summary values: a handful of events per epoch, never the
    per-step points. A run re-opened by a later stage in the same process continues from the
    tracker of its earlier stage.
    """

    def __init__(self, prior_epochs: Optional[Mapping[int, Mapping[str, Any]]] = None) -> None:
        self.records: Dict[int, Dict[str, Any]] = {int(e): dict(v) for e, v in (prior_epochs or {}).items()}
        self.evaluations: list = []  # (epoch, step, values) of stage "val"
        self.test: Dict[str, Any] = {}
        self.best_epoch: Optional[int] = None
        self.primary: Optional[Tuple[str, str]] = None
        self.summary: Dict[str, Any] = {}
        self.total_epochs: Optional[int] = None

    # -- feeding (dispatcher thread) --------------------------------------------------------
    def epoch(self, epoch: int, values: Mapping[str, Any], total_epochs: Optional[int]) -> None:
        self.records[epoch] = dict(values)
        if total_epochs is not None:
            self.total_epochs = total_epochs

    def evaluation(
        self, stage: str, values: Mapping[str, Any], epoch: Optional[int], step: Optional[int]
    ) -> None:
        if stage == "test":
            self.test.update(values)
        else:
            self.evaluations.append((epoch, step, dict(values)))

    # -- the rule -----------------------------------------------------------------------------
    def _candidates(self) -> list:
        """(epoch, order, values): every epoch record and every evaluation (joined with its
        epoch's other values), in training order."""
        out = []
        for epoch, step, values in self.evaluations:
            if epoch is None:
                epoch = max(self.records, default=None)
                if epoch is None:
                    continue
            out.append(
                (epoch, 0, step if step is not None else -1, {**self.records.get(epoch, {}), **values})
            )
        for epoch, values in self.records.items():
            out.append((epoch, 1, 0, values))
        out.sort(key=lambda c: c[:3])
        return [(c[0], c[3]) for c in out]

    def choose(self, field_map: Optional[Mapping[str, str]] = None) -> Tuple[Optional[int], Dict[str, Any]]:
        """(best epoch, its values): the explicit best epoch, else the best by the primary metric
        when the records hold it, else by :data:`BEST_BY_ACCURACY` (highest), else by
        :data:`BEST_BY_LOSS` (lowest), else the last epoch. Ties go to the earliest."""
        candidates = self._candidates()
        if not candidates:
            return None, {}
        if self.best_epoch is not None:
            if self.best_epoch in self.records:
                return self.best_epoch, dict(self.records[self.best_epoch])
            return self.best_epoch, {}
        orders: list = []
        if self.primary is not None:
            name, mode = self.primary
            field = canonical_field(name, field_map)
            orders += [(k, mode) for k in (field, name) if k is not None]
        if self.test:  # with a test stage, per-epoch test values do not choose
            orders += [(k, "max") for k in BEST_BY_ACCURACY if k != "test_accuracy"]
            orders += [(k, "min") for k in BEST_BY_LOSS if k != "test_loss"]
        else:
            orders += [(k, "max") for k in BEST_BY_ACCURACY] + [(k, "min") for k in BEST_BY_LOSS]
        for key, mode in orders:
            best = None
            for epoch, values in candidates:
                value = _num(values.get(key))
                if value is None:
                    continue
                if best is None or (value > best[0] if mode == "max" else value < best[0]):
                    best = (value, epoch, values)
            if best is not None:
                return best[1], dict(best[2])
        last = max(self.records) if self.records else candidates[-1][0]
        return last, dict(self.records.get(last, candidates[-1][1]))

    def final(self, status: str, field_map: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
        """The final record: the best epoch's values (same keys and scales as the epoch records),
        the test stage's ``test_*`` values, ``best_epoch`` and ``total_epochs`` (for a completed
        run the epochs actually run, so an early-stopped run reads 100 %), then the values given
        to ``run.summary`` under other keys (given on the records' scale, they print as given)."""
        best, values = self.choose(field_map)
        if self.test:
            values = {k: v for k, v in values.items() if not k.startswith("test_")}
        record: Dict[str, Any] = {**values, **self.test}
        if best is not None:
            record["best_epoch"] = best
        epochs_run = max(self.records, default=None)
        total = self.total_epochs
        if epochs_run is not None and (status == "completed" or total is None):
            total = epochs_run
        if total is not None:
            record["total_epochs"] = total
        for key, value in self.summary.items():  # the user's own final values; the record wins
            record.setdefault(key, value)
        return record


def reported_accuracy(record: Mapping[str, Any]) -> Optional[str]:
    """The field of ``record`` that is its final accuracy (:data:`REPORTED_ACCURACY`), or None."""
    for field in REPORTED_ACCURACY:
        if _num(record.get(field)) is not None:
            return field
    return None
