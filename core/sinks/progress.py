"""The PROGRESS emitter: ``PROGRESS: {json}`` lines on stdout (see docs/protocols.md).

Acts only for runs whose ``emit`` includes ``progress``. One line per epoch record
(``run.end_epoch``) with ``epoch`` (1-indexed), ``total_epochs`` when known, the loss/accuracy
fields the record has (accuracies in percent, as :mod:`epochline.epochs` made them) and
``status: "training"``. Non-finite values are omitted (the consumer drops lines that are not
strict JSON and reads only JSON numbers).

At finish, one last line from the run's final record (the same record the summary and the Kogu
``iteration -1`` line hold): a completed run prints ``status: "completed"``, ``epoch`` and
``total_epochs`` = the epochs actually run (an early-stopped run reads 100 %), the final accuracy
as ``test_accuracy`` (the record's test > val > train accuracy: the test stage's when one ran,
else the best epoch's) and the losses of that same record. Consumers take the final accuracy from
the *last* line that carries one, so nothing is printed after it. A run that did not complete
prints a last line whose ``status`` is its status (``failed``, ``interrupted``, ``crashed``).
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

from .. import events as ev
from ..epochs import reported_accuracy
from ..plugins import hookimpl
from ..protocol import (
    LOSS_FIELDS,
    PROGRESS_FIELDS,
    drop_held_lines,
    hold_line,
    progress_line,
    progress_number,
    write_line,
)
from ..runinfo import RunInfo

NAME = "progress"


class _State:
    def __init__(self, run: RunInfo) -> None:
        # a resumed run continues from the records stored before (best epoch, last epoch)
        self.last_epoch = max(run.prior_epochs, default=0)
        self.total: Optional[int] = None  # from RunStarted, then from each EpochEnd
        self.final: Dict[str, Any] = {}
        self.finished = False


def _head(state: _State, epoch: int) -> Dict[str, Any]:
    line: Dict[str, Any] = {"epoch": epoch}
    if state.total is not None:
        line["total_epochs"] = state.total
    return line


def epoch_line(state: _State, event: ev.EpochEnd) -> Dict[str, Any]:
    line = _head(state, event.epoch)
    for field in PROGRESS_FIELDS:
        value = progress_number(event.values.get(field))
        if value is not None:
            line[field] = value
    line["status"] = "training"
    return line


def final_line(state: _State, status: str) -> Dict[str, Any]:
    final = state.final
    if status != "completed":
        line = _head(state, state.last_epoch)
        line["status"] = status
        return line
    total = final.get("total_epochs")
    if type(total) is int and total >= 1:
        state.total = total
    line = _head(state, state.last_epoch)
    for loss in LOSS_FIELDS:
        value = progress_number(final.get(loss))
        if value is not None:
            line[loss] = value
    field = reported_accuracy(final)
    if field is not None:
        line["test_accuracy"] = progress_number(final[field])
    line["status"] = "completed"
    return line


@hookimpl
def epochline_events(run: RunInfo, events: Sequence[ev.Event]) -> None:
    if NAME not in run.emit:
        return
    state = run.sink_state(NAME, _State)
    for event in events:
        if isinstance(event, ev.RunStarted):
            state.total = event.total_epochs
            if event.resumed:  # a later stage re-opened the run: it prints the final line again
                drop_held_lines(run.id)
        elif isinstance(event, ev.EpochEnd):
            if event.total_epochs is not None:
                state.total = event.total_epochs
            state.last_epoch = max(state.last_epoch, event.epoch)
            write_line(run.id, progress_line(epoch_line(state, event)))
        elif isinstance(event, ev.SummaryUpdate):
            if event.final:
                state.final = dict(event.values)
        elif isinstance(event, ev.RunFinished) and not state.finished:
            state.finished = True
            line = progress_line(final_line(state, event.status))
            if event.hold_lines:
                hold_line(run.id, line)
            else:
                write_line(run.id, line)


@hookimpl
def epochline_run_closed(run: RunInfo) -> None:
    run.state.pop(NAME, None)
