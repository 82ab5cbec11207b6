"""Reading the line protocols back: console output -> calls on an epochline run.

:class:`LineParser` takes raw bytes (a pipe, a saved log) and recognises, line by line:

* **Kogu JSON lines** (a line that starts with ``{``): ``parameters``, ``metric`` (iteration
  ``-1`` -> the run's summary, any other integer -> metrics at that step), ``plot``, ``comment``,
  ``upload`` (``"path"`` or ``{"name": "path", ...}``; copied after the end), ``tag``, ``untag``,
  ``name``, ``fail`` (``"interrupted: ..."``/``"crashed: ..."``/``"failed: ..."`` give that
  status and the rest as reason; any other text: failed with that reason). The older helper's
  lines too: ``#PARAM: a=1 b=2`` and ``#I<n>: loss=1.0 acc=0.5`` (several ``k=v`` per line),
  ``#COMMENT: text``, ``#NAME: n``, ``#TAG: t``, ``#UNTAG: t`` and ``#FAIL: reason`` (the run is
  failed). The texts ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` become floats; bare ``NaN``
  tokens (not strict JSON, written by Kogu's own helper) are accepted.
* **PROGRESS lines** (``PROGRESS:`` at column 0), read as AiManage reads them: an accuracy above 1
  is in percent, one at most 1 is a fraction (x100); ``training`` lines with ``epoch`` >= 1 become
  epoch records and metrics at step = epoch; a line with ``epoch: 0`` (or none) that carries a
  positive value is kept as metrics at step 0 (epoch records are 1-indexed); the ``completed``
  line becomes summary values ``final_<field>``; a ``failed``/``interrupted``/``crashed`` status
  marks the run so. The generic ``accuracy`` falls back to ``test_accuracy`` and ``loss`` to
  ``train_loss``. ``test_loss`` and ``val_loss`` are kept as the script named them.
* **Legacy text lines** (``Epoch 1/10, Train Loss: 0.5432, Train Accuracy: 85.5%``; an
  ``Epoch n/N`` header followed by ``Train Loss: .. | Train Acc: ..%`` lines; Keras'
  ``loss: .. - accuracy: .. - val_loss: ..``): an ``Epoch n/N`` header opens epoch n, values on
  it and on the lines after it belong to it until the next header. An accuracy follows the
  consumer's rule whatever its ``%``: above 1 percent, at most 1 a fraction (so ``0.5%`` reads
  50 %, as AiManage reads it). A line that speaks of ``best``/``final``/``overall``/``average``
  values (``Best Val Accuracy: 90%`` after the last epoch) is a summary (``best_val_accuracy``),
  never a value of the epoch before it. Once a PROGRESS line has been seen, legacy lines are
  ignored (scripts often print both).

Nothing in the input can make it raise: lines over :data:`MAX_LINE` bytes, invalid UTF-8, binary
garbage, malformed JSON, unknown messages or keys and values of the wrong type are counted in
:attr:`LineParser.skipped` and skipped.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
from collections import Counter
from typing import Any, Dict, Iterable, List, Optional, Tuple

from .protocol import FINAL_ITERATION, KOGU_MESSAGES, PROGRESS_FIELDS, PROGRESS_PREFIX, from_text, is_number

MAX_LINE = 1 << 20
"""Longest line looked at, in bytes; longer ones are passed through but not parsed."""

SKIP_REASONS = {
    "too_long": f"lines over {MAX_LINE} bytes",
    "invalid_utf8": "lines that are not UTF-8",
    "binary": "lines with control characters",
    "malformed_json": "{...} lines that are not JSON",
    "unknown_message": "JSON objects that are no Kogu message",
    "unknown_key": "unknown keys in Kogu messages",
    "bad_value": "values of the wrong type",
    "upload_missing": "uploads whose file is missing",
    "error": "lines the run refused",
}

_BINARY = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_EPOCH = re.compile(r"\bepoch\s*[\[(]?\s*(\d+)\s*(?:/|:|\bof\b)\s*(\d+)", re.IGNORECASE)
_METRIC = re.compile(
    r"(?<![A-Za-z])(?:(train(?:ing)?|val(?:id(?:ation)?)?|test|eval)[\s_]*)?(loss|acc(?:uracy)?)\b"
    r"\s*[:=]?\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(%)?",
    re.IGNORECASE,
)
_STAGES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "eval": "val",
    "test": "test",
}
_OLD_KV = re.compile(r"^#(PARAM|I(-?\d+)):\s*(.*)$")
_OLD_PAIR = re.compile(r"([^\s=]+)\s*=\s*(.*?)(?=\s+[^\s=]+\s*=|\s*$)")
_OLD_TEXT = {"#COMMENT:": "comment", "#NAME:": "rename", "#TAG:": "tag", "#UNTAG:": "untag"}
_SUMMARY_WORD = re.compile(r"\b(best|final|overall|average|avg|mean)\b", re.IGNORECASE)
_FAIL_STATUSES = {
    "failed": "failed",
    "error": "failed",
    "interrupted": "interrupted",
    "cancelled": "interrupted",
    "canceled": "interrupted",
    "crashed": "crashed",
}


def _integer(value: Any) -> Optional[int]:
    if is_number(value) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    return None


def _scalar(value: Any) -> Any:
    """A metric value from JSON (number, bool, text), or raise ValueError."""
    value = from_text(value)
    if type(value) in (bool, int, float, str):
        return value
    raise ValueError(f"{type(value).__name__} is not a metric value")


def _param(value: Any) -> Any:
    value = from_text(value)
    if isinstance(value, list):
        if all(type(v) in (bool, int, float, str) for v in value):
            return [from_text(v) for v in value]
        raise ValueError("arrays may hold only numbers, booleans or text")
    return _scalar(value)


def _old_value(text: str) -> Any:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return text
    return value if type(value) in (bool, int, float, str, list) else text


def legacy_values(text: str) -> Dict[str, float]:
    """The loss/accuracy fields on one legacy line (first occurrence of each field wins)."""
    out: Dict[str, float] = {}
    for match in _METRIC.finditer(text):
        stage, what, number, _percent_sign = match.groups()
        field = f"{_STAGES[(stage or 'train').lower()]}_{'loss' if what.lower() == 'loss' else 'accuracy'}"
        if field in out:
            continue
        try:
            value = float(number)
        except ValueError:
            continue
        if field.endswith("_accuracy"):
            value = percent_of(value)
        out[field] = value
    return out


def percent_of(value: float) -> float:
    """An accuracy as the PROGRESS consumer reads it, in percent: above 1 it is percent already,
    at most 1 a fraction (so an honest 0.5 % reads 50 %; documented in docs/protocols.md)."""
    return value * 100.0 if -1.0 <= value <= 1.0 else value


_MALFORMED = object()


class LineParser:
    """Feeds one run from console output; see the module docstring for what it understands."""

    def __init__(self, run: Any, *, max_line: int = MAX_LINE):
        self.run = run
        self.max_line = max_line
        self.counts: Counter = Counter()
        """Recognised lines: ``lines`` (all), ``kogu``, ``kogu_old``, ``progress``, ``legacy``."""
        self.skipped: Counter = Counter()
        self.uploads: List[str] = []
        self.fail: Optional[Tuple[str, Optional[str]]] = None
        """(status, reason) from a ``fail`` line or a PROGRESS status, the first one wins."""
        self._buf = bytearray()
        self._dropping = False
        self._legacy_on = True
        self._pending: Optional[Dict[str, Any]] = None

    # -- bytes ----------------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Raw output, in chunks of any size; complete lines are parsed at once."""
        buf = self._buf
        buf += data
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            if self._dropping:
                self._dropping = False
            else:
                self.feed_line(bytes(buf[start:nl]))
            start = nl + 1
        del buf[:start]
        if len(buf) > self.max_line:
            if not self._dropping:
                self.counts["lines"] += 1
                self.skipped["too_long"] += 1
                self._dropping = True
            buf.clear()

    def close(self) -> None:
        """End of input: parse a last line without newline, close a pending legacy epoch."""
        if self._buf and not self._dropping:
            self.feed_line(bytes(self._buf))
        self._buf.clear()
        self._dropping = False
        self._close_legacy()

    # -- lines ----------------------------------------------------------------------------------
    def feed_line(self, raw: Any) -> None:
        """One line (bytes or text, without its newline). Never raises."""
        self.counts["lines"] += 1
        try:
            if isinstance(raw, (bytes, bytearray)):
                if len(raw) > self.max_line:
                    self.skipped["too_long"] += 1
                    return
                try:
                    line = bytes(raw).decode("utf-8")
                except UnicodeDecodeError:
                    self.skipped["invalid_utf8"] += 1
                    return
            else:
                line = str(raw)
                if len(line) > self.max_line:
                    self.skipped["too_long"] += 1
                    return
            line = line.rstrip("\r\n")
            if _BINARY.search(line):
                self.skipped["binary"] += 1
                return
            self._line(line)
        except Exception:  # a run call that refused a value; the input must never stop us
            self.skipped["error"] += 1

    def _line(self, line: str) -> None:
        if line.startswith(PROGRESS_PREFIX):
            self._progress(line[len(PROGRESS_PREFIX) :])
            return
        stripped = line.strip()
        # a Python dict repr ({'loss': 0.5, ...}, as the transformers Trainer prints its logs) is
        # console output, not a malformed Kogu line
        if stripped.startswith("{") and not stripped.startswith("{'"):
            self._kogu(stripped)
            return
        if stripped.startswith("#"):
            match = _OLD_KV.match(stripped)
            if match:
                self._kogu_old(match)
                return
            head = stripped.split(":", 1)[0].upper() + ":"
            if head in _OLD_TEXT:
                text = stripped[len(head) :].strip()
                self.counts["kogu_old"] += 1
                if head == "#COMMENT:":
                    self.run.comment(text or " ")
                elif text:
                    getattr(self.run, _OLD_TEXT[head])(text)
                return
            if head == "#FAIL:":
                self.counts["kogu_old"] += 1
                self._k_fail(stripped[len(head) :].strip())
                return
        if self._legacy_on:
            self._legacy(_ANSI.sub("", line.rsplit("\r", 1)[-1]))

    # -- Kogu -----------------------------------------------------------------------------------
    def _json(self, text: str) -> Any:
        """The parsed JSON value, or the sentinel _MALFORMED (counted) when it is not JSON."""
        try:
            return json.loads(text)
        except (ValueError, RecursionError):  # deep nesting raises RecursionError
            self.skipped["malformed_json"] += 1
            return _MALFORMED

    def _kogu(self, text: str) -> None:
        obj = self._json(text)
        if obj is _MALFORMED:
            return
        if not isinstance(obj, dict) or not any(k in KOGU_MESSAGES for k in obj):
            self.skipped["unknown_message"] += 1
            return
        self.counts["kogu"] += 1
        for key, value in obj.items():
            handler = getattr(self, f"_k_{key}", None) if key in KOGU_MESSAGES else None
            if handler is None:
                self.skipped["unknown_key"] += 1
                continue
            try:
                handler(value)
            except (TypeError, ValueError):
                self.skipped["bad_value"] += 1

    def _k_parameters(self, value: Any) -> None:
        if not isinstance(value, dict):
            raise TypeError("parameters must be an object")
        params = {}
        for key, item in value.items():
            if item is None:
                continue
            try:
                params[key] = _param(item)
            except ValueError:
                self.skipped["bad_value"] += 1
        if params:
            self.run.log_params(params)

    def _k_metric(self, value: Any) -> None:
        if not isinstance(value, dict) or not isinstance(value.get("metrics"), dict):
            raise TypeError("metric must be an object with a metrics object")
        iteration = _integer(value.get("iteration", FINAL_ITERATION))
        if iteration is None or iteration < FINAL_ITERATION:
            raise ValueError("iteration must be an integer >= -1")
        metrics = {}
        for key, item in value["metrics"].items():
            if item is None:
                continue
            try:
                metrics[key] = _scalar(item)
            except ValueError:
                self.skipped["bad_value"] += 1
        if not metrics:
            return
        if iteration == FINAL_ITERATION:
            self.run.summary(metrics)
        else:
            self.run.log(metrics, step=iteration)

    def _k_plot(self, value: Any) -> None:
        if not isinstance(value, dict) or type(value.get("name")) is not str or not value["name"]:
            raise TypeError("plot needs a name")
        metrics = value.get("metrics", [])
        if not isinstance(metrics, list) or not all(type(m) is str for m in metrics):
            raise TypeError("plot metrics must be a list of names")
        label = value.get("y_label", "")
        self.run.declare_plot(value["name"], metrics, y_label=label if type(label) is str else "")

    def _k_comment(self, value: Any) -> None:
        if type(value) is not str:
            raise TypeError("comment must be text")
        self.run.comment(value)

    def _k_upload(self, value: Any) -> None:
        if isinstance(value, dict):
            value = value.get("name")
        if type(value) is not str or not value or "\x00" in value:
            raise TypeError("upload must be a path")
        self.uploads.append(value)

    def _k_tag(self, value: Any) -> None:
        self.run.tag(self._text(value))

    def _k_untag(self, value: Any) -> None:
        self.run.untag(self._text(value))

    def _k_name(self, value: Any) -> None:
        self.run.rename(self._text(value))

    def _k_fail(self, value: Any) -> None:
        if value is not None and type(value) is not str:
            raise TypeError("fail reason must be text")
        text = (value or "").strip()
        status, reason = "failed", text or None
        head, sep, rest = text.partition(":")
        if head in ("failed", "interrupted", "crashed"):
            status, reason = head, (rest.strip() or None) if sep else None
        if self.fail is None or self.fail[1] is None and reason is not None:
            self.fail = (status, reason)

    @staticmethod
    def _text(value: Any) -> str:
        if type(value) is not str or not value:
            raise TypeError("expected non-empty text")
        return value

    def _kogu_old(self, match: "re.Match") -> None:
        kind, iteration, text = match.groups()
        pairs = {k: _old_value(v.strip()) for k, v in _OLD_PAIR.findall(text.strip())}
        if not pairs:
            self.skipped["bad_value"] += 1
            return
        self.counts["kogu_old"] += 1
        if kind == "PARAM":
            self.run.log_params(pairs)
            return
        values = {}
        for key, value in pairs.items():
            value = from_text(value)
            if type(value) in (bool, int, float, str):
                values[key] = value
            else:
                self.skipped["bad_value"] += 1
        step = int(iteration)
        if not values:
            return
        if step == FINAL_ITERATION:
            self.run.summary(values)
        elif step >= 0:
            self.run.log(values, step=step)

    # -- PROGRESS -------------------------------------------------------------------------------
    def _progress(self, text: str) -> None:
        obj = self._json(text)
        if obj is _MALFORMED:
            return
        if not isinstance(obj, dict):
            self.skipped["bad_value"] += 1
            return
        self.counts["progress"] += 1
        if self._legacy_on:  # the script speaks PROGRESS: its free text is not parsed any more
            self._legacy_on = False
            self._pending = None
        status = obj.get("status")
        status = status.strip().lower() if type(status) is str else "training"
        values = self._progress_values(obj)
        total = _integer(obj.get("total_epochs"))
        if status == "completed":
            final = {f"final_{k}": v for k, v in values.items()}
            if final:
                self.run.summary(final)
            return
        if status in _FAIL_STATUSES:
            if self.fail is None:
                self.fail = (_FAIL_STATUSES[status], None)
            return
        epoch = _integer(obj.get("epoch"))
        if epoch is None or epoch < 1:
            # the consumer keeps a line whose epoch is 0 when a value is positive: so do we, as
            # metrics at step 0 (an epoch record needs a 1-indexed epoch)
            if (epoch is None or epoch == 0) and any(v > 0 for v in values.values()):
                self.run.log(values, step=0)
            else:
                self.skipped["bad_value"] += 1
            return
        self._epoch(epoch, total, values)

    def _progress_values(self, obj: Dict[str, Any]) -> Dict[str, Any]:
        """The numeric fields of a PROGRESS object, generic names mapped, accuracies in percent."""
        values: Dict[str, Any] = {}
        for key, value in obj.items():
            if key in ("status", "epoch", "total_epochs"):
                continue
            value = from_text(value)
            if is_number(value):
                values[key] = value
            elif key in PROGRESS_FIELDS or key in ("accuracy", "loss"):
                self.skipped["bad_value"] += 1
        for generic, field in (("accuracy", "test_accuracy"), ("loss", "train_loss")):
            if generic in values:
                value = values.pop(generic)
                values.setdefault(field, value)
        for key, value in values.items():
            if key.endswith("_accuracy") and math.isfinite(value):
                values[key] = percent_of(value)
        return values

    def _epoch(self, epoch: int, total: Optional[int], values: Dict[str, Any]) -> None:
        if total is not None and total < 1:
            total = None
        scales = {k: "percent" for k in values}
        self.run.end_epoch(epoch, values, total_epochs=total, scales=scales)
        if values:
            self.run.log(values, step=epoch, epoch=epoch)

    # -- legacy ---------------------------------------------------------------------------------
    def _legacy(self, text: str) -> None:
        match = _EPOCH.search(text)
        if match:
            epoch, total = int(match.group(1)), int(match.group(2))
            if 1 <= epoch <= total:
                if self._pending is None or self._pending["epoch"] != epoch:
                    self._close_legacy()
                    self._pending = {"epoch": epoch, "total": total, "values": {}}
                text = text[match.end() :]
        values = legacy_values(text)
        if not values:
            return
        word = _SUMMARY_WORD.search(text)
        if word and not match:  # "Best Val Accuracy: 90%": the run's summary, not the last epoch
            self.counts["legacy"] += 1
            prefix = word.group(1).lower()
            self.run.summary({f"{prefix}_{k}": v for k, v in values.items()})
            return
        if self._pending is None:
            return
        self.counts["legacy"] += 1
        self._pending["values"].update(values)

    def _close_legacy(self) -> None:
        pending, self._pending = self._pending, None
        if pending and pending["values"]:
            self._epoch(pending["epoch"], pending["total"], pending["values"])

    # -- the end --------------------------------------------------------------------------------
    def copy_uploads(self, base_dir: Optional[str] = None) -> int:
        """Copy the uploaded files into the store (after the command ended, as Kogu does)."""
        copied = 0
        seen = set()
        for path in self.uploads:
            full = os.path.join(base_dir or os.getcwd(), os.path.expanduser(path))
            if full in seen:
                continue
            seen.add(full)
            if not os.path.exists(full):
                self.skipped["upload_missing"] += 1
                continue
            try:
                if self.run.log_artifact(full) is not None:
                    copied += 1
            except Exception:
                self.skipped["error"] += 1
        return copied

    def report(self) -> str:
        """One line for people: what was recorded and what was skipped."""
        c = self.counts
        text = (
            f"{c['lines']} lines read; recorded {c['kogu'] + c['kogu_old']} Kogu, "
            f"{c['progress']} PROGRESS, {c['legacy']} legacy lines"
        )
        total = sum(self.skipped.values())
        if total:
            parts = ", ".join(f"{n} {SKIP_REASONS.get(k, k)}" for k, n in sorted(self.skipped.items()))
            text += f"; skipped {total} ({parts})"
        else:
            text += "; skipped 0"
        return text


def outcome(parser: LineParser, returncode: Optional[int] = None) -> Tuple[str, Optional[str]]:
    """(status, reason) of a recorded command; ``returncode`` None for a saved log.

    Killed by SIGINT/SIGTERM -> interrupted, by another signal -> crashed; a non-zero exit ->
    failed (interrupted for 130/143, the shells' codes for SIGINT/SIGTERM) unless a ``fail``
    line named a status; exit 0 -> completed unless a ``fail`` line came.
    """
    fail = parser.fail
    if returncode is not None and returncode < 0:
        sig = -returncode
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        status = "interrupted" if sig in (signal.SIGINT, signal.SIGTERM) else "crashed"
        reason = f"killed by {name}"
        if fail and fail[1]:
            reason += f"; {fail[1]}"
        return status, reason
    if returncode:
        if fail:
            return fail[0], f"{fail[1]} (exit code {returncode})" if fail[1] else f"exit code {returncode}"
        if returncode in (130, 143):
            by = "SIGINT" if returncode == 130 else "SIGTERM"
            return "interrupted", f"exit code {returncode} ({by})"
        return "failed", f"exit code {returncode}"
    if fail:
        return fail
    return "completed", None


def ingest_lines(run: Any, lines: Iterable[Any]) -> LineParser:
    """Parse ``lines`` (text or bytes, with or without newlines) into ``run``; return the parser."""
    parser = LineParser(run)
    for line in lines:
        if isinstance(line, (bytes, bytearray)):
            parser.feed_line(bytes(line).rstrip(b"\n"))
        else:
            parser.feed_line(str(line).rstrip("\n"))
    parser.close()
    return parser
