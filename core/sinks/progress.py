"""The PROGRESS emitter: ``PROGRESS: {json}`` lines on stdout (see docs/protocols.md).

Acts only for runs whose ``emit`` includes ``progress``. One line per epoch record
(``run.end_epoch``) with ``epoch`` (1-indexed), ``total_epochs`` when known, the loss/accuracy
fields the record has (accuracies in percent, as :mod:`epochline.epochs` made them) and
``status: "training"``. Non-finite values are omitted (the consumer drops lines that are not
strict JSON and reads only JSON numbers).

At finish: a completed run prints one last line with ``status: "completed"``, the best accuracy
over the epochs seen in ``test_accuracy`` (the first of test > val > train accuracy that any epoch
has) and the losses of that best epoch. Consumers take the final accuracy from the *last* line
that carries one, so nothing is printed after it. A run that did not complete prints a last line
whose ``status`` is its status (``failed``, ``interrupted``, ``crashed``) and no completed line.
"""

from __future__ import annotations

import sys
from typing import Any, Dict, Optional, Sequence

from .. import events as ev
from ..plugins import hookimpl
from ..protocol import LOSS_FIELDS, PROGRESS_FIELDS, best_epoch, progress_line, progress_number
from ..runinfo import RunInfo

NAME = "progress"


def _print(obj: Dict[str, Any]) -> None:
    out = sys.stdout
    if out is None:
        return
    out.write(progress_line(obj) + "\n")
    out.flush()


class _State:
    def __init__(self, run: RunInfo) -> None:
        # a resumed run continues from the records stored before (best epoch, last epoch)
        self.records: Dict[int, Dict[str, Any]] = {e: dict(v) for e, v in run.prior_epochs.items()}
        self.last_epoch = max(self.records, default=0)
        self.total: Optional[int] = None  # from RunStarted, then from each EpochEnd
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
    line = _head(state, state.last_epoch)
    if status != "completed":
        line["status"] = status
        return line
    field, epoch = best_epoch(state.records)
    source = state.records.get(epoch if epoch is not None else state.last_epoch, {})
    for loss in LOSS_FIELDS:
        value = progress_number(source.get(loss))
        if value is not None:
            line[loss] = value
    if field is not None:
        line["test_accuracy"] = progress_number(source[field])
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
        elif isinstance(event, ev.EpochEnd):
            if event.total_epochs is not None:
                state.total = event.total_epochs
            state.records[event.epoch] = dict(event.values)
            state.last_epoch = max(state.last_epoch, event.epoch)
            _print(epoch_line(state, event))
        elif isinstance(event, ev.RunFinished) and not state.finished:
            state.finished = True
            _print(final_line(state, event.status))


@hookimpl
def epochline_run_closed(run: RunInfo) -> None:
    run.state.pop(NAME, None)
