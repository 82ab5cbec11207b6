"""The ``epochline`` command: record runs (``run``, ``ingest``) and read them back (``ls``, ``show``, ...).

Every subcommand is one entry of :data:`COMMANDS` (name, help, where its arguments are defined);
its code lives in its own module. ``--json`` output is meant for scripts, the tables for people.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import TYPE_CHECKING, Any, Dict, NamedTuple, Optional, Sequence, Tuple

from ._json import replace_nonfinite
from .errors import AmbiguousRunError, RunNotFoundError, StoreNotFoundError

if TYPE_CHECKING:
    from .store.reader import RunView, Store


def _fmt_value(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.6g}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt_value(v) for v in value) + "]"
    return str(value)


def _fmt_time(t: Optional[float]) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"


def _fmt_duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{sec:02d}s" if hours else f"{minutes}m{sec:02d}s"


def _console():
    from rich.console import Console

    # piped output (CI logs, `| less`) gets a wide page instead of rich's 80-column default
    width = None if sys.stdout.isatty() else 200
    return Console(width=width, highlight=False)


def _status_style(status: str) -> str:
    return {"completed": "green", "failed": "red", "crashed": "red", "interrupted": "yellow",
            "running": "cyan"}.get(status, "")


def _read_store(store: Optional[str]) -> Store:
    """Open a store for reading; a directory without a store is an error, not a new empty store."""
    from .store.reader import open_store  # here, not at the top: `epochline --help` stays fast
    from .errors import StoreVersionError

    try:
        return open_store(store)
    except (StoreNotFoundError, StoreVersionError) as exc:
        raise SystemExit(f"epochline: {exc}") from None


def cmd_ls(args: argparse.Namespace) -> int:
    with _read_store(args.store) as store:
        runs = store.runs(path=args.path, tag=args.tag, status=args.status)
        if args.json:
            print(json.dumps([r.to_dict(full=False) for r in runs], allow_nan=False, default=str))
            return 0
        from rich.table import Table

        table = Table(title=f"{len(runs)} runs in {store.uri}", title_justify="left")
        for column in ("id", "path", "name", "status", "started", "duration", "primary", "tags"):
            table.add_column(column, no_wrap=column in ("id", "started"))
        for run in runs:
            primary = ""
            if run.primary_metric:
                best = run.summary.get(f"best_{run.primary_metric}")
                primary = f"{run.primary_metric}={_fmt_value(best)}" if best is not None else run.primary_metric
            table.add_row(run.id, run.path, run.name,
                          f"[{_status_style(run.status)}]{run.status}[/]", _fmt_time(run.start_time),
                          _fmt_duration(run.duration), primary, ", ".join(run.tags))
        _console().print(table)
    return 0


def _show_table(run: RunView) -> None:
    from rich.table import Table

    console = _console()
    console.print(f"[bold]{run.name}[/]  {run.id}  path={run.path}"
                  f"{'  alias=' + run.alias if run.alias else ''}")
    status = f"[{_status_style(run.status)}]{run.status}[/]"
    console.print(f"status {status}{' (' + run.reason + ')' if run.reason else ''}  started "
                  f"{_fmt_time(run.start_time)}  duration {_fmt_duration(run.duration)}  "
                  f"host {run.host} pid {run.pid}{'  framework ' + run.framework if run.framework else ''}")
    if run.tags:
        console.print("tags: " + ", ".join(run.tags))
    if run.lost:
        console.print(f"[red]{run.lost} events were lost while recording (see warnings of that run)[/]")

    def kv_table(title: str, items: Dict[str, Any], caption: Optional[str] = None) -> None:
        if not items:
            return
        table = Table(title=title, title_justify="left", show_header=False, caption=caption,
                      caption_justify="left")
        table.add_column("key")
        table.add_column("value", overflow="fold")
        for key, value in items.items():
            table.add_row(key, _fmt_value(value))
        console.print(table)

    kv_table("params", run.params, caption=f"fingerprint {run.fingerprint}")
    kv_table("summary", run.summary)
    epochs = run.epochs()
    if epochs:
        fields = []
        for record in epochs:
            fields += [k for k in record["values"] if k not in fields]
        table = Table(title="epochs", title_justify="left")
        table.add_column("epoch", justify="right")
        for field in fields:
            table.add_column(field + (" %" if any(field in r["percent"] for r in epochs) else ""),
                             justify="right")
        for record in epochs:
            table.add_row(str(record["epoch"]), *(_fmt_value(record["values"].get(f, "")) for f in fields))
        console.print(table)
    keys = run.metric_keys()
    if keys:
        table = Table(title="metrics", title_justify="left")
        for column in ("key", "points", "first step", "last step", "last", "min", "max"):
            table.add_column(column, justify="left" if column == "key" else "right")
        for key in keys:
            points = run.metrics(key)
            numbers = [v for _, _, v in points if isinstance(v, (int, float)) and not isinstance(v, bool)
                       and v == v]
            table.add_row(key, str(len(points)), str(points[0][1]), str(points[-1][1]),
                          _fmt_value(points[-1][2]), _fmt_value(min(numbers)) if numbers else "",
                          _fmt_value(max(numbers)) if numbers else "")
        console.print(table)
    images, artifacts = run.images(), run.artifacts()
    for image in images:
        console.print(f"image {image.key} step {image.step}: {image.path}"
                      f"{'  ' + image.caption if image.caption else ''}")
    for artifact in artifacts:
        console.print(f"artifact {artifact.name} ({artifact.size} bytes): {artifact.path}")
    texts = run.texts()
    if texts:
        console.print(f"text ({len(texts)} lines, last 10):")
        for text in texts[-10:]:
            console.print(f"  {text.text}", markup=False)
    for comment in run.comments():
        console.print(f"comment: {comment}", markup=False)
    from .context._show import render as show_context

    show_context(console, run)


def cmd_show(args: argparse.Namespace) -> int:
    with _read_store(args.store) as store:
        try:
            run = store.run(args.run)
        except (RunNotFoundError, AmbiguousRunError) as exc:
            print(f"epochline: {exc}", file=sys.stderr)
            return 2
        if args.json:
            print(json.dumps(replace_nonfinite(run.to_dict()), allow_nan=False, default=str))
        else:
            _show_table(run)
    return 0


def add_store_option(p: argparse.ArgumentParser) -> None:
    """The ``--store`` option every command that reads or writes a store takes."""
    p.add_argument("--store", default=None,
                   help="store directory or URI (default: $EPOCHLINE_STORE or ./epochline-runs)")


def configure_ls(p: argparse.ArgumentParser) -> None:
    p.add_argument("--path", help="only runs at this path or below it")
    p.add_argument("--tag")
    p.add_argument("--status", choices=["running", "completed", "failed", "interrupted", "crashed"])
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_ls)


def configure_show(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run id, unique id prefix, name or alias")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_show)


# -- the command table ------------------------------------------------------------------------------
class Command(NamedTuple):
    """One ``epochline`` subcommand.

    ``configure`` is ``"module:function"``: ``function(parser)`` adds the command's arguments and
    ``parser.set_defaults(func=cmd)`` with ``cmd(args) -> exit code``. The module is imported only
    when that command runs (or shows its help), so ``epochline --help`` and each command start
    fast whatever the others import.
    """

    name: str
    help: str
    configure: str
    store: bool = True
    """Whether the command takes ``--store``."""
    # a NamedTuple, not a dataclass: dataclasses imports inspect, a third of `epochline --help`


COMMANDS: Tuple[Command, ...] = (
    Command("ls", "list runs", "epochline.cli:configure_ls"),
    Command("show", "show one run", "epochline.cli:configure_show"),
    Command("run", "run a command and record its output as a run", "epochline.ingest_cli:configure_run"),
    Command("ingest", "record a saved console log as a run", "epochline.ingest_cli:configure_ingest"),
    Command("compare", "compare runs: differing params, best/final metrics",
            "epochline.cli_insight:configure_compare"),
    Command("aggregate", "aggregate seeds: n, mean ± std, confidence interval",
            "epochline.cli_insight:configure_aggregate"),
    Command("plot", "plot a metric of runs or seed groups to PNG/SVG", "epochline.cli_insight:configure_plot"),
    Command("export", "write one run as a zip with a SHA-256 manifest", "epochline.cli_insight:configure_export"),
    Command("import", "restore a run from an exported zip", "epochline.cli_insight:configure_import"),
    Command("rm", "delete runs and the media no other run uses", "epochline.cli_insight:configure_rm"),
    Command("tensorboard-export", "write runs as TensorBoard event files",
            "epochline.cli_insight:configure_tensorboard_export"),
    Command("ui", "browse runs in a local, read-only web viewer", "epochline.ui.cli:configure_ui"),
    Command("report", "write runs as one self-contained HTML file", "epochline.ui.cli:configure_report"),
    Command("upgrade", "upgrade a store written by an older epochline", "epochline.store_cli:configure_upgrade"),
)
"""Every ``epochline`` subcommand, in the order ``--help`` lists them. To add one, write its
``configure`` function (and ``cmd_...``) in your own module and add one entry here."""


def _configure(command: Command, p: argparse.ArgumentParser) -> None:
    import importlib

    module, _, function = command.configure.partition(":")
    if command.store:
        add_store_option(p)
    getattr(importlib.import_module(module), function)(p)


def build_parser(argv: Optional[Sequence[str]] = None) -> argparse.ArgumentParser:
    """The parser, with the arguments of the command named in ``argv`` (all of them if None)."""
    parser = argparse.ArgumentParser(
        prog="epochline", description="Record training runs and read them back. "
        "'epochline COMMAND --help' describes each command.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = _command_name(argv)
    for command in COMMANDS:
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        if argv is None or command.name == wanted:
            _configure(command, p)
    return parser


def _command_name(argv: Optional[Sequence[str]]) -> Optional[str]:
    """The subcommand ``argv`` names: its first argument that is not an option."""
    return next((a for a in argv or () if not a.startswith("-")), None)


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    return args.func(args)
