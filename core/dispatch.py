"""The background dispatcher: the only place where a run's events meet sinks and I/O.

The training thread appends events to a deque (no lock, no I/O) and returns. One daemon thread per
run wakes at least every ``flush_interval`` seconds, takes everything queued and hands it, as one
batch, to every sink's ``epochline_events`` hook. Each sink is called on its own: one that raises
loses that batch (counted, warned about once per sink and error kind) while the others and the
training go on. When more than ``max_queue`` events wait, the caller blocks until the writer has
caught up: memory stays bounded and nothing is dropped silently.
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
MAX_QUEUE = 100_000
MAX_BATCH = 20_000
CLOSE_TIMEOUT_S = 120.0


class Dispatcher:
    def __init__(self, info: RunInfo, hook_caller: Any, *, flush_interval: float = FLUSH_INTERVAL_S,
                 max_queue: int = MAX_QUEUE):
        self.info = info
        # pluggy lists implementations in the reverse of its calling order (trylast ones first,
        # tryfirst ones last) and calls them from the end of that list; reversing it gives the order
        # pluggy itself would call them in. Each sink is called on its own (see _call) so one that
        # raises cannot lose the others' events; that is why wrappers are refused at register().
        self._impls = list(reversed(hook_caller.epochline_events.get_hookimpls()))
        self._closed_impls = list(reversed(hook_caller.epochline_run_closed.get_hookimpls()))
        self._queue: deque = deque()
        self._max_queue = max_queue
        self._interval = flush_interval
        self._wake = threading.Event()
        self._room = threading.Condition()
        self._closing = False
        self._final: Optional[Callable[[int], ev.Event]] = None
        self.lost: Counter = Counter()
        self.errors: Dict[Tuple[str, str], str] = {}
        self._thread = threading.Thread(target=self._loop, name=f"epochline-{info.id}", daemon=True)
        self._thread.start()

    # -- training thread ---------------------------------------------------------------
    def put(self, event: ev.Event) -> None:
        queue = self._queue
        queue.append(event)
        if len(queue) >= self._max_queue:
            self._wait_for_room()

    def nudge(self) -> None:
        """Dispatch soon rather than at the next interval (epoch ends, texts for the console)."""
        self._wake.set()

    def _wait_for_room(self) -> None:
        self._wake.set()
        with self._room:
            while len(self._queue) >= self._max_queue // 2 and self._thread.is_alive():
                self._room.wait(0.05)

    def close(self, final: Callable[[int], Any], timeout: float = CLOSE_TIMEOUT_S) -> bool:
        """Dispatch everything queued, then ``final(lost_so_far)`` (an event or a list of events,
        built on the dispatcher thread once every earlier event was dispatched); wait for the
        thread to end."""
        self._final = final
        self._closing = True
        self._wake.set()
        self._thread.join(timeout)
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
        if self._final is not None:
            final = self._final(self.total_lost)  # one event, or the last few (final record first)
            self._dispatch(list(final) if isinstance(final, (list, tuple)) else [final])
        for impl in self._closed_impls:
            self._call(impl, {"run": self.info}, 0)

    def _drain(self) -> None:
        queue = self._queue
        pop = queue.popleft
        while queue:
            batch: List[ev.Event] = []
            append = batch.append
            for _ in range(min(len(queue), MAX_BATCH)):
                append(pop())
            with self._room:
                self._room.notify_all()
            self._dispatch(batch)

    def _dispatch(self, batch: Sequence[ev.Event]) -> None:
        kwargs = {"run": self.info, "events": batch}
        for impl in self._impls:
            self._call(impl, kwargs, len(batch))

    def _call(self, impl: Any, kwargs: Dict[str, Any], count: int) -> None:
        try:
            impl.function(*[kwargs[name] for name in impl.argnames])
        except Exception as exc:  # a sink must never take down the others or the training
            name = impl.plugin_name
            self.lost[name] += count
            key = (name, type(exc).__name__)
            if key not in self.errors:
                self.errors[key] = str(exc)
                warnings.warn(
                    f"epochline: sink {name!r} failed for run {self.info.id} ({type(exc).__name__}: "
                    f"{exc}); training goes on, its lost events are counted and reported at finish",
                    RuntimeWarning, stacklevel=2)

    @property
    def total_lost(self) -> int:
        return sum(self.lost.values())

    def report(self) -> str:
        """One line per sink that lost events, for the finish report."""
        lines = []
        for name, count in self.lost.items():
            kinds = ", ".join(f"{k[1]}: {msg}" for k, msg in self.errors.items() if k[0] == name)
            lines.append(f"{name}: {count} events lost ({kinds})")
        return "; ".join(lines)
