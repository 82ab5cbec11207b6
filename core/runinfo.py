"""What a sink learns about the run whose events it receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, FrozenSet

if TYPE_CHECKING:
    from .store.base import Backend


@dataclass(eq=False)
class RunInfo:
    id: str
    name: str
    path: str
    store: "Backend"
    emit: FrozenSet[str] = frozenset()
    """Names of the line emitters that are on for this run (``kogu``, ``progress``)."""
    total_epochs: int | None = None
    prior_epochs: dict = field(default_factory=dict)
    """Epoch records stored before this process resumed the run ({epoch: values}), so emitters
    can continue where the earlier process stopped (best epoch, plots already declared)."""
    state: dict = field(default_factory=dict)
    """Per-run scratch space for sinks, keyed by the sink's own name."""

    def sink_state(self, name: str, factory: Callable[["RunInfo"], Any]) -> Any:
        """The per-run state of sink ``name``, created by ``factory(run)`` on first use."""
        state = self.state.get(name)
        if state is None:
            state = self.state[name] = factory(self)
        return state
