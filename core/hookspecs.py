"""Hook specifications: what a sink, a storage backend or a third-party plugin may implement.

A plugin is a plain module or object with functions marked ``@epochline.hookimpl``; it implements
only the hooks it needs. Built-in sinks (:mod:`epochline.sinks.store`, the line emitters) are
plugins like any other. Third-party packages register theirs in the ``epochline`` entry-point group
or at run time with :func:`epochline.register`.

Sink hooks run on the run's background dispatcher thread, never on the training's hot path. A
sink that raises does not stop the other sinks nor the training: the run warns once per sink and
error kind, counts the events that sink lost, and reports the count at finish.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence

import pluggy

if TYPE_CHECKING:
    from .events import Event
    from .runinfo import RunInfo
    from .store import StoreBackend

hookspec = pluggy.HookspecMarker("epochline")


@hookspec(firstresult=True)
def epochline_store_backend(uri: str, create: bool) -> Optional["StoreBackend"]:
    """Open the storage backend for ``uri``, or return ``None`` if the URI is not yours.

    ``uri`` is what the user gave (``store=`` or ``EPOCHLINE_STORE``): a plain directory path or a
    URI whose scheme names the backend (``sqlite:///path/to/dir``, ``postgresql://...``). The first
    plugin that returns a backend wins, so a third-party backend only answers for its own scheme.
    ``create`` is True when a run starts (make the store if it is missing) and False when the store
    is opened for reading: then create nothing and raise
    :class:`~epochline.errors.StoreNotFoundError` if there is no store.
    """


@hookspec
def epochline_events(run: "RunInfo", events: Sequence["Event"]) -> None:
    """Receive a batch of events of one run, in the order they were logged.

    Called on the run's dispatcher thread, at least once per flush interval while events arrive,
    and a last time when the run finishes. ``run`` says which run, where it is stored and which
    emitters are on. Ignore the event types you do not handle.
    """


@hookspec
def epochline_run_closed(run: "RunInfo") -> None:
    """The run has finished and every event has been dispatched: release per-run state."""
