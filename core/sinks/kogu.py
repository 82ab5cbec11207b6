"""The Kogu emitter: the run as Kogu JSON lines on stdout (see docs/protocols.md).

Acts only for runs whose ``emit`` includes ``kogu``. Runs on the dispatcher thread: each line is
printed to ``sys.stdout`` as it is at print time (so redirections and pytest's capture work) and
flushed at once. Keys follow :func:`epochline.protocol.kogu_key`, values the non-finite rule.

Iteration numbering (``EPOCHLINE_KOGU_ITERATION``, read when the run's first batch arrives):

* ``epoch`` (default): one ``metric`` object per epoch record (``run.end_epoch``) with
  ``iteration`` = the 1-indexed epoch; step-level ``run.log`` values are not printed.
* ``step``: one ``metric`` object per ``run.log`` call with ``iteration`` = its step; epoch
  records are not printed. The two numberings are never mixed in one run.

At finish the run's final record (:meth:`epochline.epochs.FinalTracker.final`: the best epoch's
values under the per-epoch keys, accuracies in percent, ``best_epoch``, ``total_epochs``, the test
stage's ``test_*`` values and what ``run.summary`` was given) goes out once with iteration ``-1``;
a run that did not complete then prints ``fail`` with ``"<status>: <reason>"``. Comment text is
printed as Kogu's helper library prints it (newlines become spaces).
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Callable, Dict, Sequence, Union

from .. import events as ev
from ..epochs import canonical_field
from ..plugins import hookimpl
from ..protocol import (
    FINAL_ITERATION,
    KeyMapper,
    comment_text,
    drop_held_lines,
    dumps_line,
    hold_line,
    kogu_mapping,
    write_line,
)
from ..runinfo import RunInfo

NAME = "kogu"
ITERATION_ENV = "EPOCHLINE_KOGU_ITERATION"
MODES = ("epoch", "step")
FAMILIES = (("loss", "loss"), ("accuracy", "accuracy"))


def _mode() -> str:
    mode = os.environ.get(ITERATION_ENV, "epoch").strip().lower() or "epoch"
    if mode not in MODES:
        warnings.warn(
            f"epochline: {ITERATION_ENV}={mode!r} is not one of {', '.join(MODES)}; using 'epoch'",
            RuntimeWarning,
            stacklevel=2,
        )
        mode = "epoch"
    return mode


class _State:
    def __init__(self, run: RunInfo) -> None:
        self.mode = _mode()
        self.params = KeyMapper()
        self.metrics = KeyMapper()
        self.families: Dict[str, list] = {}  # family -> its series, in declaration order
        self.run_id = run.id
        self.final: Dict[str, Any] = {}
        self.finished = False
        for _, values in sorted(run.prior_epochs.items()):  # a resumed run: same keys, plots known
            for name, value in values.items():
                self.metrics(name)
                if type(value) is not bool and isinstance(value, (int, float)):
                    family = _family(name, ())
                    members = self.families.setdefault(family, []) if family is not None else None
                    if members is not None and self.metrics(name) not in members:
                        members.append(self.metrics(name))


def _print(state: _State, obj: Any) -> None:
    write_line(state.run_id, dumps_line(obj))


def _family(name: str, percent: Sequence[str]) -> str | None:
    field = canonical_field(name)
    if field is None:
        lowered = name.lower()
        if lowered.endswith("loss"):
            return "loss"
        return "accuracy" if name in percent else None
    return "loss" if field.endswith("_loss") else "accuracy"


def _declare_families(
    state: _State, names: Sequence[str], values: Dict[str, Any], percent: Sequence[str]
) -> None:
    """Declare the loss/accuracy plots at their first record; declare a plot again, with all its
    series so far, when a series of its family first appears later (``val_*`` of an epoch that
    validates when epoch 1 did not: Keras ``validation_freq``, Lightning ``check_val_every_n_epoch``,
    transformers ``eval_steps`` longer than an epoch)."""
    grown: set = set()
    for name in names:
        value = values[name]
        if type(value) is bool or not isinstance(value, (int, float)):
            continue
        family = _family(name, percent)
        if family is None:
            continue
        key = state.metrics(name)
        members = state.families.setdefault(family, [])
        if key not in members:
            members.append(key)
            grown.add(family)
    for family, _ in FAMILIES:
        if family in grown:
            label = "accuracy (%)" if family == "accuracy" and percent else family
            _print(
                state,
                {
                    "plot": {
                        "type": "line",
                        "name": family,
                        "y_label": label,
                        "metrics": list(state.families[family]),
                    }
                },
            )


def _metric(state: _State, iteration: int, values: Dict[str, Any], percent: Sequence[str] = ()) -> None:
    metrics = kogu_mapping(values, state.metrics)
    if not metrics:
        return
    _declare_families(state, list(values), values, percent)
    _print(state, {"metric": {"iteration": iteration, "metrics": metrics}})


# -- one handler per event type (like store/base.py's _WRITERS); other events print nothing --------
def _on_metrics(run: RunInfo, state: _State, event: ev.Metrics) -> None:
    if state.mode == "step":
        _metric(state, event.step, event.values)


def _on_epoch_end(run: RunInfo, state: _State, event: ev.EpochEnd) -> None:
    if state.mode == "epoch":
        _metric(state, event.epoch, event.values, event.percent)


def _on_params(run: RunInfo, state: _State, event: ev.Params) -> None:
    params = kogu_mapping(event.params, state.params, params=True)
    if params:
        _print(state, {"parameters": params})


def _on_run_started(run: RunInfo, state: _State, event: ev.RunStarted) -> None:
    if event.resumed:  # a later stage re-opened the run: it prints the final lines again
        drop_held_lines(run.id)
    if event.named:  # a generated name is not worth overriding Kogu's own
        _print(state, {"name": event.name})
    for tag in event.tags:
        _print(state, {"tag": tag})


def _on_media(run: RunInfo, state: _State, event: Union[ev.Image, ev.Artifact]) -> None:
    _print(state, {"upload": os.path.abspath(os.path.join(run.store.media_root, event.media))})


def _on_tag(run: RunInfo, state: _State, event: ev.Tag) -> None:
    _print(state, {"tag": event.tag})


def _on_untag(run: RunInfo, state: _State, event: ev.Untag) -> None:
    _print(state, {"untag": event.tag})


def _on_rename(run: RunInfo, state: _State, event: ev.Rename) -> None:
    _print(state, {"name": event.name})


def _on_comment(run: RunInfo, state: _State, event: ev.Comment) -> None:
    _print(state, {"comment": comment_text(event.text)})


def _on_plot(run: RunInfo, state: _State, event: ev.PlotDeclared) -> None:
    _print(
        state,
        {
            "plot": {
                "type": event.kind or "line",
                "name": event.name,
                "y_label": event.y_label,
                "metrics": [state.metrics(m) for m in event.metrics],
            }
        },
    )


def _on_summary(run: RunInfo, state: _State, event: ev.SummaryUpdate) -> None:
    if event.final:
        state.final = dict(event.values)


def _on_finished(run: RunInfo, state: _State, event: ev.RunFinished) -> None:
    if state.finished:
        return
    state.finished = True
    lines = []
    final = kogu_mapping(state.final, state.metrics)
    if final:
        lines.append(dumps_line({"metric": {"iteration": FINAL_ITERATION, "metrics": final}}))
    if event.status != "completed":
        reason = f"{event.status}: {event.reason}" if event.reason else event.status
        lines.append(dumps_line({"fail": reason}))
    for line in lines:
        if event.hold_lines:
            hold_line(run.id, line)
        else:
            write_line(run.id, line)


_HANDLERS: Dict[type, Callable[[RunInfo, _State, Any], None]] = {
    ev.Metrics: _on_metrics,
    ev.EpochEnd: _on_epoch_end,
    ev.Params: _on_params,
    ev.RunStarted: _on_run_started,
    ev.Image: _on_media,
    ev.Artifact: _on_media,
    ev.Tag: _on_tag,
    ev.Untag: _on_untag,
    ev.Rename: _on_rename,
    ev.Comment: _on_comment,
    ev.PlotDeclared: _on_plot,
    ev.SummaryUpdate: _on_summary,
    ev.RunFinished: _on_finished,
}


@hookimpl(tryfirst=True)
def epochline_events(run: RunInfo, events: Sequence[ev.Event]) -> None:
    """Print the batch as Kogu lines (tryfirst: PROGRESS lines, whose completed line must be the
    last one, are printed after these)."""
    if NAME not in run.emit:
        return
    state = run.sink_state(NAME, _State)
    handlers = _HANDLERS
    for event in events:
        handler = handlers.get(type(event))
        if handler is not None:
            handler(run, state, event)


@hookimpl
def epochline_run_closed(run: RunInfo) -> None:
    run.state.pop(NAME, None)
