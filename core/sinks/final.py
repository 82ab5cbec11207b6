"""The final-record tracker: feeds :class:`epochline.epochs.FinalTracker` with a run's events.

It runs first on the dispatcher thread (``tryfirst``) and prints nothing; at finish the run builds
its one final record from this tracker (see :meth:`epochline.Run.finish`). A run re-opened by a
later stage in the same process (test after fit) continues from the tracker its earlier stage left,
so evaluations and an explicit best epoch of the fit still count.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Dict, Optional, Sequence

from .. import events as ev
from ..epochs import FinalTracker
from ..plugins import hookimpl
from ..runinfo import RunInfo

NAME = "final"
_CARRIED: OrderedDict[str, FinalTracker] = OrderedDict()
_CARRY_MAX = 32


def tracker(run: RunInfo) -> Optional[FinalTracker]:
    """The run's tracker (None before its first event was dispatched)."""
    return run.state.get(NAME)


def _new(run: RunInfo) -> FinalTracker:
    carried = _CARRIED.pop(run.id, None)
    if carried is not None:
        return carried
    return FinalTracker(run.prior_epochs)


def _on_started(state: FinalTracker, event: ev.RunStarted) -> None:
    if event.total_epochs is not None:
        state.total_epochs = event.total_epochs


def _on_epoch(state: FinalTracker, event: ev.EpochEnd) -> None:
    state.epoch(event.epoch, event.values, event.total_epochs)


def _on_evaluation(state: FinalTracker, event: ev.Evaluation) -> None:
    state.evaluation(event.stage, event.values, event.epoch, event.step)


def _on_best_epoch(state: FinalTracker, event: ev.BestEpoch) -> None:
    state.best_epoch = event.epoch


def _on_primary(state: FinalTracker, event: ev.PrimaryMetric) -> None:
    state.primary = (event.name, event.mode)


def _on_summary(state: FinalTracker, event: ev.SummaryUpdate) -> None:
    if not event.final:
        state.summary.update(event.values)


_HANDLERS: Dict[type, Callable[[FinalTracker, Any], None]] = {
    ev.RunStarted: _on_started,
    ev.EpochEnd: _on_epoch,
    ev.Evaluation: _on_evaluation,
    ev.BestEpoch: _on_best_epoch,
    ev.PrimaryMetric: _on_primary,
    ev.SummaryUpdate: _on_summary,
}
"""A few events per epoch; the per-step points (``Metrics``) are not looked at."""


@hookimpl(tryfirst=True)
def epochline_events(run: RunInfo, events: Sequence[ev.Event]) -> None:
    state = run.sink_state(NAME, _new)
    handlers = _HANDLERS
    for event in events:
        handler = handlers.get(type(event))
        if handler is not None:
            handler(state, event)


@hookimpl
def epochline_run_closed(run: RunInfo) -> None:
    state = run.state.pop(NAME, None)
    if state is not None:
        _CARRIED[run.id] = state
        while len(_CARRIED) > _CARRY_MAX:
            _CARRIED.popitem(last=False)
