"""Run identity: a stable fingerprint of the parameters that count.

Runs with the same fingerprint are the same configuration (e.g. differing only by seed, when the
seed is marked as not counting), so they can be grouped and aggregated.
"""

from __future__ import annotations

import hashlib
from typing import Any, Dict, Iterable, Mapping, Optional, Set

from .events import dumps_value


def fingerprint(params: Mapping[str, Any], ignored: Iterable[str] = ()) -> str:
    skip = set(ignored)
    counted = {k: params[k] for k in sorted(params) if k not in skip}
    return hashlib.sha256(dumps_value(counted).encode()).hexdigest()[:16]


def _prefixes(key: str):
    """``key`` and its dotted prefixes, longest first (``a.b.c``, ``a.b``, ``a``)."""
    while True:
        yield key
        if "." not in key:
            return
        key = key.rsplit(".", 1)[0]


def uncounted(
    params: Mapping[str, Any], ignored: Iterable[str] = (), parents: Optional[Mapping[str, str]] = None
) -> Set[str]:
    """Keys of ``params`` that do not count towards the fingerprint.

    A key does not count when it (or a dotted prefix of it) is ignored, or when its parent (legm's
    parameter model: ``parents[child] = parent``, also given for a prefix such as ``scheduler``) is
    not set or false (``None``, ``False``, ``0``, ``""``), or does not count for its own parent's
    sake. A parent is set when its key is present, or keys below it (``parent.x``) are.
    """
    skip = set(ignored)
    parents = parents or {}
    out: Set[str] = set()
    memo: Dict[str, bool] = {}

    def parent_of(key: str) -> Optional[str]:
        for prefix in _prefixes(key):
            if prefix in parents:
                return parents[prefix]
        return None

    def is_set(parent: str) -> bool:
        if parent in params:
            value = params[parent]
            return value is not None and value is not False and value != 0 and value != ""
        below = parent + "."
        return any(k.startswith(below) for k in params)

    def active(key: str, seen: frozenset) -> bool:
        if key in memo:
            return memo[key]
        parent = parent_of(key)
        if parent is None or parent in seen:
            result = True
        else:
            result = is_set(parent) and active(parent, seen | {key})
        memo[key] = result
        return result

    for key in params:
        if any(p in skip for p in _prefixes(key)) or not active(key, frozenset()):
            out.add(key)
    return out
