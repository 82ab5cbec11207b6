"""Held final lines (``Run.finish(hold_lines=True)``: a test stage may follow a fit) are printed
at the end of the test that made them, not inside the next test's captured output."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _held_lines_end_with_their_test():
    yield
    from epochline.protocol import flush_held_lines

    flush_held_lines()


def finished_output(capfd) -> str:
    """Everything printed so far, the held final lines included (as at process exit)."""
    from epochline.protocol import flush_held_lines

    flush_held_lines()
    return capfd.readouterr().out
