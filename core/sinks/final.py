"""The final-record tracker: feeds :class:`epochline.epochs.FinalTracker` with a run's events.

It runs first on the dispatcher thread (``tryfirst``) and prints nothing; at finish the run builds
its one final record from this tracker (see :meth:`epochline.Run.finish`). A run re-opened by a
later stage in the same process (test after fit) continues from the tracker its earlier stage left,
so evaluations and an explicit best epoch of the fit still count.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Optional, Sequence

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


@hookimpl(tryfirst=True)
def epochline_events(run: RunInfo, events: Sequence[ev.Event]) -> None:
    state = run.sink_state(NAME, _new)
    for event in events:
        if isinstance(event, ev.Metrics):
            state.metrics(event.step, event.values)
        elif isinstance(event, ev.RunStarted):
            if event.total_epochs is not None:
                state.total_epochs = event.total_epochs
        elif isinstance(event, ev.EpochEnd):
            state.epoch(event.epoch, event.values, event.total_epochs)
        elif isinstance(event, ev.Evaluation):
            state.evaluation(event.stage, event.values, event.epoch, event.step)
        elif isinstance(event, ev.BestEpoch):
            state.best_epoch = event.epoch
        elif isinstance(event, ev.PrimaryMetric):
            state.primary = (event.name, event.mode)
        elif isinstance(event, ev.SummaryUpdate) and not event.final:
            state.summary.update(event.values)


@hookimpl
def epochline_run_closed(run: RunInfo) -> None:
    state = run.state.pop(NAME, None)
    if state is not None:
        _CARRIED[run.id] = state
        while len(_CARRIED) > _CARRY_MAX:
            _CARRIED.popitem(last=False)
