"""The one place that knows how NaN and the infinities are written in strict JSON.

JSON (RFC 8259) has no NaN or infinity. epochline writes them as the texts ``"NaN"``,
``"Infinity"`` and ``"-Infinity"``: bare in protocol lines and ``--json`` output, wrapped as
``{"$float": "NaN"}`` in the store (where a text value must stay a text value).
"""

from __future__ import annotations

import math
from typing import Any, Callable

NONFINITE_TEXT = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
"""The three texts and the floats they stand for."""


def nonfinite_text(value: float) -> str:
    """``"NaN"``, ``"Infinity"`` or ``"-Infinity"`` for a non-finite float."""
    return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")


def replace_nonfinite(obj: Any, replace: Callable[[float], Any] = nonfinite_text) -> Any:
    """``obj`` (dicts, lists and tuples walked; tuples become lists, keys text) with every
    non-finite float replaced by ``replace(value)``: by default its text."""
    if type(obj) is float:
        return obj if math.isfinite(obj) else replace(obj)
    if isinstance(obj, dict):
        return {str(k): replace_nonfinite(v, replace) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [replace_nonfinite(v, replace) for v in obj]
    return obj
