"""The background dispatcher: the only place where a run's events meet sinks and I/O.

The training thread appends events to a deque (no lock, no I/O) and returns. One daemon thread per
run wakes at least every ``flush_interval`` seconds, takes everything queued and hands it, as one
batch, to every sink's ``epochline_events`` hook. Each sink is called on its own: one that raises
loses that batch (counted, warned about once per sink and error kind) while the others and the
training go on.

The queue is bounded by what it holds, not by calls: each event costs its values (one per metric
value, one for any other event; :func:`epochline.events.weight`) plus ``EVENT_COST`` for the event
itself, so one ``log`` of 1,000 keys costs 1,004 and one of a single key 5. Measured, that bounds
the queue's memory at about 40 MB whatever the shape of the calls (docs/reliability.md).
Back-pressure: when ``max_queue`` is reached, the caller blocks until the writer has caught up to
half of that, as long as the writer is making progress. When the writer has been stuck on one
batch for more than ``STALL_S`` (the store is down, full or locked by a process that does not
let go, and the writer is retrying; a store busy with other writers gets a minute), new
metric values, texts, histograms and heartbeats are dropped instead, counted, and reported at
finish: training never waits on a store that is away. Other events (start, params, tags, epoch
records, summary, finish) are always kept; they are few. See docs/reliability.md.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections import Counter, deque
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from . import events as ev
from .runinfo import RunInfo

FLUSH_INTERVAL_S = 1.0
HEARTBEAT_INTERVAL_S = 5.0
MAX_QUEUE = 500_000
"""What may wait for the writer, in values plus ``EVENT_COST`` per event (docs/reliability.md)."""
EVENT_COST = 4
"""An event's own memory in values: a one-value event takes about five times one value of a wide one."""
MAX_BATCH = 20_000
"""Events per batch handed to the sinks (and values per batch: at most ``MAX_BATCH_VALUES``)."""
MAX_BATCH_VALUES = 50_000
STALL_S = 5.0
"""A writer busy this long on one batch is stuck (store away): a full queue then drops, not blocks."""
CLOSE_TIMEOUT_S = 120.0
_SHEDDABLE = frozenset((ev.Metrics, ev.Text, ev.Histogram, ev.Heartbeat))


class Dispatcher:
    def __init__(
        self,
        info: RunInfo,
        hook_caller: Any,
        *,
        flush_interval: float = FLUSH_INTERVAL_S,
        max_queue: int = MAX_QUEUE,
    ):
        self.info = info
        # pluggy lists implementations in the reverse of its calling order (trylast ones first,
        # tryfirst ones last) and calls them from the end of that list; reversing it gives the order
        # pluggy itself would call them in. Each sink is called on its own (see _call) so one that
        # raises cannot lose the others' events; that is why wrappers are refused at register().
        self._impls = list(reversed(hook_caller.epochline_events.get_hookimpls()))
        self._closed_impls = list(reversed(hook_caller.epochline_run_closed.get_hookimpls()))
        self._queue: deque = deque()
        self._max_queue = max_queue
        self._in = 0  # cost queued so far (training threads only)
        self._out = 0  # cost handed to every sink so far (dispatcher thread only)
        self.logged = 0
        """Values queued (what the finish report counts losses against)."""
        self._busy_since: Optional[float] = None  # when the batch being dispatched was taken
        self.dropped = 0
        """Values dropped because the queue was full while the writer was stuck."""
        self._interval = flush_interval
        self._wake = threading.Event()
        self._room = threading.Condition()
        self._closing = False
        self._final: Optional[Callable[[int], ev.Event]] = None
        self.lost: Counter = Counter()
        self.errors: Dict[Tuple[str, str], str] = {}
        self._parking = False
        self._closed = False
        self._thread = self._start_writer()

    def _start_writer(self) -> threading.Thread:
        thread = _Writer(self)
        thread.start()
        return thread

    def park(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Write everything queued, then let the writer thread end (what a thread-leak check's
        ``thread.stop()`` calls). The run stays open: the next ``nudge`` (epoch end), back-pressure
        wait or ``close`` starts a new writer for the events logged meanwhile."""
        if self._closing or not self._thread.is_alive():
            return
        self._parking = True
        self._wake.set()
        self._thread.join(timeout)

    def _ensure_writer(self) -> None:
        if not self._thread.is_alive():
            self._parking = False
            self._thread = self._start_writer()

    # -- training thread ---------------------------------------------------------------
    def put(self, event: ev.Event, weight: int = 1) -> None:
        """Queue ``event``; ``weight`` is :func:`~epochline.events.weight` of it (1 but for metrics)."""
        cost = weight + EVENT_COST
        if self._in - self._out + cost > self._max_queue and not self._room_for(event, weight, cost):
            return
        self._queue.append(event)
        self._in += cost
        self.logged += weight

    def nudge(self) -> None:
        """Dispatch soon rather than at the next interval (epoch ends, texts for the console)."""
        if self._parking:
            self._ensure_writer()
        self._wake.set()

    def _room_for(self, event: ev.Event, weight: int, cost: int) -> bool:
        """Block until the writer has made room, or drop ``event`` (False) when it is stuck."""
        self._ensure_writer()  # a parked writer (see park) starts again
        if type(event) not in _SHEDDABLE:
            return True
        self._wake.set()
        with self._room:
            while self._in - self._out and self._in - self._out + cost > self._max_queue // 2:
                busy = self._busy_since
                # a store busy with other writers gets longer than one that is away
                patience = getattr(self.info.store, "patience_s", None) or STALL_S
                if not self._thread.is_alive() or (busy is not None and time.time() - busy > patience):
                    self._drop(weight, patience)
                    return False
                self._room.wait(0.05)
        return True

    def _drop(self, weight: int, patience: float) -> None:
        if not self.dropped:
            warnings.warn(
                f"epochline: run {self.info.id}: the store has taken no write for more than "
                f"{patience:g} s and its queue is full; newer values are dropped and "
                "counted until it is back (training goes on; see the finish report)",
                RuntimeWarning,
                stacklevel=4,
            )
        self.dropped += weight

    def close(self, final: Callable[[int], Any], timeout: float = CLOSE_TIMEOUT_S) -> bool:
        """Dispatch everything queued, then ``final(lost_so_far)`` (an event or a list of events,
        built on the dispatcher thread once every earlier event was dispatched); wait for the
        thread to end."""
        self._final = final
        self._closing = True
        self._parking = False
        for _ in range(2):  # twice: a writer that was parking as close() began has ended without it
            self._ensure_writer()
            self._wake.set()
            self._thread.join(timeout)
            if self._closed or self._thread.is_alive():
                break
        return not self._thread.is_alive()

    # -- dispatcher thread ---------------------------------------------------------------
    def _loop(self) -> None:
        next_heartbeat = time.time() + HEARTBEAT_INTERVAL_S
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            closing = self._closing
            self._drain()
            now = time.time()
            if now >= next_heartbeat and not closing:
                self._dispatch([ev.Heartbeat(run_id=self.info.id, wall_time=now)])
                next_heartbeat = now + HEARTBEAT_INTERVAL_S
            if closing and not self._queue:
                break
            if self._parking and not self._closing and not self._queue:
                return  # parked: the run goes on, a later nudge or close starts a new writer
        if self._final is not None:
            final = self._final(self.total_lost)  # one event, or the last few (final record first)
            self._dispatch(list(final) if isinstance(final, (list, tuple)) else [final])
        self._closed = True
        for impl in self._closed_impls:
            self._call(impl, {"run": self.info}, 0)

    def _drain(self) -> None:
        queue = self._queue
        pop = queue.popleft
        weight = ev.weight
        while queue:
            batch: List[ev.Event] = []
            append = batch.append
            values = 0
            for _ in range(min(len(queue), MAX_BATCH)):
                event = pop()
                append(event)
                values += weight(event)
                if values >= MAX_BATCH_VALUES:
                    break
            self._dispatch(batch, values)
            # after the write: the bound covers the batch in flight too
            self._out += values + EVENT_COST * len(batch)
            with self._room:
                self._room.notify_all()

    def _dispatch(self, batch: Sequence[ev.Event], values: Optional[int] = None) -> None:
        kwargs = {"run": self.info, "events": batch}
        count = len(batch) if values is None else values
        self._busy_since = time.time()
        try:
            for impl in self._impls:
                self._call(impl, kwargs, count)
        finally:
            self._busy_since = None

    def _call(self, impl: Any, kwargs: Dict[str, Any], count: int) -> None:
        try:
            impl.function(*[kwargs[name] for name in impl.argnames])
        except Exception as exc:  # a sink must never take down the others or the training
            name = impl.plugin_name
            # a sink that wrote part of the batch says how much it dropped (PartialWrite.lost)
            self.lost[name] += getattr(exc, "lost", count)
            key = (name, type(exc).__name__)
            if key not in self.errors:
                self.errors[key] = str(exc)
                warnings.warn(
                    f"epochline: sink {name!r} failed for run {self.info.id} ({type(exc).__name__}: "
                    f"{exc}); training goes on, its lost events are counted and reported at finish",
                    RuntimeWarning,
                    stacklevel=2,
                )

    @property
    def total_lost(self) -> int:
        return sum(self.lost.values()) + self.dropped

    def report(self) -> str:
        """One line per sink that lost values, and the queue's overflow, for the finish report."""
        lines = []
        if self.dropped:
            lines.append(f"queue full while the store did not answer: {self.dropped} values dropped")
        for name, count in self.lost.items():
            kinds = ", ".join(f"{k[1]}: {msg}" for k, msg in self.errors.items() if k[0] == name)
            lines.append(f"{name}: {count} values lost ({kinds})")
        return "; ".join(lines)


class _Writer(threading.Thread):
    """The dispatcher's daemon thread. ``stop()`` parks it (see :meth:`Dispatcher.park`): test
    harnesses such as Lightning's thread-leak check stop daemon threads that way."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        super().__init__(target=dispatcher._loop, name=f"epochline-{dispatcher.info.id}", daemon=True)
        self._dispatcher = dispatcher

    def stop(self) -> None:
        self._dispatcher.park()
