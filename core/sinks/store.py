"""The store sink: writes each batch of events to the run's storage backend in one transaction."""

from __future__ import annotations

from typing import Sequence

from ..events import Event
from ..plugins import hookimpl
from ..runinfo import RunInfo


@hookimpl
def epochline_events(run: RunInfo, events: Sequence[Event]) -> None:
    run.store.write(events)


@hookimpl
def epochline_run_closed(run: RunInfo) -> None:
    run.store.close()
