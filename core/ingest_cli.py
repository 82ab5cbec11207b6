"""``epochline run -- CMD ...`` and ``epochline ingest FILE``: record any program from its output.

``run`` starts the command as a subprocess with ``PYTHONUNBUFFERED=1``, copies its stdout and
stderr to ours as the bytes arrive (each stream in order), parses its stdout with
:class:`epochline.ingest.LineParser`, keeps the whole console output (both streams, line by line
in arrival order) as the artifact ``console.log``, copies uploaded files into the store after the
command ended (``EPOCHLINE_RUN_TMP`` names a scratch folder for such files, removed afterwards), records the outcome (:func:`epochline.ingest.outcome`) and exits with the
command's exit code (128 + N when it was killed by signal N); when nothing at all could be
recorded (the store cannot be written) it says so and exits non-zero even if the command succeeded.

Signals: each SIGINT/SIGTERM reaches the command exactly once. When our stdin is not a terminal the
command runs in its own process group, so a signal sent to our group (``kill -INT -PGID``, a job
control ``kill %1``) reaches only us and we forward it. With a terminal on stdin the command stays
in our group (so it can read the terminal); a Ctrl-C there reaches it from the terminal and is not
forwarded again, while SIGTERM (sent to our pid by a supervisor) is. The handlers are in place
before the command starts; a signal ignored here (a shell's background job ignores SIGINT) stays
ignored, by the command too. The recording run prints no lines of its own unless ``--emit`` asks for
it; then stdout is passed through whole lines at a time so the emitted lines start at column 0.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from typing import Any, List, Optional

from .ingest import LineParser, outcome

READ_CHUNK = 65536
DRAIN_TIMEOUT_S = 10.0
"""How long to wait for the output pipes after the command exited (a grandchild may hold them)."""


class _Console:
    """Collects both streams line by line, in arrival order, into one file: only whole lines are
    written (a stream's unterminated last line gets a newline), so a line of one stream never
    lands inside a line of the other."""

    def __init__(self) -> None:
        fd, self.path = tempfile.mkstemp(prefix="epochline-console-", suffix=".log")
        self._file = os.fdopen(fd, "wb")
        self._lock = threading.Lock()

    def write_line(self, line: bytes) -> None:
        with self._lock:
            self._file.write(line)

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def remove(self) -> None:
        try:
            os.unlink(self.path)
        except OSError:
            pass


class _Out:
    """Our stdout/stderr as bytes; with ``whole_lines`` only complete lines are written, under a
    lock shared with :class:`_LineLockedText` (so emitted lines never land mid-line)."""

    def __init__(self, stream: Any, lock: threading.Lock, whole_lines: bool = False):
        self._stream = stream
        self._lock = lock
        self._whole = whole_lines
        self._partial = bytearray()

    def write(self, data: bytes) -> None:
        if self._whole:
            self._partial += data
            cut = self._partial.rfind(b"\n") + 1
            if not cut:
                return
            data, self._partial = bytes(self._partial[:cut]), self._partial[cut:]
        self._emit(data)

    def close(self) -> None:
        if self._partial:
            self._emit(bytes(self._partial))
            self._partial.clear()

    def _emit(self, data: bytes) -> None:
        with self._lock:
            try:
                self._stream.flush()
                buffer = getattr(self._stream, "buffer", None)
                if buffer is not None:
                    buffer.write(data)
                    buffer.flush()
                else:
                    self._stream.write(data.decode("utf-8", "replace"))
                    self._stream.flush()
            except (OSError, ValueError):  # our own stdout closed (e.g. `| head`): keep recording
                pass


class _LineLockedText:
    """A stand-in for ``sys.stdout`` while ``--emit`` is on: writes whole lines under the lock."""

    def __init__(self, stream: Any, lock: threading.Lock):
        self._stream = stream
        self._lock = lock
        self._partial = ""

    def write(self, text: str) -> int:
        self._partial += text
        cut = self._partial.rfind("\n") + 1
        if cut:
            data, self._partial = self._partial[:cut], self._partial[cut:]
            with self._lock:
                self._stream.write(data)
                self._stream.flush()
        return len(text)

    def flush(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _pump(fd: int, out: _Out, console: _Console, parser: Optional[LineParser], stop: threading.Event) -> None:
    partial = bytearray()
    while True:
        try:
            data = os.read(fd, READ_CHUNK)
        except OSError:
            data = b""
        if not data:
            break
        out.write(data)
        partial += data
        cut = partial.rfind(b"\n") + 1
        if cut:
            console.write_line(bytes(partial[:cut]))
            del partial[:cut]
        if parser is not None and not stop.is_set():
            parser.feed(data)
    if partial:
        console.write_line(bytes(partial) + b"\n")


def _terminal_sent_sigint(child_pgid: Optional[int]) -> bool:
    """True when a Ctrl-C on our terminal has already reached the child itself."""
    if child_pgid != os.getpgrp():
        return False
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd):
                return os.tcgetpgrp(fd) == os.getpgrp()
        except OSError:
            continue
    return False


def _own_group() -> bool:
    """Start the command in its own process group unless it may need our terminal on stdin."""
    try:
        return not os.isatty(0)
    except (OSError, ValueError):
        return True


def _popen_group_kwargs(own: bool) -> dict:
    if not own or not hasattr(os, "setpgid"):
        return {}
    if sys.version_info >= (3, 11):
        return {"process_group": 0}
    else:  # an else, so that type checkers for 3.11+ skip it instead of calling it unreachable
        return {"preexec_fn": os.setpgrp}


def _recorded(run: Any) -> bool:
    """Whether the store holds the run at all (a store that cannot be written holds nothing)."""
    if not run:
        return True  # tracking is off: nothing was meant to be recorded
    if hasattr(run, "recorded"):  # set by finish(); run.store_uri hides a password, so no reopening
        return bool(run.recorded)
    try:
        from .store.reader import open_store

        with open_store(run.store_uri) as store:
            return store.run(run.id).id == run.id
    except Exception:
        return False


def _init_run(args: argparse.Namespace, framework: str) -> Any:
    import epochline

    return epochline.init(
        path=args.path,
        name=args.name,
        store=args.store,
        tags=tuple(args.tag or ()),
        emit=args.emit or "none",
        accuracy_scale="percent",
        framework=framework,
    )


def _finish(run: Any, parser: LineParser, status: str, reason: Optional[str]) -> bool:
    """Finish the run and print the report line; False when nothing could be recorded."""
    run.finish(status, reason)
    if not _recorded(run):
        print(
            f"epochline: nothing was recorded: the store {run.store_uri} could not be written "
            f"(see the warnings above); {parser.report()}",
            file=sys.stderr,
            flush=True,
        )
        return False
    where = f"run {run.id} ({run.path}) in {run.store_uri}" if run else "tracking off, nothing stored"
    print(
        f"epochline: {where}: {status}{' (' + reason + ')' if reason else ''}; {parser.report()}",
        file=sys.stderr,
        flush=True,
    )
    return True


def cmd_run(args: argparse.Namespace) -> int:
    command: List[str] = list(args.cmd)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print("epochline run: no command given; e.g. epochline run -- python train.py", file=sys.stderr)
        return 2
    run = _init_run(args, "epochline-run")
    parser = LineParser(run)
    if run:
        run.log_text(f"$ {shlex.join(command)}", logger="epochline.run")
    scratch = tempfile.mkdtemp(prefix="epochline-run-")
    env = dict(os.environ, PYTHONUNBUFFERED="1", EPOCHLINE_RUN_TMP=scratch)
    own_group = _own_group()
    state: dict = {"proc": None, "pending": []}

    def forward(signum: int, frame: Any) -> None:
        proc = state["proc"]
        if proc is None:  # arrived while the command starts: delivered right after
            state["pending"].append(signum)
            return
        if proc.poll() is not None:
            return
        if signum == signal.SIGINT and not own_group and _terminal_sent_sigint(state["pgid"]):
            return
        try:
            proc.send_signal(signum)
        except OSError:
            pass

    # in place before the command starts: a signal can never find Python's default handler here.
    # A signal this process ignores (a background job of a shell ignores SIGINT) stays ignored, and
    # the command inherits that, exactly as without epochline.
    previous = {
        s: signal.signal(s, forward)
        for s in (signal.SIGINT, signal.SIGTERM)
        if signal.getsignal(s) is not signal.SIG_IGN
    }
    try:
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, **_popen_group_kwargs(own_group)
        )
    except OSError as exc:
        for s, handler in previous.items():
            signal.signal(s, handler)
        shutil.rmtree(scratch, ignore_errors=True)
        code = 127 if isinstance(exc, FileNotFoundError) else 126
        print(f"epochline run: cannot start {command[0]!r}: {exc}", file=sys.stderr)
        _finish(run, parser, "failed", f"command could not be started: {exc}")
        return code
    state["pgid"] = os.getpgid(proc.pid)
    state["proc"] = proc
    for signum in state["pending"]:
        forward(signum, None)

    lock = threading.Lock()
    emitting = bool(run) and bool(run.emit)
    out = _Out(sys.stdout, lock, whole_lines=emitting)
    err = _Out(sys.stderr, threading.Lock())
    real_stdout = sys.stdout
    if emitting:
        sys.stdout = _LineLockedText(real_stdout, lock)
    console = _Console()
    stop = threading.Event()
    assert proc.stdout is not None and proc.stderr is not None  # started with both piped
    pumps = [
        threading.Thread(
            target=_pump,
            args=(proc.stdout.fileno(), out, console, parser, stop),
            name="epochline-run-stdout",
            daemon=True,
        ),
        threading.Thread(
            target=_pump,
            args=(proc.stderr.fileno(), err, console, None, stop),
            name="epochline-run-stderr",
            daemon=True,
        ),
    ]
    for pump in pumps:
        pump.start()

    try:
        returncode = proc.wait()
        for pump in pumps:
            pump.join(DRAIN_TIMEOUT_S)
        stop.set()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        sys.stdout = real_stdout
    err.close()
    if not emitting:
        out.close()
    console.close()
    parser.close()
    parser.copy_uploads()
    shutil.rmtree(scratch, ignore_errors=True)  # after the uploads in it were copied
    if run:
        run.log_artifact(console.path, name="console.log")
    console.remove()
    recorded = _finish(run, parser, *outcome(parser, returncode))
    if emitting:  # the command's last, unterminated line comes after our lines, not before them
        out.close()
    code = returncode if returncode >= 0 else 128 - returncode
    return code if code or recorded else 1


def _not_a_log(path: str) -> Optional[str]:
    """Why ``path`` cannot be a saved console log (None when it can)."""
    if os.path.isdir(path):
        return "is a directory; give the saved output file of the training script"
    if not os.path.exists(path):
        return "no such file"
    try:
        with open(path, "rb") as fh:
            head = fh.read(8192)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if b"\x00" in head:
        return "is a binary file, not a saved console log (text lines)"
    return None


def cmd_ingest(args: argparse.Namespace) -> int:
    problem = _not_a_log(args.file)
    if problem:
        print(f"epochline ingest: {args.file}: {problem}", file=sys.stderr)
        return 2
    run = _init_run(args, "epochline-ingest")
    parser = LineParser(run)
    with open(args.file, "rb") as fh:
        while True:
            data = fh.read(READ_CHUNK)
            if not data:
                break
            parser.feed(data)
    parser.close()
    parser.copy_uploads(args.base_dir)
    if run:
        run.log_artifact(args.file, name="console.log")
    return 0 if _finish(run, parser, *outcome(parser, None)) else 1


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--path", default="default", help="where the run goes (e.g. cv/resnet50)")
    p.add_argument("--name", default=None, help="the run's name (a Kogu name line renames it)")
    p.add_argument("--tag", action="append", help="tag the run (repeatable)")
    p.add_argument(
        "--emit",
        default=None,
        help="line emitters the recording run prints itself (kogu,progress); "
        "default none: the command's own lines are passed through already",
    )


def configure_run(p: argparse.ArgumentParser) -> None:
    """``epochline run`` (an entry of :data:`epochline.cli.COMMANDS`)."""
    from .cli import _examples

    p.description = (
        "Run a command and record what it prints (Kogu, PROGRESS and legacy lines) as "
        "a run; its output passes through unchanged and its exit code is kept."
    )
    _common(p)
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="-- the command and its arguments")
    _examples(
        p,
        "epochline run -- python train.py --lr 0.1",
        "epochline run --path digits/mlp --name baseline --tag v1 -- python train.py",
        "epochline run --path demo/shell -- sh examples/any_language.sh",
    )
    p.set_defaults(func=cmd_run)


def configure_ingest(p: argparse.ArgumentParser) -> None:
    """``epochline ingest`` (an entry of :data:`epochline.cli.COMMANDS`)."""
    from .cli import _examples

    p.description = (
        "Record a saved console log (a training script's stdout) as a run, reading "
        "its lines as 'epochline run' does."
    )
    _common(p)
    _examples(p, "epochline ingest train.log", "epochline ingest train.log --path digits/mlp --name old-run")
    p.add_argument("file", help="the saved output (stdout) of a training script")
    p.add_argument(
        "--base-dir",
        default=None,
        help="directory relative upload paths are resolved in (default: the current one)",
    )
    p.set_defaults(func=cmd_ingest)
