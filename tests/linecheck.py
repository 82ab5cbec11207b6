"""The one checker of printed protocol lines, shared by every test that looks at stdout.

Each line is held to what the seed documents say: a Kogu message (seed 000: one key of the nine
message types, keys matching ``^[a-zA-Z]\\w*$``, scalar values, strict JSON) or a PROGRESS line
(seed 001: the documented fields only, finite JSON numbers, a known status).
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any, List, Tuple

KOGU_KEY = re.compile(r"^[a-zA-Z]\w*$", re.ASCII)  # what the key rule produces; stricter than Unicode \w
KOGU_TYPES = ("parameters", "metric", "plot", "comment", "upload", "tag", "untag", "name", "fail")
# seed 001, "Field Specifications": required fields, accuracy fields, loss fields
PROGRESS_DOC_FIELDS = {
    "epoch",
    "total_epochs",
    "status",
    "test_accuracy",
    "val_accuracy",
    "train_accuracy",
    "accuracy",
    "train_loss",
    "test_loss",
    "val_loss",
    "loss",
}
PROGRESS_STATUSES = {"training", "completed", "failed", "interrupted", "crashed"}


def strict_loads(text: str) -> Any:
    """RFC 8259 only: bare NaN/Infinity tokens raise."""

    def bad(token: str) -> Any:
        raise ValueError(f"non-strict JSON token {token}")

    return json.loads(text, parse_constant=bad)


def _kogu_scalar(value: Any) -> bool:
    return type(value) in (bool, int, float, str)


def check_kogu_line(line: str) -> dict:
    """Assert that ``line`` is one Kogu message exactly as seed 000 describes it."""
    assert line == line.strip() and "\n" not in line
    obj = strict_loads(line)
    assert isinstance(obj, dict) and len(obj) == 1, line
    ((kind, value),) = obj.items()
    assert kind in KOGU_TYPES, line
    if kind == "parameters":
        assert isinstance(value, dict) and value, line
        for key, item in value.items():
            assert KOGU_KEY.match(key), (key, line)
            if isinstance(item, list):
                assert all(
                    type(v) is type(item[0]) or (type(v) in (int, float) and type(item[0]) in (int, float))
                    for v in item
                ), line
                assert all(_kogu_scalar(v) for v in item), line
            else:
                assert _kogu_scalar(item), line
    elif kind == "metric":
        assert set(value) == {"iteration", "metrics"}, line
        assert type(value["iteration"]) is int and value["iteration"] >= -1, line
        assert isinstance(value["metrics"], dict) and value["metrics"], line
        for key, item in value["metrics"].items():
            assert KOGU_KEY.match(key) and _kogu_scalar(item), (key, line)
    elif kind == "plot":
        assert set(value) == {"type", "name", "y_label", "metrics"}, line
        assert value["type"] == "line" and type(value["name"]) is str and type(value["y_label"]) is str
        assert value["metrics"] and all(type(m) is str and KOGU_KEY.match(m) for m in value["metrics"])
    elif kind == "upload":
        assert type(value) is str and os.path.isabs(value) and os.path.isfile(value), line
    else:
        assert type(value) is str, line
    return obj


def check_progress_line(line: str) -> dict:
    """Assert that ``line`` is a PROGRESS line as seed 001 and its consumer read it."""
    assert line.startswith("PROGRESS: "), line
    obj = strict_loads(line[len("PROGRESS:") :].strip())
    assert isinstance(obj, dict) and set(obj) <= PROGRESS_DOC_FIELDS, line
    assert {"epoch", "status"} <= set(obj), line
    assert obj["status"] in PROGRESS_STATUSES, line
    for key, value in obj.items():
        if key != "status":
            assert type(value) in (int, float) and math.isfinite(value), line
    assert type(obj["epoch"]) is int and obj["epoch"] >= (1 if obj["status"] == "training" else 0)
    if "total_epochs" in obj:
        assert type(obj["total_epochs"]) is int and obj["total_epochs"] >= 1
    return obj


def check_lines(text: str) -> List[str]:
    lines = text.splitlines()
    for line in lines:
        if line.startswith("PROGRESS:"):
            check_progress_line(line)
        else:
            check_kogu_line(line)
    return lines


def same(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN (recursively)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def protocol_lines(text: str) -> Tuple[List[dict], List[dict]]:
    """(Kogu objects, PROGRESS objects) printed in ``text``, each line checked; everything else
    (a framework's progress bar, a Trainer's Python-dict logs ``{'loss': ...}``) is left alone."""
    kogu, progress = [], []
    for line in text.splitlines():
        if line.startswith("PROGRESS:"):
            progress.append(check_progress_line(line))
        elif line.startswith('{"'):
            kogu.append(check_kogu_line(line))
    return kogu, progress
