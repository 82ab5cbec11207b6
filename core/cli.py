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
from .errors import AmbiguousRunError, RunNotFoundError, StoreNotFoundError, StoreVersionError

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


def _cell(value: Any) -> Any:
    """A table cell that shows ``value`` literally: ``[red]x`` or ``a[/b]`` in a name, a param or
    a metric key is data, never rich markup."""
    from rich.text import Text

    return Text(_fmt_value(value))


def _fmt_time(t: Optional[float]) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"


def _fmt_duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{sec:02d}s" if hours else f"{minutes}m{sec:02d}s"


def _duration(run: RunView) -> Optional[float]:
    """Seconds the run took, or has been running until now (not until its last heartbeat)."""
    if run.status == "running" and run.start_time is not None:
        return max(0.0, time.time() - run.start_time)
    return run.duration


def _console():
    from rich.console import Console

    # piped output (CI logs, `| less`) gets a wide page instead of rich's 80-column default
    width = None if sys.stdout.isatty() else 200
    return Console(width=width, highlight=False)


def _status_style(status: str) -> str:
    return {
        "completed": "green",
        "failed": "red",
        "crashed": "red",
        "interrupted": "yellow",
        "running": "cyan",
    }.get(status, "")


def _status_text(status: str) -> Any:
    """The status as a styled cell (the text itself never read as markup)."""
    from rich.text import Text

    return Text(status, style=_status_style(status))


def _read_store(store: Optional[str]) -> Store:
    """Open a store for reading; a directory without a store is an error, not a new empty store."""
    from .store.reader import open_store  # here, not at the top: `epochline --help` stays fast

    try:
        return open_store(store)
    except (StoreNotFoundError, StoreVersionError) as exc:
        raise SystemExit(f"epochline: {exc}") from None


def _percent_fields(run: RunView) -> set:
    """Keys that are percent in this run's epoch records (summary values on that scale too)."""
    return {k for record in run.epochs() for k in record["percent"]}


def _is_percent(key: str, percent: set, primary: Optional[str] = None) -> bool:
    from .epochs import canonical_field

    for prefix in ("", "best_", "final_"):
        if key.startswith(prefix) and key[len(prefix) :] in percent:
            return True
    if primary and key == f"best_{primary}":
        return (canonical_field(primary) or "") in percent
    return False


def _short_ids(ids: Sequence[str], everything: Sequence[str]) -> Dict[str, str]:
    """The shortest prefix of each id that no other id of the store shares (``show`` takes it)."""
    ordered = sorted(everything)
    out = {}
    for run_id in ids:
        i = ordered.index(run_id)
        neighbours = [ordered[j] for j in (i - 1, i + 1) if 0 <= j < len(ordered)]
        n = (
            max(
                (
                    next((k for k, (a, b) in enumerate(zip(run_id, other)) if a != b), len(run_id))
                    for other in neighbours
                ),
                default=0,
            )
            + 1
        )
        out[run_id] = run_id[: max(n, 8)]
    return out


def _primary_text(run: RunView, summary: Dict[str, Any]) -> str:
    if not run.primary_metric:
        return ""
    best = summary.get(f"best_{run.primary_metric}")
    if best is None:
        return run.primary_metric
    unit = " %" if _is_percent(f"best_{run.primary_metric}", _percent_fields(run), run.primary_metric) else ""
    return f"{run.primary_metric}={_fmt_value(best)}{unit}"


LS_COLUMNS = (
    ("id", 8),
    ("path", 12),
    ("name", 10),
    ("status", 9),
    ("started", 19),
    ("duration", 8),
    ("primary", 16),
    ("tags", 6),
)
"""ls columns with the width each needs at least. When the page is narrower than they need,
``started`` (the id starts with the start time), then ``tags``, then ``duration`` are left out, so
that id, path, name, status and primary keep their room; long values wrap, nothing is cut."""
LS_OPTIONAL = ("started", "tags", "duration")


def cmd_ls(args: argparse.Namespace) -> int:
    with _read_store(args.store) as store:
        runs = store.runs(path=args.path, tag=args.tag, status=args.status)
        if args.json:
            rows = []
            for r in runs:
                row = r.to_dict(full=False)
                row.update(
                    duration=_duration(r), params=r.params, fingerprint=r.fingerprint, summary=r.summary
                )
                rows.append(row)
            print(json.dumps(replace_nonfinite(rows), allow_nan=False, default=str))
            return 0
        from rich.table import Table

        console = _console()
        width = console.width
        columns = list(LS_COLUMNS)
        for optional in LS_OPTIONAL:  # leave out what the width cannot hold
            if sum(w + 3 for _, w in columns) + 1 > width:
                columns = [c for c in columns if c[0] != optional]
        names = [c for c, _ in columns]
        short = _short_ids([r.id for r in runs], [r.id for r in store.runs()]) if width < 160 else {}
        narrow = sum(w + 3 for _, w in columns) + 1 > width - 20
        # narrow: the columns share the page by their needs (rich would otherwise crop the table
        # at the edge once single words, such as an id, are longer than their share)
        table = Table(title=f"{len(runs)} runs in {store.uri}", title_justify="left", expand=narrow)
        for column, minimum in columns:
            table.add_column(column, min_width=minimum, overflow="fold", ratio=minimum if narrow else None)
        for run in runs:
            summary = run.summary
            cells = {
                "id": _cell(short.get(run.id, run.id)),
                "path": _cell(run.path),
                "name": _cell(run.name),
                "status": _status_text(run.status),
                "started": _cell(_fmt_time(run.start_time)),
                "duration": _cell(_fmt_duration(_duration(run))),
                "primary": _cell(_primary_text(run, summary)),
                "tags": _cell(", ".join(run.tags)),
            }
            table.add_row(*(cells[c] for c in names))
        console.print(table)
        if short:
            console.print(
                "ids shortened to a unique prefix: `epochline show PREFIX` takes it",
                style="dim",
                markup=False,
            )
    return 0


def _show_table(run: RunView) -> None:
    from rich.table import Table
    from rich.text import Text

    console = _console()
    header = Text.assemble(
        (run.name, "bold"), f"  {run.id}  path={run.path}", f"  alias={run.alias}" if run.alias else ""
    )
    console.print(header)
    console.print(
        Text.assemble(
            "status ",
            _status_text(run.status),
            f" ({run.reason})" if run.reason else "",
            f"  started {_fmt_time(run.start_time)}  duration "
            f"{_fmt_duration(_duration(run))}  host {run.host} pid {run.pid}",
            f"  framework {run.framework}" if run.framework else "",
        )
    )
    if run.tags:
        console.print(Text("tags: " + ", ".join(run.tags)))
    if run.lost:
        console.print(
            Text(f"{run.lost} events were lost while recording (see warnings of that run)", style="red")
        )
    percent = _percent_fields(run)

    def kv_table(
        title: str, items: Dict[str, Any], caption: Optional[str] = None, percent_keys: Optional[set] = None
    ) -> None:
        if not items:
            return
        table = Table(
            title=title, title_justify="left", show_header=False, caption=caption, caption_justify="left"
        )
        table.add_column("key", overflow="fold")
        table.add_column("value", overflow="fold")
        for key, value in items.items():
            unit = (
                " %"
                if percent_keys is not None and _is_percent(key, percent_keys, run.primary_metric)
                else ""
            )
            table.add_row(_cell(key + unit), _cell(value))
        console.print(table)

    kv_table("params", run.params, caption=f"fingerprint {run.fingerprint}")
    if percent and run.summary:
        console.print(
            "summary values marked % are in percent, as in the epoch records", style="dim", markup=False
        )
    kv_table("summary", run.summary, percent_keys=percent)
    epochs = run.epochs()
    if epochs:
        fields: list = []
        for record in epochs:
            fields += [k for k in record["values"] if k not in fields]
        table = Table(title="epochs", title_justify="left")
        table.add_column("epoch", justify="right")
        for field in fields:
            table.add_column(
                Text(field + (" %" if field in percent else "")), justify="right", overflow="fold"
            )
        for record in epochs:
            table.add_row(str(record["epoch"]), *(_cell(record["values"].get(f, "")) for f in fields))
        console.print(table)
    keys = run.metric_keys()
    if keys:
        table = Table(title="metrics", title_justify="left")
        for column in ("key", "points", "first step", "last step", "last", "min", "max"):
            table.add_column(column, justify="left" if column == "key" else "right", overflow="fold")
        for key in keys:
            points = run.metrics(key)
            numbers = [
                v for _, _, v in points if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v
            ]
            table.add_row(
                _cell(key),
                str(len(points)),
                str(points[0][1]),
                str(points[-1][1]),
                _cell(points[-1][2]),
                _cell(min(numbers)) if numbers else "",
                _cell(max(numbers)) if numbers else "",
            )
        console.print(table)
    images, artifacts = run.images(), run.artifacts()
    for image in images:
        console.print(
            f"image {image.key} step {image.step}: {image.path}"
            f"{'  ' + image.caption if image.caption else ''}",
            markup=False,
        )
    for artifact in artifacts:
        console.print(f"artifact {artifact.name} ({artifact.size} bytes): {artifact.path}", markup=False)
    texts = run.texts()
    if texts:
        console.print(f"text ({len(texts)} lines, last 10):", markup=False)
        for text in texts[-10:]:
            console.print(f"  {text.text}", markup=False)
    for comment in run.comments():
        console.print(f"comment: {comment}", markup=False)
    from .context._show import render as show_context

    show_context(console, run)


def _show_dict(run: RunView) -> Dict[str, Any]:
    """Everything ``show`` knows, for ``--json`` (histograms included)."""
    data = run.to_dict()
    data["duration"] = _duration(run)
    data["histograms"] = {
        key: [{"wall_time": t, "step": s, **h} for t, s, h in run.histograms(key)]
        for key in run.histogram_keys()
    }
    return data


def _pick(store: Store, ref: str) -> Tuple[RunView, Optional[str]]:
    """The run ``ref`` names, and a note when a name is shared and the latest was taken."""
    try:
        return store.run(ref), None
    except AmbiguousRunError:
        named = [r for r in store.runs() if r.name == ref or r.alias == ref]
        if len(named) < 2:
            raise
        latest = named[-1]  # runs() is oldest first
        return latest, (
            f"{len(named)} runs are named {ref!r}; showing the latest, {latest.id} "
            f"(the others: {', '.join(r.id for r in named[:-1][-3:])})"
        )


def cmd_show(args: argparse.Namespace) -> int:
    with _read_store(args.store) as store:
        try:
            run, note = _pick(store, args.run)
        except (RunNotFoundError, AmbiguousRunError) as exc:
            print(f"epochline: {exc}", file=sys.stderr)
            return 2
        if note:
            print(f"epochline: {note}", file=sys.stderr)
        if args.json:
            print(json.dumps(replace_nonfinite(_show_dict(run)), allow_nan=False, default=str))
        else:
            _show_table(run)
    return 0


def add_store_option(p: argparse.ArgumentParser) -> None:
    """The ``--store`` option every command that reads or writes a store takes."""
    p.add_argument(
        "--store", default=None, help="store directory or URI (default: $EPOCHLINE_STORE or ./epochline-runs)"
    )


def _examples(p: argparse.ArgumentParser, *lines: str) -> None:
    """Plain help: the description wrapped at 78 columns, then example command lines."""
    import textwrap

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    if p.description:
        p.description = textwrap.fill(p.description, 78)
    p.epilog = "examples:\n" + "\n".join(f"  {line}" for line in lines)


def configure_ls(p: argparse.ArgumentParser) -> None:
    p.add_argument("--path", help="only runs at this path or below it (e.g. cv/resnet50)")
    p.add_argument("--tag", help="only runs with this tag")
    p.add_argument(
        "--status",
        choices=["running", "completed", "failed", "interrupted", "crashed"],
        help="only runs with this status",
    )
    p.add_argument(
        "--json", action="store_true", help="one JSON array, every run with its params and summary"
    )
    _examples(
        p,
        "epochline ls",
        "epochline ls --path cv/resnet50 --status completed",
        "epochline ls --tag baseline --json",
    )
    p.set_defaults(func=cmd_ls)


def configure_show(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "run",
        help="run id, unique id prefix, name or alias, or a path (its latest run); "
        "a name several runs share gives the latest of them",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="everything as one JSON object (metrics, epochs, histograms, plots, ...)",
    )
    _examples(
        p,
        "epochline show 20261129-1907",
        "epochline show baseline",
        "epochline show cv/resnet50   # the latest run at that path",
        "epochline show baseline --json",
    )
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
    Command(
        "compare",
        "compare runs: differing params, best/final metrics",
        "epochline.cli_insight:configure_compare",
    ),
    Command(
        "aggregate",
        "aggregate seeds: n, mean ± std, confidence interval",
        "epochline.cli_insight:configure_aggregate",
    ),
    Command(
        "plot", "plot a metric of runs or seed groups to PNG/SVG", "epochline.cli_insight:configure_plot"
    ),
    Command(
        "export", "write one run as a zip with a SHA-256 manifest", "epochline.cli_insight:configure_export"
    ),
    Command("import", "restore a run from an exported zip", "epochline.cli_insight:configure_import"),
    Command("rm", "delete runs and the media no other run uses", "epochline.cli_insight:configure_rm"),
    Command(
        "tensorboard-export",
        "write runs as TensorBoard event files",
        "epochline.cli_insight:configure_tensorboard_export",
    ),
    Command("ui", "browse runs in a local, read-only web viewer", "epochline.ui.cli:configure_ui"),
    Command("report", "write runs as one self-contained HTML file", "epochline.ui.cli:configure_report"),
    Command(
        "upgrade", "upgrade a store written by an older epochline", "epochline.store_cli:configure_upgrade"
    ),
)
"""Every ``epochline`` subcommand, in the order ``--help`` lists them. To add one, write its
``configure`` function (and ``cmd_...``) in your own module and add one entry here."""


def _configure(command: Command, p: argparse.ArgumentParser) -> None:
    import importlib

    module, _, function = command.configure.partition(":")
    if command.store:
        add_store_option(p)
    getattr(importlib.import_module(module), function)(p)


class _Version(argparse.Action):
    """``--version``: the version is looked up only when asked for (``--help`` stays fast)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: Any,
        values: Any,
        option_string: Optional[str] = None,
    ) -> None:
        from . import __version__

        print(f"epochline {__version__}")
        parser.exit()


def build_parser(argv: Optional[Sequence[str]] = None) -> argparse.ArgumentParser:
    """The parser, with the arguments of the command named in ``argv`` (all of them if None)."""
    parser = argparse.ArgumentParser(
        prog="epochline",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Record training runs and read them back. 'epochline COMMAND --help' shows a "
        "command's options and examples.",
        epilog="examples:\n  epochline ls\n  epochline show baseline\n"
        "  epochline run --path digits/mlp -- python train.py\n  epochline ingest train.log",
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="print epochline's version and exit")
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
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        message = _store_problem(exc)
        if message is None:
            raise
        print(f"epochline: {message}", file=sys.stderr)
        return 2


def _store_problem(exc: BaseException) -> Optional[str]:
    """One line for a store that cannot be read (None: a bug, which keeps its traceback).

    PostgreSQL down or refusing, an unknown URI scheme, a file that is not an SQLite database, a
    store written by a newer epochline: each is a fact about the store, not a crash.
    """
    import sqlite3

    from .errors import EpochlineError

    if isinstance(exc, sqlite3.DatabaseError):
        return f"the store cannot be read: {exc} (is it an epochline store, and not damaged?)"
    if isinstance(exc, (EpochlineError, OSError)):
        return str(exc) or type(exc).__name__
    module = type(exc).__module__ or ""
    if module.startswith("psycopg"):  # OperationalError: server down, auth, unknown database
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"PostgreSQL: {first}"
    return None
