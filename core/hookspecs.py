"""Hook specifications: what a sink, a storage backend or a third-party plugin may implement.

A plugin is a plain module or object with functions marked ``@epochline.hookimpl``; it implements
only the hooks it needs, and takes only the arguments it needs (pluggy passes them by name). Built-in
sinks (:mod:`epochline.sinks.store`, the line emitters) are plugins like any other. Third-party
packages register theirs in the ``epochline`` entry-point group or at run time with
:func:`epochline.register`.

**Threads.** The sink hooks (:func:`epochline_events`, :func:`epochline_run_closed`) run on the
run's background dispatcher thread, one thread per run, never on the training's hot path; for one
run they are never called concurrently. :func:`epochline_store_backend` runs on the thread that calls
``epochline.init()`` or ``epochline.open()``.

**Order.** Within a run a sink can rely on this order of events: :class:`~epochline.events.RunStarted`
first (also when a stored run is resumed), then the events in the order the training thread logged
them, with a :class:`~epochline.events.Heartbeat` about every five seconds while the run is open, and
:class:`~epochline.events.RunFinished` last; then :func:`epochline_run_closed` once. Sinks are called
in pluggy's order (``tryfirst`` sinks first, then the most recently registered), each on its own.

**Failures.** A sink that raises does not stop the other sinks nor the training: the run warns once
per sink and error kind, counts the events that sink lost, and reports the count at finish.

**Wrappers.** ``@hookimpl(wrapper=True)`` / ``hookwrapper=True`` on :func:`epochline_events` or
:func:`epochline_run_closed` is refused by :func:`epochline.register` (and an entry-point plugin that
does it is left out with a warning): the dispatcher calls each sink separately, so there is no single
call for a wrapper to wrap. Wrappers on :func:`epochline_store_backend` work as in pluggy.
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
def epochline_store_backend(uri: str, create: bool) -> Optional[StoreBackend]:
    """Open the storage backend for ``uri``, or return ``None`` if the URI is not yours.

    The first plugin that returns a backend wins, so a third-party backend answers only for its own
    scheme (the built-in SQLite backend, which takes plain paths, is asked last).

    :param uri: What the user gave (``store=`` or ``EPOCHLINE_STORE``): a plain directory path or a
        URI whose scheme names the backend (``sqlite:///path/to/dir``, ``postgresql://...``).
    :param create: True when a run starts: make the store if it is missing. False when the store is
        opened for reading (``epochline.open()``, the CLI): create nothing, and raise
        :class:`~epochline.errors.StoreNotFoundError` if there is no store.
    :returns: An object satisfying :class:`epochline.StoreBackend` (for reading, also
        :class:`epochline.store.ReadableBackend`), or ``None``.
    """


@hookspec
def epochline_events(run: RunInfo, events: Sequence[Event]) -> None:
    """Receive a batch of events of one run, in the order they were logged.

    Called on the run's dispatcher thread at least once per flush interval while events arrive, and
    a last time with the batch that ends with :class:`~epochline.events.RunFinished` (see the module
    docstring for the order). Ignore the event types you do not handle: new ones may be added.

    :param run: Which run: its id, path, store and the line emitters that are on
        (:class:`~epochline.runinfo.RunInfo`, immutable but for :meth:`~epochline.runinfo.RunInfo.sink_state`,
        where a sink keeps its per-run state). The run's name and number of epochs are not in it:
        they come in the events (``RunStarted``, ``Rename``, ``EpochEnd``).
    :param events: The batch (a sequence of immutable :mod:`epochline.events`); do not keep a
        reference to the sequence itself after returning.
    """


@hookspec
def epochline_run_closed(run: RunInfo) -> None:
    """The run has finished and every event has been dispatched: release per-run state.

    Called once per run, on the dispatcher thread, after the last :func:`epochline_events` call.

    :param run: The run that closed (the same object the event batches came with).
    """
