"""Errors raised for wrong use of the API (tracker failures never raise: they warn and count)."""


class RunFinishedError(RuntimeError):
    """Something was logged to a run after ``finish()``."""
