"""How the viewer's browser checks start Debian's headless Chromium (its tests, ``bench_ui`` and
the docs' screenshots): one place for the path and the flags, so the three cannot drift.

Not used by the viewer itself. The flags are those this closed network needs: without the
background-networking ones, Chromium keeps trying to reach Google's hosts and its connections are
refused, many at a time; ``--no-sandbox`` because CI runs as root.
"""

from __future__ import annotations

from typing import Any

CHROMIUM = "/usr/bin/chromium"
"""Debian's ``chromium`` package (``.ci/run`` installs it); never a browser Playwright downloads."""

ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def launch(playwright: Any) -> Any:
    """``playwright.chromium.launch`` of Debian's Chromium, headless, with :data:`ARGS`."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=list(ARGS))
