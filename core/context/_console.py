"""``init(capture_console=True, tqdm_mode=...)``: stdout/stderr still printed, and recorded.

``sys.stdout`` and ``sys.stderr`` are wrapped by a :class:`ConsoleTee` that first writes to the
stream it wraps (so the program's output is unchanged) and then splits what was written into
lines in memory; each finished line becomes one :class:`~epochline.events.ConsoleText` event on
the run's queue. No other I/O happens in the caller's thread.

Progress bars (tqdm and anything else that redraws a line with carriage returns):

* ``smart`` (default) keeps only the last state of a redrawn line (``100%|####| 50/50``) and
  drops a bar that was cleared (``leave=False``);
* ``all`` keeps every state as its own line;
* ``none`` drops redrawn lines altogether.

``\\r\\n`` is a plain line end. Lines written by epochline's own dispatcher threads (the Kogu and
``PROGRESS:`` lines, which the store already holds as metrics and epochs) are not recorded. A line
longer than :data:`MAX_LINE` characters is recorded in pieces, and a stream stops being recorded
after :data:`MAX_BYTES` characters (it is still printed).
"""

from __future__ import annotations

import re
import sys
import threading
import time
from typing import Any, Callable, List, Optional

from ._limits import TQDM_MODES as MODES

MAX_LINE = 64 * 1024
MAX_BYTES = 64 * 1024 * 1024
"""Per stream and run: after this many characters recorded, recording stops (printing goes on)
with one last line that says so."""
_BREAK = re.compile(r"[\r\n]")
_OWN_THREAD_PREFIX = "epochline-"


class ConsoleTee:
    """A text stream that writes through to ``stream`` and records finished lines."""

    def __init__(self, stream: Any, name: str, record: Callable[[str, str], None], mode: str = "smart"):
        self._stream = stream
        self._name = name
        self._record = record
        self._mode = mode
        self._line = ""
        self._bar = False
        self._pending_cr = False
        self._lock = threading.Lock()
        self._recorded = 0
        self.active = True

    # -- the stream interface ----------------------------------------------------------------
    def write(self, text: str) -> int:
        written = self._stream.write(text)
        if (
            self.active
            and text
            and type(text) is str
            and not threading.current_thread().name.startswith(_OWN_THREAD_PREFIX)
        ):
            try:
                with self._lock:
                    self._feed(text)
            except Exception:  # recording must never break printing
                pass
        return written

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:  # encoding, fileno, isatty, buffer, ...
        return getattr(self._stream, name)

    @property
    def wrapped(self) -> Any:
        return self._stream

    # -- splitting into lines ---------------------------------------------------------------
    def _feed(self, text: str) -> None:
        if self._pending_cr:
            self._pending_cr = False
            if text[0] == "\n":
                self._end_line()
                text = text[1:]
            else:
                self._carriage()
        while text:
            match = _BREAK.search(text)
            if match is None:
                self._line += text
                while len(self._line) > MAX_LINE:
                    self._emit(self._line[:MAX_LINE])
                    self._line = self._line[MAX_LINE:]
                return
            i = match.start()
            self._line += text[:i]
            rest = text[i + 1 :]
            if text[i] == "\n":
                self._end_line()
            elif not rest:
                self._pending_cr = True  # "\r" at the end of a write: "\r\n" split in two?
            elif rest[0] == "\n":
                self._end_line()
                rest = rest[1:]
            else:
                self._carriage()
            text = rest

    def _carriage(self) -> None:
        """What is on the line so far is about to be drawn over."""
        self._bar = True
        if self._mode == "all" and self._line.strip():
            self._emit(self._line)
        self._line = ""

    def _end_line(self) -> None:
        line, bar = self._line, self._bar
        self._line, self._bar = "", False
        if bar and (self._mode == "none" or not line.strip()):
            return
        self._emit(line)

    def _emit(self, line: str) -> None:
        for start in range(0, max(len(line), 1), MAX_LINE):
            if not self.active:
                return
            piece = line[start : start + MAX_LINE]
            self._recorded += len(piece) + 1
            if self._recorded > MAX_BYTES:
                self.active = False
                self._record(
                    f"[epochline: console capture of {self._name} stopped after {MAX_BYTES} "
                    "characters; the rest was printed, not recorded]",
                    self._name,
                )
                return
            self._record(piece, self._name)

    def close_capture(self) -> None:
        """Record a last unfinished line and stop recording (the stream keeps working)."""
        with self._lock:
            if self._pending_cr:
                self._pending_cr = False
                self._carriage()
            if self._line:
                self._end_line()
            self.active = False


def _unwrap(stream: Any) -> Any:
    while isinstance(stream, ConsoleTee) and not stream.active:
        stream = stream.wrapped
    return stream


def capture(record: Callable[[str, str], None], mode: str = "smart") -> Callable[[], None]:
    """Wrap ``sys.stdout``/``sys.stderr``; return the function that stops and unwraps them."""
    if mode not in MODES:
        raise ValueError(f"tqdm_mode must be one of {', '.join(MODES)}; got {mode!r}")
    tees: List[Optional[ConsoleTee]] = []
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None:  # pythonw: nothing to capture
            continue
        tee = ConsoleTee(stream, name, record, mode)
        setattr(sys, name, tee)
        tees.append(tee)

    def stop() -> None:
        for tee in tees:
            if tee is None:
                continue
            tee.close_capture()
            name = tee._name
            if getattr(sys, name) is tee:  # someone else may have wrapped it since: then stay inert
                setattr(sys, name, _unwrap(tee))

    return stop


def recorder(put: Callable[[Any], None], run_id: str) -> Callable[[str, str], None]:
    from ..events import ConsoleText

    def record(text: str, stream: str) -> None:
        put(ConsoleText(run_id=run_id, wall_time=time.time(), text=text, stream=stream))

    return record
