"""What the three framework adapters share, so that each adapter is only a translation.

Adapter-author helpers (not user API):

* :data:`DEFAULT_EMIT` and :func:`adapter_options` — one constructor validation: the adapter's own
  keywords and those it passes to :func:`epochline.init` are checked when the adapter is *built*
  (by :func:`epochline.options.check_init_options`, the same checks ``init`` runs), so a typo or a
  bad value fails at the call that is wrong, not inside ``fit``.
* :func:`catch_and_warn` — the one decorator every framework-facing adapter method wears (DVCLive's
  ``catch_and_warn`` is the model): a tracker failure warns once per method and error kind and the
  training goes on. Only :class:`UsageError` (a wrong argument in a call the *user* made) passes.
* :func:`safely` — the call form of the same rule, for user or model code an adapter calls (an
  ``images=`` function, a model's ``get_config``); :func:`log_images` runs an ``images=`` function.
* :func:`open_run` — starts the run (``framework=``, the adapters' default emit), or returns the
  live run of that id in this process (one live run per id per process, e.g. after a logger is
  unpickled in the same process); ``reopen=`` re-opens a finished run for a later stage.
* :func:`end_run` — ends a run with the exception in flight: status and a one-line reason led by
  the root cause; a traceback carried in the message is kept as an ERROR text record.
* :class:`EpochAccumulator` — the values of the epoch being gathered; each epoch closes into one
  record once, and a later stage only adds to the last record.
* :func:`prefixed` — Lightning's ``prefix`` rule (``"tmp"`` + ``"loss"`` -> ``"tmp-loss"``).
* :func:`image_captions`, :func:`table_text` — the arguments of ``log_image``/``log_table`` calls
  (W&B's signatures, which Lightning's loggers share) as what a run records.
* :func:`parameter_count` — the number of values in a model's weight tensors (any framework).
* :func:`leave_to_launcher` — a ``ddp_spawn`` worker leaves a failed run's end to its launcher.
* Re-exported core helpers (``flatten_params``, ``local_directory``, ``receive_held_lines``, and
  the context recorders ``lightning_datasets``, ``huggingface_model``): an adapter module imports nothing of epochline but
  the public API and the private ``integrations/_*.py`` modules, so this is the one boundary.

The run of one adapter object across a framework's calls (which run, later stages, phases,
endings) is :class:`~epochline.integrations._session.Session`. Framework-specific reading of
framework objects (no run calls) lives in one private module per framework (``_keras_model``,
``_lightning_base``, ``_transformers_trainer``), which an adapter imports as ``fw``; checkpoint
files -> artifacts in ``_checkpoints``.
"""

from __future__ import annotations

import atexit
import functools
import sys
import threading
import warnings
import weakref
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, TypeVar

import epochline
from epochline.context._frameworks import huggingface_model, lightning_datasets
from epochline.options import (
    CONTEXT_OPTIONS,
    check_choice,
    check_flag,
    check_function,
    check_init_options,
    check_positive_int,
    unknown_keywords,
)
from epochline.protocol import receive_held_lines
from epochline.run import exit_status, failure_reason
from epochline.store import local_directory
from epochline.values import flatten_params

INIT_KEYWORDS: Tuple[str, ...] = (
    ("path", "name", "alias", "params", "ignore_params", "tags", "store", "run_id", "emit")
    + ("accuracy_scale", "scales", "field_map", "flush_interval")
    + CONTEXT_OPTIONS
)
"""The ``epochline.init`` keywords every adapter constructor passes through (checked when the
adapter is built, by :func:`epochline.options.check_init_options`); Lightning adds ``total_epochs``."""

__all__ = [
    "DEFAULT_EMIT",
    "UsageError",
    "adapter_options",
    "catch_and_warn",
    "warn_once",
    "repeated_call",
    "safely",
    "log_images",
    "open_run",
    "end_run",
    "leave_to_launcher",
    "EpochAccumulator",
    "prior_record",
    "prefixed",
    "prefixed_key",
    "image_captions",
    "table_text",
    "parameter_count",
    "check_choice",
    "check_flag",
    "check_function",
    "check_positive_int",
    # the core's helpers for adapters, re-exported: an adapter module imports nothing of epochline
    # but the public API and these private modules (one boundary, checked by test_contract.py)
    "flatten_params",
    "local_directory",
    "lightning_datasets",
    "huggingface_model",
    "receive_held_lines",
]

DEFAULT_EMIT = "kogu,progress"
"""The adapters print both line protocols unless ``emit=`` (or ``EPOCHLINE_EMIT``) says otherwise."""

F = TypeVar("F", bound=Callable[..., Any])


class UsageError(TypeError, ValueError):
    """A wrong argument in a call the user made (e.g. ``log_image`` with more captions than images):
    raised at that call; every other error inside an adapter is warned about instead."""


def adapter_options(
    owner: str, options: Mapping[str, Any], *, run: Any = None, allowed: Tuple[str, ...] = ()
) -> Dict[str, Any]:
    """Validate an adapter's ``init`` keywords at construction; return them normalised.

    ``allowed`` limits the init keywords this adapter takes (all of them when empty). With an
    existing ``run=`` the adapter starts nothing, so run-starting keywords are refused.
    """
    if allowed:
        unknown_keywords(owner, options, allowed)
    checked = check_init_options(options, owner)
    if run is not None:
        if not isinstance(run, (epochline.Run, epochline.NoOpRun)):
            raise TypeError(f"{owner}: run= takes a run from epochline.init(), got {run!r}")
        given = sorted(k for k, v in options.items() if v not in (None, (), {}, "default"))
        if given:
            raise TypeError(
                f"{owner}: run= records into an existing run; {', '.join(given)} "
                "belong(s) to epochline.init() for that run, not to the adapter"
            )
    return checked


def warn_once(owner: Any, what: str, exc: BaseException) -> None:
    """Warn that ``owner``'s ``what`` failed, once per owner, ``what`` and error kind."""
    warned = owner.__dict__.setdefault("_epochline_warned", set())
    key = (what, type(exc).__name__)
    if key not in warned:
        warned.add(key)
        warnings.warn(
            f"epochline: {type(owner).__name__}.{what} failed ({type(exc).__name__}: "
            f"{exc}); training goes on",
            RuntimeWarning,
            stacklevel=3,
        )


def repeated_call(owner: Any, event: str, *identity: Any) -> bool:
    """True for the second delivery of the same framework event to the same callback object.

    A callback registered twice (``callbacks=[cb]`` plus ``trainer.add_callback(cb)``) receives
    each event twice in a row with the same arguments; every other event sequence alternates. The
    second one is ignored, with one warning.
    """
    key = (event, *identity)
    if owner.__dict__.get("_epochline_last_event") == key:
        if not owner.__dict__.get("_epochline_warned_twice"):
            owner.__dict__["_epochline_warned_twice"] = True
            warnings.warn(
                f"epochline: this {type(owner).__name__} is registered twice with the same "
                "trainer; the second registration is ignored",
                RuntimeWarning,
                stacklevel=3,
            )
        return True
    owner.__dict__["_epochline_last_event"] = key
    return False


def catch_and_warn(fn: Optional[F] = None, *, default: Any = None) -> Any:
    """Decorate an adapter method so that nothing it raises reaches the training (warned once per
    method and error kind; returns ``default``). :class:`UsageError` is raised as it is."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except UsageError:
                raise
            except Exception as exc:
                warn_once(self, method.__name__.lstrip("_"), exc)  # a hook bound on request is private
                return default

        return wrapper  # type: ignore[return-value]

    return decorate(fn) if fn is not None else decorate


def safely(owner: Any, what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, or None when it raises (warned once as ``owner``'s ``what``): for user or
    model code whose failure must not stop the training."""
    try:
        return fn(*args)
    except Exception as exc:
        warn_once(owner, what, exc)
        return None


def log_images(
    owner: Any, run: Any, images_fn: Callable[..., Any], *args: Any, step: int, caption: Optional[str] = None
) -> None:
    """The adapters' ``images=`` option: ``images_fn(*args)`` returns ``{key: image}`` (or None),
    each logged at ``step``; a failing function is warned about once (a plotting bug must not stop
    the training)."""
    images = safely(owner, "images function", lambda: list((images_fn(*args) or {}).items()))
    for key, image in images or ():
        run.log_image(str(key), image, step=step, caption=caption)


_live: "weakref.WeakValueDictionary[str, Any]" = weakref.WeakValueDictionary()
_live_lock = threading.Lock()


def open_run(framework: str, *, reopen: Optional[str] = None, **options: Any) -> Any:
    """``epochline.init(framework=framework, default_emit=DEFAULT_EMIT, **options)``, except that a
    run of the same ``run_id`` still live in this process is returned instead of a second one (two
    live runs of one id would both finish it). ``reopen``: the id of a finished run that a later
    stage (evaluate/test after fit) re-opens; its tags and params were recorded when it started."""
    if reopen is not None:
        options.update(run_id=reopen, tags=(), params=None)
    options.setdefault("default_emit", DEFAULT_EMIT)
    run_id = options.get("run_id")
    with _live_lock:
        live = _live.get(run_id) if run_id else None
        if live is not None and not live.finished:
            return live
        run = epochline.init(framework=framework, **options)
        if isinstance(run, epochline.Run):
            _live[run.id] = run
        return run


def end_run(
    run: Any,
    exc: Optional[BaseException] = None,
    *,
    status: Optional[str] = None,
    reason: Optional[str] = None,
    hold_lines: bool = False,
) -> None:
    """Finish ``run`` (if it is live): with ``exc`` the status and reason come from it (reason led by
    the root cause, a carried traceback kept as an ERROR text record), else ``status``/``reason``.
    ``hold_lines``: a later stage (test after fit) may re-open the run in this process, so its
    completed final lines wait for that stage (``Run.finish(hold_lines=True)``)."""
    if run is None or not isinstance(run, epochline.Run) or run.finished:
        return
    if exc is not None:
        status, reason = exit_status(exc)
        if status == "failed":
            reason, detail = failure_reason(exc)
            if detail:
                run.log_text(detail, level="ERROR", logger="epochline.failure")
        elif status == "completed":  # e.g. SystemExit(0) out of a framework call that failed
            status, reason = "failed", f"{type(exc).__name__} raised inside the framework call"
    run.finish(status or "completed", reason, hold_lines=hold_lines and exc is None)


def leave_to_launcher(run: Any, handover: Optional[str] = None) -> None:
    """Leave the end of ``run`` to the process that launched this one (Lightning's ``ddp_spawn``
    workers: the launching process finalizes a failure, with the root cause it gets in
    ``ProcessRaisedException``).

    A worker that dies of an exception (its own, or a sibling's: the launcher then SIGTERMs it)
    would otherwise finish the run from its exit paths (``sys.exit(1)`` in torch's spawn wrapper,
    atexit, SIGTERM) with a symptom such as ``SystemExit: 1``, and print a final set of lines
    before the launcher prints its own. So those exit paths leave it alone and only write what is
    queued; the run ends by the worker's own ``finalize`` (success) or by the launcher's.

    ``handover``: the file the launcher named (:func:`epochline.protocol.receive_held_lines`) for
    the held final lines of a stage that succeeds, so the launcher prints one final set for all
    stages instead of one per worker process.
    """
    if not isinstance(run, epochline.Run) or run.finished:
        return
    if handover:
        from epochline.protocol import hand_over_held_lines

        hand_over_held_lines(run.id, handover)
    from epochline import lifecycle

    lifecycle._forget(run)  # not finished by this process's excepthook, atexit or SIGTERM
    atexit.register(_write_queued, weakref.ref(run))


def _write_queued(ref: "weakref.ref[Any]") -> None:
    run = ref()
    if run is not None and not run.finished:
        run._dispatcher.park()  # write what is queued; the run stays open for the launcher


def exception_in_flight() -> Optional[BaseException]:
    """The exception being handled (frameworks call their loggers inside ``except`` blocks)."""
    return sys.exc_info()[1]


class EpochAccumulator:
    """The values of the 1-indexed epoch being gathered, closed into one record exactly once.

    ``add(epoch, values)`` gathers values; values for a newer epoch first close the open one.
    Values for an epoch already closed never re-open it (they stay in the step series only).
    ``add_to_last(values)`` is for a later stage (validate/test after fit): it adds to the last
    record and closes it again, never replacing an earlier epoch's values.
    """

    def __init__(self) -> None:
        self.epoch = 0
        self.values: Dict[str, Any] = {}
        self.dirty = False
        self.closed = 0  # the last epoch closed into a record
        self.scales: Dict[str, str] = {}  # values taken from a stored record are in percent already

    def resume(self, epoch: int, record: Tuple[Dict[str, Any], Tuple[str, ...]]) -> None:
        """Continue from a record stored by an earlier process (a later stage in a new process):
        ``add_to_last`` then adds to it instead of replacing it."""
        values, percent = record
        self.epoch = self.closed = epoch
        self.values = dict(values)
        self.scales = dict.fromkeys(percent, "percent")

    def add(
        self, run: Any, epoch: Optional[int], values: Mapping[str, Any], total_epochs: Optional[int] = None
    ) -> bool:
        """Gather ``values`` for ``epoch``; False when that epoch was already closed."""
        if epoch is None:
            epoch = max(self.epoch, 1)
        if epoch <= self.closed or epoch < self.epoch:
            return False
        if epoch > self.epoch:
            self.close(run, total_epochs)
            self.epoch, self.values, self.scales = epoch, {}, {}
        if values:
            self.values.update(values)
            self.dirty = True
        return True

    def close(self, run: Any, total_epochs: Optional[int] = None) -> Optional[Dict[str, Any]]:
        if not self.dirty:
            return None
        self.dirty = False
        self.closed = max(self.closed, self.epoch)
        return run.end_epoch(self.epoch, self.values, total_epochs=total_epochs, scales=self.scales or None)

    def end(
        self, run: Any, epoch: int, values: Mapping[str, Any], total_epochs: Optional[int] = None
    ) -> Optional[Dict[str, Any]]:
        """Close ``epoch`` now, with ``values`` added: its record is written even when nothing was
        gathered (an epoch with nothing to say still has its record); nothing for an epoch
        already closed."""
        if self.add(run, epoch, values, total_epochs) and epoch == self.epoch:
            self.dirty = True
        return self.close(run, total_epochs)

    def add_to_last(
        self, run: Any, values: Mapping[str, Any], total_epochs: Optional[int] = None
    ) -> Optional[Dict[str, Any]]:
        if not values:
            return None
        self.epoch = max(self.epoch, 1)
        self.values.update(values)
        self.dirty = True
        return self.close(run, total_epochs)


def prior_record(run: Any, epoch: int) -> Tuple[Dict[str, Any], Tuple[str, ...]]:
    """(values, percent keys) of ``epoch``'s record as stored (by an earlier process), or empty."""
    try:
        with epochline.open(run.store_uri) as store:
            for record in store.run(run.id).epochs():
                if record["epoch"] == epoch:
                    return dict(record["values"]), tuple(record.get("percent") or ())
    except Exception:  # no store (it is down): the later stage's values stand alone
        pass
    return {}, ()


def prefixed(values: Mapping[str, Any], prefix: str, separator: str = "-") -> Dict[str, Any]:
    """Lightning's ``_add_prefix``: every key but ``epoch``/``step`` gets ``prefix + separator``."""
    return {k if k in ("epoch", "step") else prefixed_key(k, prefix, separator): v for k, v in values.items()}


def prefixed_key(key: str, prefix: str, separator: str = "-") -> str:
    """One key under Lightning's ``prefix`` rule (``"tmp"`` + ``"loss"`` -> ``"tmp-loss"``)."""
    return f"{prefix}{separator}{key}" if prefix else key


def image_captions(images: Any, caption: Any) -> List[Tuple[Any, Optional[str]]]:
    """(image, caption) pairs of a ``log_image(key, images, caption=)`` call: one image or a list;
    one caption for all or one per image (a count that differs is the caller's :class:`UsageError`)."""
    if not isinstance(images, (list, tuple)):
        images = [images]
    if caption is None or isinstance(caption, str):
        return [(image, caption) for image in images]
    captions = list(caption)
    if len(captions) != len(images):
        raise UsageError(f"log_image got {len(images)} images and {len(captions)} captions")
    return list(zip(images, captions))


def table_text(
    columns: Optional[Iterable[Any]], data: Optional[Iterable[Iterable[Any]]], dataframe: Any
) -> str:
    """A table (W&B's ``log_table`` arguments) as text: a tab-separated header line, then one line
    per row; "" for no table."""
    if dataframe is not None:
        columns = [str(c) for c in dataframe.columns]
        data = dataframe.itertuples(index=False)
    lines = ["\t".join(str(c) for c in columns)] if columns else []
    lines += ["\t".join(str(v) for v in row) for row in (data or [])]
    return "\n".join(lines)


def parameter_count(tensors: Iterable[Any]) -> int:
    """The number of values in ``tensors`` (anything with a ``shape``: Keras variables, torch
    parameters), without asking the framework to compute anything."""
    total = 0
    for tensor in tensors:
        n = 1
        for d in tensor.shape:
            n *= int(d)
        total += n
    return total
