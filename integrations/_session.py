"""The run one adapter object records into, across the framework calls of a training.

Every adapter asks the same questions of its run; they are answered here once, so that an
adapter module is only the translation of its framework's calls:

* **Which run.** The user's (``run=``: never started, re-opened or finished by the adapter), the
  one open now, or a new one (:meth:`Session.start`, the next training).
* **A later stage** (validate/test/evaluate/predict after the training finished the run) re-opens
  the same run by id (:meth:`Session.current`), and its values join the last epoch's record
  (:meth:`Session.add_to_last`), read back from the store when another process recorded it.
* **A framework call in progress** is a run phase (:meth:`Session.begin`): a run left unfinished
  inside it ends ``failed``.
* **How it ends**: with the framework call (:meth:`Session.end`), unless the user owns the run or a
  ``with`` block scopes it (:meth:`Session.scope`: the block's end ends it, with the exception in
  flight, in-process).

One :class:`Session` per adapter object; it runs on the training thread, as the adapter does.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Dict, Iterator, Mapping, Optional

import epochline

from ._checkpoints import Checkpoints
from ._support import EpochAccumulator, end_run, leave_to_launcher, open_run, prior_record, receive_held_lines

__all__ = ["Session", "Reopening"]


class Session:
    """The run of one adapter object: ``framework`` is recorded with the run; ``options`` are the
    adapter's checked :func:`epochline.init` keywords; ``run`` is the user's own run, if given."""

    def __init__(self, framework: str, options: Mapping[str, Any], run: Any = None) -> None:
        self.framework = framework
        self.options: Dict[str, Any] = dict(options)
        self.given = run
        self.run: Any = run
        self.phase: Any = None
        self.scoped = False  # inside the adapter's `with` block: the block ends the run
        self.worker = False  # a spawned worker process: its launcher ends a failed run
        self.handover: Optional[str] = None  # where a worker leaves its final lines (the launcher's)
        self.epochs = EpochAccumulator()
        self.checkpoints = Checkpoints()

    @property
    def owned(self) -> bool:
        """Whether the adapter started the run (and so ends it); False for the user's ``run=``."""
        return self.given is None

    @property
    def live(self) -> Optional[epochline.Run]:
        """The run if it records here and now: an open :class:`epochline.Run`, not a no-op run."""
        run = self.run
        return run if isinstance(run, epochline.Run) and not run.finished else None

    def start(self, **options: Any) -> Any:
        """A new run for the next training (``options`` add to the adapter's); the user's run stays."""
        if self.given is not None:
            return self.given
        if self.run is not None:  # what the last run gathered is not this one's
            self.epochs, self.checkpoints = EpochAccumulator(), Checkpoints()
        self.run = self._open(**options)
        return self.run

    def current(self, **options: Any) -> Any:
        """The run to record into: the open one, a new one if there is none yet, or the finished
        one re-opened by id (a later stage; its tags and params were recorded when it started)."""
        run = self.run
        if run is None:
            return self.start(**options)
        if run.finished and self.given is None:
            self.run = run = self._open(**options, reopen=run.id)
        return run

    def _open(self, **options: Any) -> Any:
        """``open_run`` with the adapter's options; a worker's run is left to its launcher."""
        run = open_run(self.framework, **{**self.options, **options})
        if self.worker:
            leave_to_launcher(run, self.handover)
        return run

    def in_worker(self) -> None:
        """This process is a worker that another process launched (Lightning's ``ddp_spawn``): the
        launcher ends a failed run and prints the final lines once for all stages (see
        :func:`~epochline.integrations._support.leave_to_launcher`). The user's run is theirs."""
        if self.given is None:
            self.worker = True
            leave_to_launcher(self.run, self.handover)

    def last_epoch(self) -> int:
        """The last epoch recorded (at least 1). A run another process recorded (a later stage in
        a new process) continues from its stored last record."""
        run, epochs = self.run, self.epochs
        if epochs.closed == 0 and epochs.epoch == 0 and isinstance(run, epochline.Run) and run.epochs_done:
            epochs.resume(run.epochs_done, prior_record(run, run.epochs_done))
        return max(epochs.epoch, 1)

    def add_to_last(self, values: Mapping[str, Any], total_epochs: Optional[int] = None) -> None:
        """A later stage's values join the last epoch's record, which is written again (never
        replacing an earlier epoch's values)."""
        self.last_epoch()
        self.epochs.add_to_last(self.run, values, total_epochs)

    def __getstate__(self) -> Dict[str, Any]:
        """A pickled session (Lightning's ``ddp_spawn`` pickles its loggers) carries no run: its
        threads and connections stay in this process, and the other process opens it by id.
        With a run of its own it carries the file where that process hands back its final lines
        (:func:`epochline.protocol.receive_held_lines`), so they are printed here, once."""
        state = {**self.__dict__, "run": None, "given": None, "phase": None}
        if self.given is None and self.options.get("run_id"):
            state["handover"] = receive_held_lines(self.options["run_id"])
        return state

    def begin(self, phase: str) -> None:
        """A framework call starts (``"fit"``, ``"train"``, ``"evaluate"``): until :meth:`end`, a
        run left unfinished ends ``failed``. The user's run gets no phase of ours."""
        if self.given is None and self.live is not None:
            self.phase = self.run.phase(phase)

    def end(
        self,
        exc: Optional[BaseException] = None,
        *,
        status: Optional[str] = None,
        reason: Optional[str] = None,
        hold_lines: bool = False,
        finish: bool = True,
    ) -> None:
        """The framework call ended: its phase ends, and (``finish``) the run with it, unless the
        user owns the run or a ``with`` block scopes it. ``exc``/``status``/``reason``/
        ``hold_lines``: as :func:`~epochline.integrations._support.end_run`."""
        if self.phase is not None:
            self.phase.end()
            self.phase = None
        if finish and self.given is None and not self.scoped:
            end_run(self.run, exc, status=status, reason=reason, hold_lines=hold_lines)

    @contextlib.contextmanager
    def scope(self, finish: Callable[[str, Optional[str]], None], *, scoped: bool = True) -> Iterator[None]:
        """The ``with`` block is the run: an exception ends it at once (failed, or interrupted for
        Ctrl-C, with its reason, in-process) and goes on. A block that ends normally finishes a run
        still open by ``finish(status, reason)``: ``completed``, or ``failed`` if a framework call
        inside it did not reach its end. ``scoped``: framework calls inside the block leave the
        run open for the block to end."""
        self.scoped = scoped
        try:
            yield
        except BaseException as exc:
            self.scoped = False
            self.phase = None
            if self.given is None:
                end_run(self.run, exc)
            raise
        self.scoped = False
        run = self.live
        if self.given is not None or run is None:
            return
        if run.in_progress:
            self.phase = None
            reason = (
                f"{run.in_progress} did not reach its end (the exception was caught inside the with block)"
            )
            finish("failed", reason)
        else:
            finish("completed", None)


class Reopening:
    """What an adapter hands out for a run that a stage finished: reading it does not re-open it,
    any other use re-opens it by id (``reopen()``).

    Lightning reads ``logger.experiment`` when each stage sets up, so re-opening at that read
    would restart (and re-finish) the run even for a ``predict`` that logs nothing.
    """

    _READ_ONLY = frozenset(("id", "name", "path", "store_uri", "status", "reason", "finished", "step"))
    _READ_ONLY |= {"params", "fingerprint", "best", "lost", "epochs_done", "accuracy_scale"}

    def __init__(self, run: Any, reopen: Callable[[], Any]) -> None:
        self._run, self._open = run, reopen

    def __getattr__(self, name: str) -> Any:
        if name in self._READ_ONLY or name.startswith("_"):
            return getattr(self._run, name)
        return getattr(self._open(), name)

    def __repr__(self) -> str:
        return f"<epochline run {self._run.id} (finished; re-opened on use)>"
