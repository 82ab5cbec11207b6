"""The errors epochline raises, all under :class:`EpochlineError` (DVCLive's ``error.py`` is the model).

Only wrong use of the API and reading raise: a tracker failure while training never does (it warns
once, counts what was lost and reports it at finish). Each error also derives from the builtin type
that code caught before the hierarchy existed (``KeyError`` for a missing run, ``RuntimeError`` for
a finished run...), so ``except KeyError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "EpochlineError",
    "RunFinishedError",
    "RunNotFoundError",
    "AmbiguousRunError",
    "StoreNotFoundError",
    "StoreVersionError",
    "StoreUnavailableError",
    "NoBackendError",
    "PluginError",
]


class EpochlineError(Exception):
    """Base of every error epochline raises on purpose."""


class _Message:
    """``str()`` is the message itself (``KeyError`` would otherwise print it in quotes)."""

    args: tuple

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class RunFinishedError(EpochlineError, RuntimeError):
    """Something was logged to a run after ``finish()``."""


class RunNotFoundError(_Message, EpochlineError, KeyError):
    """No stored run matches the id, id prefix, name, alias or path asked for."""


class AmbiguousRunError(_Message, EpochlineError, KeyError):
    """An id prefix (or a name) matches several stored runs: give more of the id."""


class StoreNotFoundError(EpochlineError, FileNotFoundError):
    """Opened for reading, but nothing was ever recorded there (reading never creates a store)."""


class StoreVersionError(EpochlineError, RuntimeError):
    """The store was written by a newer epochline (a newer schema version): upgrade to read it."""


class StoreUnavailableError(EpochlineError, OSError):
    """A write to a store that could not be opened when the run started (the training goes on)."""


class NoBackendError(EpochlineError, ValueError):
    """No storage backend accepts the store URI (unknown scheme, or its extra is not installed)."""


class PluginError(EpochlineError, ValueError):
    """A plugin cannot be registered (already registered, or uses a feature epochline refuses)."""
