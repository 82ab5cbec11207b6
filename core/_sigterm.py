"""SIGTERM: how SLURM, Kubernetes and ``timeout`` stop a job. Finish the runs, then end as before.

Without this, the default action kills the process at once: its runs read ``crashed`` and up to a
flush interval of points is lost. epochline's handler (installed by the first ``init`` in the main
thread, unless SIGTERM is ignored there) does, in this order:

1. finish every active run ``interrupted`` with reason ``SIGTERM`` (which dispatches and writes
   everything queued), and print held protocol lines;
2. let the process end with the status it would have had: call the handler that was installed
   before ours (a user's, or a framework's such as Lightning's), or, when there was none, restore
   the default action and send SIGTERM again, so the process dies of SIGTERM (exit status 143 in a
   shell) exactly as without epochline.

A handler installed *after* ours that chains to ours (Lightning composes the handler it finds with
its own and then stops the fit gracefully) keeps control: ours then finishes the runs and returns,
it does not kill the process under the framework's feet. Runs that end later in the same process
(a framework's own ``finalize`` after the signal) keep ``interrupted``/``SIGTERM``: see
:func:`received`.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any, Callable, Optional

_previous: Any = None
_installed = False
_received = False


def received() -> bool:
    """True once this process got SIGTERM (an exception raised because of it ends runs
    ``interrupted``, reason ``SIGTERM``, see :func:`epochline.exit_status`)."""
    return _received


def install(finish_all: Callable[[str, Optional[str]], None]) -> bool:
    """Install the handler once (main thread only); False when it could not or should not be."""
    global _installed, _previous
    if _installed or not hasattr(signal, "SIGTERM"):
        return _installed
    if threading.current_thread() is not threading.main_thread():
        return False  # signal.signal works only there; a later init in the main thread installs it
    try:
        previous = signal.getsignal(signal.SIGTERM)
    except (ValueError, OSError):
        return False
    if previous is signal.SIG_IGN:
        return False  # the process ignores SIGTERM: finishing its runs would be wrong

    def handler(signum: int, frame: Any) -> None:
        global _received
        _received = True
        try:
            finish_all("interrupted", "SIGTERM")
            from .protocol import flush_held_lines

            flush_held_lines()
        except Exception:  # never stand between the process and its own way of ending
            pass
        if callable(previous):
            previous(signum, frame)
        elif signal.getsignal(signal.SIGTERM) is handler:  # we are the process's handler
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
            os.kill(os.getpid(), signal.SIGTERM)

    try:
        signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):
        return False
    _previous, _installed = previous, True
    return True
