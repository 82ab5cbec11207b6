"""What a sink learns about the run whose events it receives.

A :class:`RunInfo` is built once when the run starts and never changes: it is read on the
dispatcher thread while the training thread goes on, so everything that changes during a run (its
name, the number of epochs) travels in events instead (:class:`~epochline.events.RunStarted`,
:class:`~epochline.events.Rename`, :class:`~epochline.events.EpochEnd`). The one mutable part is
the per-sink scratch space, :meth:`RunInfo.sink_state`, which only the dispatcher thread touches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, FrozenSet, Mapping

if TYPE_CHECKING:
    from .store import StoreBackend


@dataclass(frozen=True, eq=False)
class RunInfo:
    id: str
    path: str
    store: StoreBackend
    emit: FrozenSet[str] = frozenset()
    """Names of the line emitters that are on for this run (``kogu``, ``progress``)."""
    prior_epochs: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    """Epoch records stored before this process resumed the run ({epoch: values}), so emitters
    can continue where the earlier process stopped (best epoch, plots already declared)."""
    state: Dict[str, Any] = field(default_factory=dict)
    """Per-run scratch space for sinks, keyed by the sink's own name (use :meth:`sink_state`)."""

    def sink_state(self, name: str, factory: Callable[[RunInfo], Any]) -> Any:
        """The per-run state of sink ``name``, created by ``factory(run)`` on first use."""
        state = self.state.get(name)
        if state is None:
            state = self.state[name] = factory(self)
        return state
