"""The typed events that flow from a run to its sinks.

Every call on the run API becomes one immutable event; sinks (the store, the line emitters,
third-party plugins) only ever see these, never a framework object. Events are msgspec Structs:
they cost a few hundred nanoseconds to build on the hot path and serialise to strict JSON with a
``type`` tag, so a sink can persist or forward them without knowing their Python classes.

Values inside events are already normalised by :mod:`epochline.values` (plain ``float``, ``int``,
``bool``, ``str``). JSON cannot hold NaN or infinities, so :func:`to_json` writes them as the strings
``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` inside a ``{"$float": ...}`` wrapper and
:func:`from_json` turns them back, which makes every event round-trip exactly.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple, Union

import msgspec

from ._json import NONFINITE_TEXT, nonfinite_text, replace_nonfinite

SCHEMA_VERSION = 1

Scalar = Union[bool, int, float, str]
ParamValue = Union[None, bool, int, float, str, List[Any]]

STATUSES = ("completed", "failed", "interrupted", "crashed")


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    run_id: str
    wall_time: float


class RunStarted(Event, tag="run_started", frozen=True):
    name: str
    path: str
    alias: Optional[str] = None
    tags: Tuple[str, ...] = ()
    host: str = ""
    pid: int = 0
    pid_start: Optional[float] = None
    framework: Optional[str] = None
    named: bool = False
    """True when the user chose the name (or alias); False for a generated one."""
    resumed: bool = False
    """True when this continues a stored run (``init(run_id=...)``)."""
    schema_version: int = SCHEMA_VERSION
    total_epochs: Optional[int] = None
    """``init(total_epochs=)``, or the stored run's when resuming; later ones come in EpochEnd."""


class Params(Event, tag="params", frozen=True):
    params: Dict[str, ParamValue]
    ignored: Tuple[str, ...] = ()
    """Keys that do not count towards the run's identity (e.g. ``num_workers``)."""


class Metrics(Event, tag="metrics", frozen=True):
    step: int
    values: Dict[str, Scalar]
    epoch: Optional[int] = None
    stage: Optional[str] = None


class Image(Event, tag="image", frozen=True):
    key: str
    step: int
    media: str
    """Path of the PNG/JPEG file relative to the store's media root (content-addressed)."""
    width: int = 0
    height: int = 0
    caption: Optional[str] = None


class Text(Event, tag="text", frozen=True):
    text: str
    level: Optional[str] = None
    logger: Optional[str] = None


class Comment(Event, tag="comment", frozen=True):
    text: str


class Tag(Event, tag="tag", frozen=True):
    tag: str


class Untag(Event, tag="untag", frozen=True):
    tag: str


class Rename(Event, tag="rename", frozen=True):
    name: str


class Artifact(Event, tag="artifact", frozen=True):
    name: str
    media: str
    """Path relative to the store's media root (content-addressed)."""
    size: int = 0
    sha256: str = ""
    source: str = ""
    """Where the file was copied from, as the user named it."""


class PlotDeclared(Event, tag="plot", frozen=True):
    name: str
    metrics: Tuple[str, ...]
    y_label: str = ""
    kind: str = "line"


class Histogram(Event, tag="histogram", frozen=True):
    key: str
    step: int
    min: float
    max: float
    num: int
    bucket_limits: Tuple[float, ...]
    bucket_counts: Tuple[float, ...]
    sum: float = 0.0
    sum_squares: float = 0.0


class SummaryUpdate(Event, tag="summary", frozen=True):
    values: Dict[str, Any]
    final: bool = False
    """True for the run's final record (:func:`epochline.epochs.final_record`), sent once just
    before :class:`RunFinished`: the summary stores it, the Kogu ``iteration -1`` line and the
    PROGRESS last line print exactly it."""


class PrimaryMetric(Event, tag="primary_metric", frozen=True):
    name: str
    mode: str = "max"


class EpochEnd(Event, tag="epoch_end", frozen=True):
    """One per completed epoch: what the line emitters turn into a PROGRESS line."""

    epoch: int
    """1-indexed."""
    values: Dict[str, Scalar]
    total_epochs: Optional[int] = None
    percent: Tuple[str, ...] = ()
    """Keys of ``values`` that are accuracies already scaled to percent."""


class Evaluation(Event, tag="evaluation", frozen=True):
    """One evaluation's values as a record (names and scales as :class:`EpochEnd`'s).

    ``stage="val"``: an evaluation during training (several per epoch with step-wise evaluation);
    the best epoch is chosen over all of them, not only each epoch's last. ``stage="test"``: the
    run's test results (a test/evaluate stage), reported in the final record as ``test_*``.
    """

    stage: str
    values: Dict[str, Scalar]
    epoch: Optional[int] = None
    step: Optional[int] = None
    percent: Tuple[str, ...] = ()


class BestEpoch(Event, tag="best_epoch", frozen=True):
    """The epoch the training kept (early stopping that restores the best weights, a checkpoint
    callback's best): the final record reports it instead of choosing one."""

    epoch: int


class RunFinished(Event, tag="run_finished", frozen=True):
    status: str
    reason: Optional[str] = None
    lost: int = 0
    """Events this process could not hand to every sink (see the run's finish report)."""
    hold_lines: bool = False
    """The final protocol lines wait: a later stage may re-open the run in this process (see
    :func:`epochline.protocol.flush_held_lines`)."""


class Record(Event, tag="record", frozen=True):
    """A described thing the run carries beside its metrics: the environment (``kind="env"``), a
    dataset, a model, a config file, the code snapshot, the parameter metadata. One record per
    (kind, name); a later one replaces it. ``data`` holds plain JSON values only."""

    kind: str
    name: str
    data: Dict[str, Any]


class ConsoleText(Event, tag="console", frozen=True):
    """A line the program printed to stdout or stderr while ``capture_console`` was on."""

    text: str
    stream: str = "stdout"


class SystemMetrics(Metrics, tag="system_metrics", frozen=True):
    """Samples of the machine (CPU %, RSS, GPU) taken by the ``system_metrics`` sampler. A type of
    its own so that sinks that print metrics (Kogu) do not print these; ``step`` is the sample's
    index, ``wall_time`` the time it was taken."""


class Heartbeat(Event, tag="heartbeat", frozen=True):
    """Sent by the dispatcher every few seconds so readers can tell a live run from a dead one."""


AnyEvent = Union[
    RunStarted,
    Params,
    Metrics,
    Image,
    Text,
    Comment,
    Tag,
    Untag,
    Rename,
    Artifact,
    PlotDeclared,
    Histogram,
    SummaryUpdate,
    PrimaryMetric,
    EpochEnd,
    Evaluation,
    BestEpoch,
    RunFinished,
    Heartbeat,
    Record,
    ConsoleText,
    SystemMetrics,
]


def weight(event: Event) -> int:
    """What an event counts in the queue bound and in loss reports: one per metric value, else one."""
    return len(event.values) if type(event) is Metrics or type(event) is SystemMetrics else 1


def _enc_hook(obj: Any) -> Any:
    raise TypeError(f"epochline events hold only plain values, got {type(obj).__name__}")


def _wrapped(value: float) -> Dict[str, str]:
    return {"$float": nonfinite_text(value)}


def _wrap_nonfinite(obj: Any) -> Any:
    return replace_nonfinite(obj, _wrapped)


def _unwrap_nonfinite(obj: Any) -> Any:
    if isinstance(obj, dict):
        if len(obj) == 1 and "$float" in obj and obj["$float"] in NONFINITE_TEXT:
            return NONFINITE_TEXT[obj["$float"]]
        return {k: _unwrap_nonfinite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unwrap_nonfinite(v) for v in obj]
    return obj


_encoder = msgspec.json.Encoder(enc_hook=_enc_hook)


def to_builtins(event: Event) -> Dict[str, Any]:
    """The event as a JSON-ready dict (strict JSON: non-finite floats wrapped)."""
    return _wrap_nonfinite(msgspec.to_builtins(event))


def to_json(event: Event) -> bytes:
    """Strict RFC 8259 JSON with a ``type`` tag; see the module docstring for NaN/inf."""
    return _encoder.encode(to_builtins(event))


def from_json(data: Union[bytes, str]) -> AnyEvent:
    raw = msgspec.json.decode(data)
    return msgspec.convert(_unwrap_nonfinite(raw), AnyEvent)


def dumps_value(value: Any) -> str:
    """A parameter/summary value as strict JSON text (non-finite floats wrapped, see to_json)."""
    return _encoder.encode(_wrap_nonfinite(value)).decode()


def loads_value(text: str) -> Any:
    return _unwrap_nonfinite(msgspec.json.decode(text))
