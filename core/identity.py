"""Run identity: a stable fingerprint of the parameters that count.

Runs with the same fingerprint are the same configuration (e.g. differing only by seed, when the
seed is marked as not counting), so they can be grouped and aggregated.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable, Mapping

from .events import dumps_value


def fingerprint(params: Mapping[str, Any], ignored: Iterable[str] = ()) -> str:
    skip = set(ignored)
    counted = {k: params[k] for k in sorted(params) if k not in skip}
    return hashlib.sha256(dumps_value(counted).encode()).hexdigest()[:16]
