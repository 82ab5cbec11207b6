"""Shared rules of the two line protocols (Kogu JSON lines and ``PROGRESS:`` lines).

One module so that the emitters (:mod:`epochline.sinks.kogu`, :mod:`epochline.sinks.progress`) and
the reader (:mod:`epochline.ingest`) cannot disagree. The rules, also in docs/protocols.md:

* **Key rule** (Kogu consumers accept only ``^[a-zA-Z]\\w*$`` and reject a whole object for one bad
  key): strip the name; replace every run of characters other than ASCII letters, digits and ``_``
  by one ``_``; if the result does not start with an ASCII letter, prefix ``k_``. So ``val/acc`` ->
  ``val_acc``, ``train-loss`` -> ``train_loss``, ``1st`` -> ``k_1st``, ``acc@1`` -> ``acc_1``.
  Two different names that give the same key are never merged: the later one (in the order the
  run first used them) gets ``_2`` (``_3``, ...) appended. Parameters and metrics are separate
  namespaces, each with its own :class:`KeyMapper` per run.
* **Non-finite rule**: every line is strict JSON (RFC 8259). Kogu lines write NaN, +inf and -inf
  as the text values ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` (Kogu allows text values); the
  reader turns exactly these three strings back into floats. PROGRESS lines omit a non-finite
  field altogether, because their consumer reads only JSON numbers and drops invalid lines.
* **Kogu values**: numbers, booleans and text pass; ``None`` is dropped (as Kogu's own library
  does); numpy/torch scalars become Python numbers; a list whose elements all share the first
  element's kind (all finite numbers, all booleans, all text) stays an array, any other list
  (mixed, nested, holding ``None`` or non-finite numbers) is written as its strict-JSON text.
  Metric values may not be arrays: a list there is written as text.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import re
import tempfile
import threading
from typing import Any, Dict, List, Mapping, Optional, Tuple

from . import console
from ._json import NONFINITE_TEXT, nonfinite_text, replace_nonfinite

_BAD_RUN = re.compile(r"[^A-Za-z0-9_]+")
KEY_PREFIX = "k_"

PROGRESS_PREFIX = "PROGRESS:"
PROGRESS_FIELDS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy")
"""The per-epoch value fields of a PROGRESS line, in the order epochline writes them."""
ACCURACY_PRIORITY = ("test_accuracy", "val_accuracy", "train_accuracy")
LOSS_FIELDS = ("train_loss", "val_loss", "test_loss")

KOGU_MESSAGES = ("parameters", "metric", "plot", "comment", "upload", "tag", "untag", "name", "fail")
FINAL_ITERATION = -1


def kogu_key(name: Any) -> str:
    """The key rule without collision handling (see the module docstring)."""
    text = _BAD_RUN.sub("_", str(name).strip())
    if not text[:1].isascii() or not text[:1].isalpha():
        text = KEY_PREFIX + text
    return text


class KeyMapper:
    """Maps names to valid Kogu keys for one run and one namespace; stable and collision-free."""

    def __init__(self) -> None:
        self._keys: Dict[str, str] = {}
        self._used: set = set()

    def __call__(self, name: str) -> str:
        key = self._keys.get(name)
        if key is not None:
            return key
        base = kogu_key(name)
        key, n = base, 1
        while key in self._used:
            n += 1
            key = f"{base}_{n}"
        self._keys[name] = key
        self._used.add(key)
        return key


def is_number(value: Any) -> bool:
    return type(value) is not bool and isinstance(value, (int, float))


def plain(value: Any) -> Any:
    """A plain Python value for anything a user or framework might hand over (never raises)."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    try:
        from .values import metric_value

        return metric_value(value)
    except Exception:
        try:
            return str(value)
        except Exception:
            return f"<{type(value).__name__} object>"


def _kind(value: Any) -> Optional[str]:
    if type(value) is bool:
        return "bool"
    if is_number(value):
        return "number" if math.isfinite(value) else None
    if type(value) is str:
        return "text"
    return None


def strict_text(value: Any) -> str:
    """Strict-JSON text of a value, non-finite floats as their text values."""
    return json.dumps(replace_nonfinite(value), allow_nan=False, separators=(",", ":"))


def kogu_scalar(value: Any) -> Any:
    """A Kogu metric value (number, bool, text), or None to drop it."""
    value = plain(value)
    if value is None:
        return None
    if type(value) is float and not math.isfinite(value):
        return nonfinite_text(value)
    if type(value) in (bool, int, float, str):
        return value
    return strict_text(value)


def kogu_param(value: Any) -> Any:
    """A Kogu parameter value (number, bool, text or same-kind array), or None to drop it."""
    value = plain(value)
    if isinstance(value, list):
        kinds = {_kind(v) for v in value}
        if not value or (len(kinds) == 1 and None not in kinds):
            return value
        return strict_text(value)
    return kogu_scalar(value)


def kogu_mapping(values: Mapping[str, Any], mapper: KeyMapper, *, params: bool = False) -> Dict[str, Any]:
    convert = kogu_param if params else kogu_scalar
    out: Dict[str, Any] = {}
    for name, value in values.items():
        converted = convert(value)
        if converted is not None:
            out[mapper(str(name))] = converted
    return out


# AiManage runs its legacy regexes (``Epoch\s+(\d+)[/:](\d+)``, ``(train\s*)?loss[:\s]+([0-9.]+)``,
# ``(train\s*)?acc(?:uracy)?[:\s]+([0-9.]+)%?`` ...) on *every* stdout line, JSON lines included:
# a Kogu comment "best by val_accuracy: 0.95" would read as an epoch-0 train accuracy. In our JSON
# a letter followed by ``:`` or a space can only occur inside a string, so escaping that one
# character (``\u003a``, ``\u0020``) when a number follows keeps the decoded text identical and
# the regexes blind.
_LEGACY_TRIGGER = re.compile(r"(?i)(loss|acc|accuracy|epoch)([: ])(?=[: ]*[0-9.])")
_ESCAPES = {":": "\\u003a", " ": "\\u0020"}


def _blind(text: str) -> str:
    return _LEGACY_TRIGGER.sub(lambda m: m.group(1) + _ESCAPES[m.group(2)], text)


def dumps_line(obj: Any) -> str:
    """One protocol line: strict JSON on one line, ASCII only (``\\n`` inside text is escaped),
    and text that AiManage's legacy regexes would read as a metric escaped (same decoded text)."""
    return _blind(json.dumps(obj, allow_nan=False))


def from_text(value: Any) -> Any:
    """Reader side of the non-finite rule: the three texts back to floats."""
    if type(value) is str and value in NONFINITE_TEXT:
        return NONFINITE_TEXT[value]
    return value


def progress_number(value: Any) -> Optional[float]:
    """A value fit for a PROGRESS field (a finite JSON number), or None to omit it."""
    value = plain(value)
    if is_number(value) and math.isfinite(value):
        return value
    return None


def progress_line(obj: Mapping[str, Any]) -> str:
    return f"{PROGRESS_PREFIX} {dumps_line(dict(obj))}"


def best_epoch(records: Mapping[int, Mapping[str, Any]]) -> Tuple[Optional[str], Optional[int]]:
    """(accuracy field, epoch) of the best accuracy over the epochs seen.

    The field is the first of test > val > train that any epoch carries as a finite number; the
    epoch is the first one reaching that field's maximum.
    """
    for field in ACCURACY_PRIORITY:
        best = None
        for epoch in sorted(records):
            value = progress_number(records[epoch].get(field))
            if value is not None and (best is None or value > best[0]):
                best = (value, epoch)
        if best is not None:
            return field, best[1]
    return None, None


# -- writing lines -------------------------------------------------------------------------------
# Both emitters write through here: one line per write call, flushed at once, to ``sys.stdout`` as
# it is at print time (so redirections and pytest's capture work). A completed run whose finish
# asked to hold its final lines (``run.finish(hold_lines=True)``: a later stage may re-open it)
# keeps them here until that stage re-opens the run (they are dropped: the stage prints the final
# lines again, with its values), another run prints a line, or the process exits.

_held: Dict[str, List[str]] = {}
_held_lock = threading.RLock()
# Lightning's ddp_spawn runs each stage (fit, then test) in new worker processes: a worker's held
# final lines go to a file its launching process named (``_handed``: run id -> file) and the
# launcher, which outlives every stage, prints the last stage's as its own held lines
# (``_received``: run id -> file), so the whole script prints one final set, as without spawn.
_handed: Dict[str, str] = {}
_received: Dict[str, str] = {}


def _write(text: str) -> None:
    console.write_line(text)  # whole and at column 0, whatever else prints to stdout


def _release(run_id: str) -> None:
    """Print the held lines of ``run_id`` (in a worker: hand them to its launcher instead)."""
    lines = _held.pop(run_id, [])
    if run_id in _handed:
        target = _handed[run_id]
        with open(target + ".tmp", "w", encoding="utf-8") as fh:
            fh.write("".join(line + "\n" for line in lines))
        os.replace(target + ".tmp", target)  # a later stage's final set replaces an earlier one's
        return
    for line in lines:
        _write(line)


def _collect_received() -> None:
    """Take the final lines the workers handed over as this process's held lines."""
    for run_id, path in list(_received.items()):
        try:
            with open(path, encoding="utf-8") as fh:
                lines = fh.read().splitlines()
            os.unlink(path)
        except FileNotFoundError:
            continue
        _held[run_id] = lines


def write_line(run_id: str, text: str) -> None:
    """Print one protocol line of run ``run_id`` (held lines of other runs go out first)."""
    with _held_lock:
        if _received:
            _collect_received()
        if _held and (len(_held) > 1 or run_id not in _held):
            for other in [r for r in _held if r != run_id]:
                _release(other)
        _write(text)


def hold_line(run_id: str, text: str) -> None:
    """Keep a final line of ``run_id`` back (see :func:`flush_held_lines`)."""
    with _held_lock:
        _held.setdefault(run_id, []).append(text)


def drop_held_lines(run_id: str) -> None:
    """A later stage re-opened ``run_id``: its held final lines are replaced by that stage's."""
    with _held_lock:
        if _received:
            _collect_received()
        _held.pop(run_id, None)


def flush_held_lines() -> None:
    """Print every held final line now (done at process exit and on SIGTERM; call it yourself
    when the process goes on with other work and its consumer waits for the completed line)."""
    with _held_lock:
        if _received:
            _collect_received()
        for run_id in list(_held):
            _release(run_id)


def receive_held_lines(run_id: str) -> str:
    """In a process that launches workers for ``run_id`` (Lightning's ``ddp_spawn``): the file
    they hand their held final lines over to (:func:`hand_over_held_lines`). This process then
    holds and prints them as its own, once, whichever stage's worker wrote them last."""
    with _held_lock:
        if run_id not in _received:
            _received[run_id] = os.path.join(
                tempfile.gettempdir(), f"epochline-{os.getpid()}-{run_id}.final-lines"
            )
        return _received[run_id]


def hand_over_held_lines(run_id: str, path: str) -> None:
    """In a worker process that records ``run_id``: its held final lines go to ``path`` (named by
    the launching process with :func:`receive_held_lines`) instead of stdout. The stages of one
    launcher run one after the other, so a file already there is an earlier stage's final set:
    this stage replaces it (it prints its own, with its values, or hands over its own)."""
    with _held_lock:
        _handed[run_id] = path
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


atexit.register(flush_held_lines)


def comment_text(text: str) -> str:
    """Kogu comment text as Kogu's helper library prints it: newlines become spaces."""
    return text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
