"""The run API: what users and framework adapters call. It turns calls into events and queues them.

Nothing here does I/O on the hot path: :meth:`Run.log` normalises the values it was given, builds
one :class:`~epochline.events.Metrics` event and appends it to the dispatcher's queue. Images and
artifacts are the exception: they are written to the content-addressed media folder when logged, so
that the file stored is the file as it was at that moment.
"""

from __future__ import annotations

import math
import os
import re
import sys
import time
import warnings
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Callable, Dict, FrozenSet, Iterable, Mapping, Optional, Sequence, Tuple

from . import _sigterm
from . import events as ev
from .context._run import RunContext
from .dispatch import Dispatcher
from .epochs import epoch_record
from .errors import RunFinishedError
from .identity import fingerprint, uncounted
from .runinfo import RunInfo
from .sinks.final import tracker as final_tracker
from .values import INT64_MAX as _I64_MAX
from .values import INT64_MIN as _I64_MIN
from .values import (
    OddValue,
    check_key,
    check_params_object,
    flatten_params,
    metric_value,
    plain_text,
    storable_text,
)

if TYPE_CHECKING:
    import logging

_now = time.time

FINISH_TIMEOUT_S = 30.0
"""How long :meth:`Run.finish` keeps retrying a store that is away before it reports what was not
recorded (``EPOCHLINE_FINISH_TIMEOUT`` overrides it). A store that answers is always waited for."""


def finish_timeout() -> float:
    try:
        return max(0.0, float(os.environ.get("EPOCHLINE_FINISH_TIMEOUT", FINISH_TIMEOUT_S)))
    except ValueError:
        return FINISH_TIMEOUT_S


def exit_status(exc: Optional[BaseException]) -> tuple:
    """(status, reason) for a run that ends with ``exc`` in flight (None: completed)."""
    if exc is None:
        return "completed", None
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", "KeyboardInterrupt"
    if isinstance(exc, SystemExit) and _sigterm.received():  # e.g. Lightning's SIGTERMException
        return "interrupted", "SIGTERM"
    if isinstance(exc, SystemExit):
        code = exc.code
        if code in (None, 0):
            return "completed", None
        context = exc.__context__
        if isinstance(context, KeyboardInterrupt):
            return "interrupted", "KeyboardInterrupt"
        return "failed", f"SystemExit: {code}"
    return "failed", failure_reason(exc)[0]


_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?::\s.*)?$")


def failure_reason(exc: BaseException) -> Tuple[str, Optional[str]]:
    """(reason, detail) for a failed run: the reason leads with the root cause's type and message,
    without terminal colour codes (Keras wraps messages in them); ``detail`` is the full text when
    the message carried a whole traceback (a child process's, as DDP reports it), else None."""
    message = _ANSI.sub("", str(exc))
    if "Traceback (most recent call last)" in message:
        lines = [line.strip() for line in message.splitlines() if line.strip()]
        for line in reversed(lines):  # the traceback's last line is the child's exception
            if _EXCEPTION_LINE.match(line) and not line.startswith("Traceback"):
                return line, message.strip()
        return type(exc).__name__, message.strip()
    message = message.strip()
    return (f"{type(exc).__name__}: {message}" if message else type(exc).__name__), None


class Run(RunContext):
    """One training run. Create it with :func:`epochline.init`.

    The config/dataset/model records, ``set_best`` and the parameter model (parents, names) come
    from :class:`~epochline.context._run.RunContext`."""

    def __init__(
        self,
        info: RunInfo,
        dispatcher: Dispatcher,
        *,
        name: str,
        start_step: int = -1,
        on_finish: Any = None,
        accuracy_scale: str = "fraction",
        scales: Optional[Mapping[str, str]] = None,
        field_map: Optional[Mapping[str, str]] = None,
        total_epochs: Optional[int] = None,
        epochs_done: int = 0,
    ):
        self._info = info
        self._dispatcher = dispatcher
        self._put = dispatcher.put
        self._name = name
        self._total_epochs = total_epochs
        self._step = start_step
        self._finished = False
        self._params: Dict[str, Any] = {}
        self._ignored: set = set()
        self._primary: Optional[tuple] = None  # (name, mode)
        self._best: Optional[tuple] = None  # (value, step)
        self._warned: set = set()
        self._skipped = 0
        self._on_finish = on_finish
        # init() checked accuracy_scale, scales and field_map before anything was recorded
        self.accuracy_scale = accuracy_scale
        self.scales: Dict[str, str] = dict(scales or {})
        """Per-metric accuracy scale overrides, e.g. ``{"top1": "percent"}`` (``init(scales=)``)."""
        self.field_map: Dict[str, str] = dict(field_map or {})
        """Extra name -> PROGRESS field entries, e.g. ``{"acc@1": "val_accuracy"}`` (``init(field_map=)``)."""
        self._epochs_done = epochs_done
        self._phase: Optional[Phase] = None
        self._broken_phase: Optional[str] = None  # why a phase left by an exception did not end
        self.status: str = "running"
        self.reason: Optional[str] = None
        self.lost: int = 0
        """Values (one per metric value, one per other event) that did not reach every sink."""
        self.recorded: bool = True
        """False after :meth:`finish` when the run's start never reached the store: then nothing
        of it is there (a run is never stored in part), and finish said so on stderr."""
        self._init_context()

    # -- identity ----------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self._info.id

    @property
    def name(self) -> str:
        return self._name

    @property
    def path(self) -> str:
        return self._info.path

    @property
    def store_uri(self) -> str:
        return self._info.store.uri

    @property
    def emit(self) -> FrozenSet[str]:
        """The line emitters on for this run (``kogu``, ``progress``): a wrapper that shares stdout
        with them (``epochline run``) keeps the child's lines whole when this is not empty."""
        return self._info.emit

    @property
    def step(self) -> int:
        """The last step logged (-1 before the first)."""
        return self._step

    @property
    def params(self) -> Dict[str, Any]:
        return dict(self._params)

    @property
    def fingerprint(self) -> str:
        """Stable hash of the parameters that count; equal for runs of the same configuration."""
        return fingerprint(self._params, uncounted(self._params, self._ignored, self._parents))

    @property
    def finished(self) -> bool:
        return self._finished

    def __repr__(self) -> str:
        return f"<epochline.Run {self.id} path={self.path!r} status={self.status}>"

    # -- metrics: the hot path -----------------------------------------------------------------
    def log(  # noqa: C901 - the hot path, kept in one frame on purpose
        self,
        data: Optional[Mapping[str, Any]] = None,
        *,
        step: Optional[int] = None,
        stage: Optional[str] = None,
        epoch: Optional[int] = None,
        wall_time: Optional[float] = None,
        **kwargs: Any,
    ) -> None:
        """Record metric values at ``step`` (next step when omitted).

        ``wall_time`` (seconds since the epoch) replaces the time of the call, for values measured
        earlier or replayed from elsewhere (pycrayon's forced wall time).

        Values logged twice for the same key and step merge: the later wins. Values that are not
        numbers, bools or text (e.g. a 3-element tensor) are skipped with one warning per key.
        """
        if self._finished:
            self._raise_finished("log")
        if data is None:
            values = kwargs
        elif type(data) is dict:
            values = {**data, **kwargs} if kwargs else data.copy()
        elif isinstance(data, Mapping):
            values = dict(data)
            values.update(kwargs)
        else:
            raise TypeError(
                f"run.log() takes a dict of metric values or keyword arguments, got "
                f"{type(data).__name__}; e.g. run.log({{'loss': 0.25}}, step=10)"
            )
        # fast path: only floats, bools and 64-bit ints under text keys every backend can store;
        # anything else (text values, big ints, numpy scalars, odd keys) goes through _clean
        for value in values.values():
            t = type(value)
            if t is not float and t is not bool and (t is not int or not _I64_MIN <= value <= _I64_MAX):
                values = self._clean(values)
                break
        else:
            try:
                keys = "".join(values)
            except TypeError:  # a key that is not text
                keys = "\x00"
            if "\x00" in keys or not (keys.isascii() or storable_text(keys)):
                values = self._clean(values)
        if not values:
            return
        if step is None:
            step = self._step + 1
        elif type(step) is not int:
            step = self._as_int("step", step)
        if step > self._step:
            self._step = step
        if epoch is not None and type(epoch) is not int:
            epoch = self._as_int("epoch", epoch)
        if stage is not None and type(stage) is not str:
            raise TypeError(f"stage must be text such as 'train' or 'val', got {type(stage).__name__}")
        if self._primary is not None:
            self._track_primary(values, step)
        self._put(
            ev.Metrics(
                run_id=self._info.id,
                wall_time=_now() if wall_time is None else self._wall_time(wall_time),
                step=step,
                values=values,
                epoch=epoch,
                stage=stage,
            ),
            len(values),
        )

    def _send(self, event_type: Callable[..., ev.Event], /, **fields: Any) -> None:
        """Queue one ``event_type`` event of this run, stamped now (every record method but the hot
        :meth:`log`, which builds its event itself)."""
        self._put(event_type(run_id=self._info.id, wall_time=_now(), **fields))

    def _clean(self, values: Mapping[Any, Any]) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for key, value in values.items():
            try:
                key = check_key(key)
                out[key] = metric_value(value)
            except OddValue as exc:
                self._skipped += 1
                self._warn_once(("odd", key), f"epochline: metric {key!r} skipped: {exc}")
        return out

    @staticmethod
    def _as_int(what: str, value: Any) -> int:
        if isinstance(value, bool) or not hasattr(value, "__index__"):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise TypeError(f"{what} must be an integer, got {value!r} ({type(value).__name__})")
        return int(value.__index__())

    def _track_primary(self, values: Mapping[str, Any], step: int) -> None:
        name, mode = self._primary  # type: ignore[misc]  # called only once a primary metric is set
        value = values.get(name)
        if value is None or type(value) is str or type(value) is bool or value != value:
            return
        if self._best is None or (value > self._best[0] if mode == "max" else value < self._best[0]):
            self._best = (value, step)
        self._remember_primary(step, value)

    # -- everything else -----------------------------------------------------------------------
    def log_params(
        self,
        params: Any = None,
        *,
        ignore: Iterable[str] = (),
        parent: Optional[str] = None,
        param_parents: Optional[Mapping[str, str]] = None,
        **kwargs: Any,
    ) -> None:
        """Record hyper-parameters (flattened to dotted keys; see :mod:`epochline.values`).

        ``ignore`` names keys that do not count towards the run's identity (``num_workers``...).
        ``parent`` makes every key of this call a child of that parameter, ``param_parents`` maps
        child -> parent: a child counts only while its parent is set and true (legm).
        """
        self._check_open("log_params")
        flat: Dict[str, Any] = {}
        if params is not None:
            check_params_object(params)
            flat.update(flatten_params(params))
        if kwargs:
            flat.update(flatten_params(kwargs))
        if isinstance(ignore, str):
            ignore = (ignore,)
        self._ignored.update(ignore)
        self._add_parents(flat, parent, param_parents)
        self._params.update(flat)
        self._put_params(flat)

    def log_image(
        self, key: str, image: Any, step: Optional[int] = None, caption: Optional[str] = None
    ) -> Optional[str]:
        """Store an image (PIL, array HW/HWC/CHW, tensor, PNG/JPEG bytes or path) at ``step``.

        Returns the stored file's path, or None if it could not be stored (warned once, counted).
        """
        self._check_open("log_image")
        self._check_text("key", key)
        if caption is not None:
            caption = plain_text(str(caption))
        step = self._step_or_current(step)
        from .media import encode_image, store_bytes  # hashing, temp files: only for media

        try:
            data, suffix, width, height = encode_image(image)
            rel = store_bytes(self._info.store.media_root, data, suffix)
        except Exception as exc:
            self._lose(("image", type(exc).__name__), f"epochline: image {key!r} not stored: {exc}")
            return None
        self._send(ev.Image, key=key, step=step, media=rel, width=width, height=height, caption=caption)
        return str(self._info.store.media_root / rel)

    def log_artifact(self, path: Any, name: Optional[str] = None) -> Optional[str]:
        """Copy a file (or every file of a folder) into the store now, content-addressed.

        ``name`` is a label (default: the file name); it never becomes a path, and may not
        contain ``..`` or start with ``/``. Returns the stored path (None if it failed: warned).
        """
        self._check_open("log_artifact")
        source = Path(os.fspath(path))
        label = _artifact_name(name if name is not None else source.name)
        if source.is_dir():
            stored = None
            for child in sorted(p for p in source.rglob("*") if p.is_file()):
                stored = self.log_artifact(child, f"{label}/{child.relative_to(source).as_posix()}")
            return stored
        from .media import store_file

        try:
            rel, size, digest = store_file(self._info.store.media_root, source)
        except Exception as exc:
            self._lose(
                ("artifact", type(exc).__name__),
                f"epochline: artifact {label!r} from {source} not stored: {exc}",
            )
            return None
        self._send(ev.Artifact, name=label, media=rel, size=size, sha256=digest, source=str(source))
        return str(self._info.store.media_root / rel)

    def log_text(self, text: str, *, level: Optional[str] = None, logger: Optional[str] = None) -> None:
        self._check_open("log_text")
        self._send(ev.Text, text=plain_text(str(text)), level=level, logger=logger)

    def logging_handler(self, level: int = 20, fmt: Optional[str] = None) -> logging.Handler:
        """A ``logging.Handler`` that records log records as the run's text lines (``level``:
        ``logging.INFO`` by default)."""
        from ._loghandler import RunLogHandler

        return RunLogHandler(self, level, fmt)

    def comment(self, text: str) -> None:
        self._check_open("comment")
        self._send(ev.Comment, text=str(text))

    def tag(self, *tags: str) -> None:
        self._check_open("tag")
        for tag in tags:
            self._check_text("tag", tag)
            self._send(ev.Tag, tag=tag)

    def untag(self, *tags: str) -> None:
        self._check_open("untag")
        for tag in tags:
            self._check_text("tag", tag)
            self._send(ev.Untag, tag=tag)

    def rename(self, name: str) -> None:
        self._check_open("rename")
        self._check_text("name", name)
        self._name = name
        self._send(ev.Rename, name=name)

    def declare_plot(self, name: str, metrics: Sequence[str], y_label: str = "") -> None:
        """Declare a line plot of some numeric metrics (the Kogu ``plot`` message)."""
        self._check_open("declare_plot")
        self._check_text("name", name)
        if isinstance(metrics, str):
            metrics = (metrics,)
        self._send(ev.PlotDeclared, name=name, metrics=tuple(str(m) for m in metrics), y_label=str(y_label))

    def log_histogram(
        self,
        key: str,
        values: Any = None,
        *,
        hist: Optional[Mapping[str, Any]] = None,
        step: Optional[int] = None,
        bins: int = 64,
        wall_time: Optional[float] = None,
    ) -> None:
        """A histogram at ``step``: from raw ``values`` (list/array/tensor), or a ready ``hist`` dict
        with min, max, num, bucket_limit(s), bucket(s)/bucket_counts and optional sum, sum_squares.
        ``wall_time`` forces the time, as in :meth:`log`."""
        self._check_open("log_histogram")
        self._check_text("key", key)
        step = self._step_or_current(step)
        if (values is None) == (hist is None):
            raise TypeError("log_histogram() takes either values or hist=, not both or neither")
        data = _histogram_from_dict(hist) if hist is not None else _histogram(values, bins)
        self._put(
            ev.Histogram(
                run_id=self._info.id,
                key=key,
                step=step,
                **data,
                wall_time=_now() if wall_time is None else self._wall_time(wall_time),
            )
        )

    def set_primary_metric(self, name: str, mode: str = "max") -> None:
        """Track the best value of ``name`` (values logged before this call count too); at finish
        the summary gets ``primary_metric``, ``best_<name>`` (on the epoch records' scale, so a
        fraction accuracy is in percent) and ``best_<name>_step``. When the epoch records hold the
        metric, it also chooses the final record's best epoch. A name never logged is warned about
        at finish."""
        self._check_open("set_primary_metric")
        self._check_text("name", name)
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self._primary = (name, mode)
        self._best = None
        self._send(ev.PrimaryMetric, name=name, mode=mode)

    @property
    def best(self) -> Optional[Dict[str, Any]]:
        """``{"name", "mode", "value", "step"}`` of the primary metric: while the run goes on, over
        the values logged since :meth:`set_primary_metric`; after :meth:`finish`, over every value
        the store holds (also those logged before the call). After :meth:`set_best`: the pinned
        step (and ``"pinned": True``)."""
        if self._pinned_best is not None:
            return self._pinned()
        if self._primary is None or self._best is None:
            return None
        return {
            "name": self._primary[0],
            "mode": self._primary[1],
            "value": self._best[0],
            "step": self._best[1],
        }

    def _pin_best_epoch(self, epoch: Any) -> None:
        """``set_best(epoch=...)``: the final record reports this epoch's values."""
        epoch = epoch if type(epoch) is int else self._as_int("epoch", epoch)
        if epoch < 1:
            raise ValueError(f"epochs are 1-indexed in epochline; got {epoch} (add 1 to a 0-based epoch)")
        self._send(ev.BestEpoch, epoch=epoch)

    def summary(self, values: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> None:
        """Final results and notes (flattened like params); later keys overwrite earlier ones."""
        self._check_open("summary")
        flat = flatten_params({**(values or {}), **kwargs})
        if flat:
            self._send(ev.SummaryUpdate, values=flat)

    def epoch_record(
        self, values: Mapping[str, Any], *, scales: Optional[Mapping[str, str]] = None
    ) -> Dict[str, Any]:
        """The record :meth:`end_epoch` would emit for ``values``, without emitting anything.

        Names become PROGRESS fields and accuracies percent (:mod:`epochline.epochs`, with this
        run's ``accuracy_scale``, ``scales`` (+ ``scales=``) and ``field_map``); values that are
        not numbers are left out. A value that contradicts its declared scale is warned about once.
        """
        return self._record(values, scales)[0]

    def end_epoch(
        self,
        epoch: int,
        values: Mapping[str, Any],
        *,
        total_epochs: Optional[int] = None,
        scales: Optional[Mapping[str, str]] = None,
    ) -> Dict[str, Any]:
        """Close epoch ``epoch`` (1-indexed) with its values: one record, one PROGRESS line.

        ``values`` are the epoch's metrics as logged (also log them with :meth:`log` to keep the
        series); names and accuracy scales follow :mod:`epochline.epochs` (see :meth:`epoch_record`).
        Returns the record.
        """
        self._check_open("end_epoch")
        epoch = epoch if type(epoch) is int else self._as_int("epoch", epoch)
        if epoch < 1:
            raise ValueError(f"epochs are 1-indexed in epochline; got {epoch} (add 1 to a 0-based epoch)")
        if total_epochs is not None:
            self._total_epochs = self._as_int("total_epochs", total_epochs)
        record, percent = self._record(values, scales)
        self._epochs_done = max(self._epochs_done, epoch)
        self._send(ev.EpochEnd, epoch=epoch, values=record, total_epochs=self._total_epochs, percent=percent)
        self._dispatcher.nudge()
        return record

    def end_evaluation(
        self,
        values: Mapping[str, Any],
        *,
        stage: str = "val",
        epoch: Optional[int] = None,
        step: Optional[int] = None,
        scales: Optional[Mapping[str, str]] = None,
    ) -> Dict[str, Any]:
        """One evaluation's values, for the final record (no line is printed for it).

        ``stage="val"``: an evaluation during training at ``epoch`` (default: the last epoch
        closed) and ``step``; call it for *every* evaluation when there are several per epoch
        (step-wise evaluation): the best epoch is chosen over all of them, while the epoch's
        record (:meth:`end_epoch`) keeps its last. ``stage="test"``: the run's test results (a
        test/evaluate stage, before or after :meth:`finish` re-opened the run); every loss and
        accuracy in them becomes ``test_loss``/``test_accuracy`` whatever its prefix. Names and
        scales follow :mod:`epochline.epochs`. Returns the record.
        """
        self._check_open("end_evaluation")
        if stage not in ("val", "test"):
            raise ValueError(f"stage must be 'val' or 'test', got {stage!r}")
        if epoch is not None:
            epoch = epoch if type(epoch) is int else self._as_int("epoch", epoch)
        if step is not None:
            step = step if type(step) is int else self._as_int("step", step)
        record, percent = self._record(values, scales, stage)
        if record:
            self._send(ev.Evaluation, stage=stage, values=record, epoch=epoch, step=step, percent=percent)
        return record

    def _record(
        self, values: Mapping[str, Any], scales: Optional[Mapping[str, str]], stage: Optional[str] = None
    ) -> tuple:
        clean = self._clean(values) if values else {}
        record, percent, problems = epoch_record(
            clean,
            accuracy_scale=self.accuracy_scale,
            scales={**self.scales, **(scales or {})},
            field_map=self.field_map,
            stage=stage,
        )
        for problem in problems:
            self._warn_once(("scale", problem.split("=", 1)[0]), f"epochline: {problem}")
        return record, percent

    def _record_scale(self, name: str, value: Any) -> Any:
        """``value`` of metric ``name`` on the epoch records' scale (a fraction accuracy -> %)."""
        if type(value) is bool or not isinstance(value, (int, float)):
            return value
        record, _, _ = epoch_record(
            {name: value}, accuracy_scale=self.accuracy_scale, scales=self.scales, field_map=self.field_map
        )
        return next(iter(record.values()), value)

    @property
    def epochs_done(self) -> int:
        """The highest epoch closed with :meth:`end_epoch` (also by an earlier process of a resumed run)."""
        return self._epochs_done

    # -- framework phases ------------------------------------------------------------------------
    def phase(self, name: str) -> Phase:
        """Mark a framework phase (``"fit"``, ``"train"``, ``"evaluate"``) as running, from now.

        A run still unfinished at interpreter exit while a phase is running, or after a phase was
        left by an exception, ends ``failed`` (the framework raised and the caller swallowed it)
        rather than ``completed``. Use it as ``with run.phase("fit"): ...``, or keep the returned
        handle and call its :meth:`Phase.end` from the framework's end-of-phase callback. A new
        phase replaces the running one; :meth:`finish` ends any phase.
        """
        self._check_text("phase name", name)
        self._broken_phase = None
        self._phase = Phase(self, name)
        return self._phase

    @property
    def in_progress(self) -> Optional[str]:
        """The name of the phase running now (see :meth:`phase`), or None."""
        return None if self._phase is None else self._phase.name

    def _unfinished_reason(self) -> Optional[str]:
        """Why this run, unfinished at exit, failed: a phase that did not reach its end; or None."""
        if self._phase is not None:
            return (
                f"{self._phase.name} did not reach its end (an exception was raised and caught "
                "by the caller, or the process was told to exit)"
            )
        return self._broken_phase

    # -- the end -------------------------------------------------------------------------------
    def finish(  # noqa: C901 - one ordered end sequence
        self,
        status: str = "completed",
        reason: Optional[str] = None,
        *,
        hold_lines: bool = False,
    ) -> None:
        """End the run. Calling it again does nothing. Warns if any event could not be stored.

        The run's one final record (:func:`epochline.epochs.FinalTracker.final`: the best epoch's
        values, the test values, ``best_epoch``, ``total_epochs``) goes to the summary, the Kogu
        ``iteration -1`` line and the PROGRESS last line. ``hold_lines=True`` (for adapters: a
        later stage such as test after fit may re-open this run in this process) holds a
        completed run's final lines until that stage finishes the run again, another run prints,
        or the process exits, so the run's lines end once (see docs/protocols.md).
        """
        if status not in ev.STATUSES:
            raise ValueError(f"status must be one of {', '.join(ev.STATUSES)}; got {status!r}")
        if self._finished:
            return
        self._finished = True
        self._phase = None
        self.status, self.reason = status, reason
        self._stop_context()
        if self._skipped:
            self._send(ev.SummaryUpdate, values={"epochline_skipped_values": self._skipped})
        run_id, local, info = self._info.id, self.lost, self._info
        primary, field_map = self._primary, dict(self.field_map)
        scale = self._record_scale
        missing: list = []

        pinned = self._pinned_summary(scale) if self._pinned_best is not None else None

        def final(lost: int) -> list:
            now = _now()
            out: list = []
            tracker = final_tracker(info)
            if pinned is not None:  # set_best(): the step the user named, not the tracked extreme
                out.append(ev.SummaryUpdate(run_id=run_id, wall_time=now, values=pinned))
            elif primary is not None:
                name, mode = primary
                best = _stored_best(info, name, mode) or self._best
                if best is None:
                    missing.append(name)
                else:
                    self._best = best
                    out.append(
                        ev.SummaryUpdate(
                            run_id=run_id,
                            wall_time=now,
                            values={
                                "primary_metric": name,
                                f"best_{name}": scale(name, best[0]),
                                f"best_{name}_step": best[1],
                            },
                        )
                    )
            record = tracker.final(status, field_map) if tracker is not None else {}
            if out and primary is not None and f"best_{primary[0]}" in out[0].values:
                key = f"best_{primary[0]}"  # the primary metric's best, on the records' scale
                record.setdefault(key, out[0].values[key])
            if record:
                out.append(ev.SummaryUpdate(run_id=run_id, wall_time=now, values=record, final=True))
            out.append(
                ev.RunFinished(
                    run_id=run_id,
                    wall_time=now,
                    status=status,
                    reason=reason,
                    lost=lost + local,
                    hold_lines=hold_lines and status == "completed",
                )
            )
            return out

        dispatcher, store = self._dispatcher, self._info.store
        timeout = finish_timeout()
        if hasattr(store, "give_up_at"):  # a store that is away gets this long, then we report
            store.give_up_at = _now() + timeout
        done = dispatcher.close(final, timeout + 10.0)
        self.lost += dispatcher.total_lost
        if not done:  # what the writer still holds is not recorded either
            self.lost += sum(map(ev.weight, list(dispatcher._queue)))
        logged = dispatcher.logged + dispatcher.dropped + local
        recorded = getattr(store, "recorded", None)
        self.recorded = recorded is None or run_id in recorded
        if missing:
            warnings.warn(
                f"epochline: the primary metric {missing[0]!r} of run {run_id} was never "
                "logged, so the run has no best value; log it with run.log() or choose "
                "a logged name in set_primary_metric()",
                RuntimeWarning,
                stacklevel=2,
            )
        if self._on_finish is not None:
            self._on_finish(self)
        detail = dispatcher.report() + ("" if done else " (the writer did not finish in time)")
        if not self.recorded:
            # stderr, not only a warning: a run missing from the store must never go unnoticed
            print(
                f"epochline: run {run_id} was NOT recorded in the store {store.uri}: its start "
                f"could not be written ({detail or 'the store did not answer'}); nothing of it "
                "is in the store",
                file=sys.stderr,
                flush=True,
            )
        elif self.lost or not done:
            warnings.warn(
                f"epochline: run {run_id} finished as {status}, but {self.lost} of "
                f"{logged} logged values were not recorded{': ' + detail if detail else ''}",
                RuntimeWarning,
                stacklevel=2,
            )

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        self.finish(*exit_status(exc))

    # -- helpers --------------------------------------------------------------------------------
    def _step_or_current(self, step: Any) -> int:
        if step is None:
            return max(self._step, 0)
        return step if type(step) is int else self._as_int("step", step)

    def _check_open(self, what: str) -> None:
        if self._finished:
            self._raise_finished(what)

    def _raise_finished(self, what: str) -> None:
        raise RunFinishedError(
            f"run {self._info.id} is already finished ({self.status}); run.{what}() must come "
            f"before run.finish(), or start a new run with epochline.init()"
        )

    @staticmethod
    def _check_text(what: str, value: Any) -> None:
        if type(value) is not str or not value:
            raise TypeError(f"{what} must be a non-empty string, got {value!r}")
        if not storable_text(value):  # no store can keep it: say so at the call
            raise ValueError(f"{what} {value!r} holds a NUL character or a lone surrogate")

    def _warn_once(self, key: tuple, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, RuntimeWarning, stacklevel=3)

    def _lose(self, key: tuple, message: str) -> None:
        self.lost += 1
        self._warn_once(key, message + " (training goes on; counted in the finish report)")


class Phase:
    """A running framework phase of a run (see :meth:`Run.phase`); a context manager."""

    __slots__ = ("_run", "name")

    def __init__(self, run: Run, name: str):
        self._run = run
        self.name = name

    def end(self) -> None:
        """The phase reached its end. Does nothing if it already ended or another one replaced it."""
        if self._run._phase is self:
            self._run._phase = None

    def __enter__(self) -> Phase:
        return self

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        run = self._run
        if exc is not None and run._phase is self:
            run._broken_phase = f"{self.name} did not reach its end ({exit_status(exc)[1]})"
        self.end()

    def __repr__(self) -> str:
        return f"<epochline phase {self.name!r} of run {self._run.id}>"


def _stored_best(info: RunInfo, name: str, mode: str) -> Optional[tuple]:
    """(best value, its step) of metric ``name`` over every point the store holds for the run, or
    None (nothing stored, or a store that cannot be read). Called once, at finish, on the
    dispatcher thread after the last write: so the primary metric counts values logged before
    ``set_primary_metric`` too, and logging pays nothing per point for it."""
    try:
        from .store.reader import Store

        points = Store(info.store).run(info.id).metrics(name)
    except Exception:
        return None
    best: Optional[tuple] = None
    for _, step, value in points:
        if type(value) is bool or type(value) is str or value != value:
            continue
        if best is None or (value > best[0] if mode == "max" else value < best[0]):
            best = (value, step)
    return best


def _artifact_name(name: Any) -> str:
    text = str(name).replace("\\", "/")
    parts = PurePosixPath(text).parts
    if not text or text.startswith("/") or ".." in parts or "\x00" in text:
        raise ValueError(f"artifact name {name!r} must be a relative label without '..'")
    return "/".join(p for p in parts if p not in (".", ""))


def _numpy() -> Any:
    """numpy, or None where it is not installed (then histograms are counted in pure Python)."""
    try:
        import numpy
    except ImportError:  # pragma: no cover - numpy is there whenever arrays are
        return None
    return numpy


def _histogram(values: Any, bins: int) -> Dict[str, Any]:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    np = _numpy()
    if np is not None:
        arr = np.asarray(values, dtype=np.float64).ravel()
        arr = arr[np.isfinite(arr)]
        if arr.size == 0:
            raise ValueError("log_histogram() needs at least one finite value")
        counts, edges = np.histogram(arr, bins=bins)
        return {
            "min": float(arr.min()),
            "max": float(arr.max()),
            "num": int(arr.size),
            "bucket_limits": tuple(float(x) for x in edges[1:]),
            "bucket_counts": tuple(float(c) for c in counts),
            "sum": float(arr.sum()),
            "sum_squares": float((arr * arr).sum()),
        }
    xs = [float(v) for v in values if math.isfinite(float(v))]
    if not xs:
        raise ValueError("log_histogram() needs at least one finite value")
    lo, hi = min(xs), max(xs)
    width = (hi - lo) / bins or 1.0
    counts = [0.0] * bins
    for x in xs:
        counts[min(int((x - lo) / width), bins - 1)] += 1
    return {
        "min": lo,
        "max": hi,
        "num": len(xs),
        "bucket_limits": tuple(lo + width * (i + 1) for i in range(bins)),
        "bucket_counts": tuple(counts),
        "sum": sum(xs),
        "sum_squares": sum(x * x for x in xs),
    }


def _histogram_from_dict(hist: Mapping[str, Any]) -> Dict[str, Any]:
    try:
        limits = hist.get("bucket_limits", hist.get("bucket_limit"))
        counts = hist.get("bucket_counts", hist.get("bucket"))
        out: Dict[str, Any] = {
            "min": float(hist["min"]),
            "max": float(hist["max"]),
            "num": int(hist["num"]),
            "bucket_limits": tuple(float(x) for x in limits),
            "bucket_counts": tuple(float(x) for x in counts),
            "sum": float(hist.get("sum", 0.0)),
            "sum_squares": float(hist.get("sum_squares", 0.0)),
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise TypeError(
            f"hist= needs min, max, num, bucket_limit(s) and bucket(s)/bucket_counts: {exc}"
        ) from None
    if len(out["bucket_limits"]) != len(out["bucket_counts"]):
        raise ValueError("hist= needs as many bucket limits as bucket counts")
    return out
