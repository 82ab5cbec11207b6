"""``epochline compare|aggregate|plot|export|import|rm|tensorboard-export``: the insight commands.

Each command only parses its arguments, calls the Python API (:mod:`epochline.insight`, the same
functions the viewer uses) and renders the result: a rich table for people, ``--json`` (and
``--csv`` for aggregate) for scripts. Long work shows a progress bar on a terminal, none when
piped. A RUN is what ``show`` accepts (id, id prefix, name, alias, or a path meaning its latest
run); for ``plot`` a PATH selects every run under it.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import sys
from typing import Any, Callable, Dict, Iterator, List, Optional

from . import cli

_FAIL = 2


def _fmt(value: Any) -> str:
    return "-" if value is None else cli._fmt_value(value)


def _metrics(values: Optional[List[str]]) -> Optional[List[str]]:
    """--metric a --metric b,c -> [a, b, c]; None when not given."""
    if not values:
        return None
    return [m.strip() for v in values for m in v.split(",") if m.strip()]


def _fail(exc: BaseException) -> int:
    message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    print(f"epochline: {message}", file=sys.stderr)
    return _FAIL


@contextlib.contextmanager
def _progress(description: str) -> Iterator[Optional[Callable[[int, int], None]]]:
    """A rich progress bar on a terminal (stderr), else nothing."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _pipe_safe(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``epochline aggregate --csv | head`` ends quietly when the reader stops reading."""
    import functools
    import os

    @functools.wraps(command)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not fail
            return 0

    return wrapper


def _print_json(data: Any) -> None:
    print(json.dumps(data, allow_nan=False, default=str))


# -- compare ------------------------------------------------------------------------------------
def cmd_compare(args: argparse.Namespace) -> int:
    with cli._read_store(args.store) as store:
        try:
            result = store.compare(args.runs, metrics=_metrics(args.metric))
        except KeyError as exc:
            return _fail(exc)
    if args.json:
        _print_json(result)
        return 0
    from rich.table import Table
    from rich.text import Text

    # every cell a Text: names, params and metric keys are data, never rich markup
    runs = result["runs"]
    table = Table(title=f"{len(runs)} runs", title_justify="left")
    table.add_column("")
    for run in runs:
        table.add_column(Text(f"{run['name']}\n{run['id']}"), justify="right")
    table.add_row("path", *(Text(r["path"]) for r in runs))
    table.add_row("status", *(cli._status_text(r["status"]) for r in runs))
    table.add_row("duration", *(cli._fmt_duration(r["duration"]) for r in runs))
    for key in result["params"]["differing"]:
        table.add_row(Text(key, style="bold"), *(Text(_fmt(r["params"].get(key))) for r in runs))
    for key in result["metrics"]:
        modes = {r["metrics"][key]["mode"] for r in runs if r["metrics"].get(key)}
        mode = modes.pop() if len(modes) == 1 else "mixed"
        table.add_row(
            Text(f"{key} best ({mode})"),
            *(Text(_fmt((r["metrics"].get(key) or {}).get("best"))) for r in runs),
        )
        table.add_row(
            Text(f"{key} final"), *(Text(_fmt((r["metrics"].get(key) or {}).get("final"))) for r in runs)
        )
    same = result["params"]["same"]
    if same:
        table.caption = Text("same in all: " + ", ".join(f"{k}={_fmt(v)}" for k, v in same.items()))
        table.caption_justify = "left"
    cli._console().print(table)
    return 0


# -- aggregate ----------------------------------------------------------------------------------
_CSV_COLUMNS = [
    "group",
    "label",
    "runs",
    "excluded",
    "metric",
    "value",
    "mode",
    "n",
    "mean",
    "std",
    "sem",
    "ci_low",
    "ci_high",
    "min",
    "max",
]


def _csv_rows(result: Dict[str, Any]) -> Iterator[List[Any]]:
    for group in result["groups"]:
        key = group["key"] if isinstance(group["key"], str) else json.dumps(group["key"])
        for metric, entry in group["metrics"].items():
            for which in ("best", "final"):
                s = entry[which]
                ci = s["ci"] or [None, None]
                yield [
                    key,
                    group["label"],
                    len(group["runs"]),
                    len(group["excluded"]),
                    metric,
                    which,
                    entry["mode"],
                    s["n"],
                    s["mean"],
                    s["std"],
                    s["sem"],
                    ci[0],
                    ci[1],
                    s["min"],
                    s["max"],
                ]


def _write_csv(out: Any, result: Dict[str, Any]) -> None:
    writer = csv.writer(out)
    writer.writerow(_CSV_COLUMNS)
    writer.writerows(_csv_rows(result))


def _short(value: Any) -> str:
    """4 significant digits: a table of group statistics, not a data dump (--json/--csv are)."""
    return f"{value:.4g}" if isinstance(value, float) else _fmt(value)


def _mean_std(s: Dict[str, Any]) -> Any:
    from rich.text import Text

    if not s["n"]:
        return Text("-")
    text = Text(_short(s["mean"]))
    if s["std"] is not None:
        text.append(f" ± {_short(s['std'])}")
    if s["ci"]:
        text.append(f"\n[{_short(s['ci'][0])}, {_short(s['ci'][1])}]", style="dim")
    return text


def cmd_aggregate(args: argparse.Namespace) -> int:
    by: Any = "fingerprint" if not args.by else [b.strip() for b in args.by.split(",") if b.strip()]
    status = None if args.status == "all" else args.status
    with cli._read_store(args.store) as store:
        try:
            with _progress("aggregating") as progress:
                if progress:
                    progress(0, 0)
                result = store.aggregate(
                    path=args.path, tag=args.tag, by=by, metrics=_metrics(args.metric), status=status
                )
        except KeyError as exc:
            return _fail(exc)
    if args.json:
        _print_json(result)
        return 0
    if args.csv is not None:
        if args.csv == "-":
            _write_csv(sys.stdout, result)
        else:
            with open(args.csv, "w", newline="") as out:
                _write_csv(out, result)
        return 0
    from rich.table import Table
    from rich.text import Text

    groups = result["groups"]
    console = cli._console()
    console.print(
        f"{len(groups)} groups by {', '.join(by) if isinstance(by, list) else by}"
        f"{'' if status is None else f', {status} runs'}; each cell: the runs' best "
        "value, mean ± std [95 % CI]",
        markup=False,
    )
    table = Table()
    table.add_column("group")
    table.add_column("n", justify="right")
    for metric in result["metrics"]:
        modes = {g["metrics"][metric]["mode"] for g in groups}
        table.add_column(Text(f"{metric} ({modes.pop() if len(modes) == 1 else 'mixed'})"), justify="right")
    for group in groups:
        n = str(len(group["runs"]))
        if group["excluded"]:
            n += (
                f" (+{len(group['excluded'])} "
                + ", ".join(sorted({e["status"] for e in group["excluded"]}))
                + ")"
            )
        table.add_row(
            Text(group["label"]), n, *(_mean_std(group["metrics"][m]["best"]) for m in result["metrics"])
        )
    if not groups:
        table.caption = "no runs matched"
    console.print(table)
    return 0


# -- plot ---------------------------------------------------------------------------------------
def cmd_plot(args: argparse.Namespace) -> int:
    from .insight.plot import plot

    with cli._read_store(args.store) as store:
        try:
            runs = store.select(args.runs)
            items: Any = store.aggregate(runs=runs, status=None) if args.group else runs
            plot(
                items,
                args.metric,
                x=args.x,
                smooth=args.smooth,
                out=args.output,
                store=store,
                band=args.band,
                logy=args.logy,
                title=args.title,
            )
        except (KeyError, ValueError) as exc:
            return _fail(exc)
    print(args.output)
    return 0


# -- export / import / rm / tensorboard-export ----------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    with cli._read_store(args.store) as store:
        try:
            run = store.run(args.run)
        except KeyError as exc:
            return _fail(exc)
        with _progress(f"exporting {run.id}") as progress:
            path = run.export(args.output or f"{run.id}.zip", progress=progress)
    if args.json:
        _print_json({"run": run.id, "path": str(path), "bytes": path.stat().st_size})
    else:
        print(f"exported {run.id} to {path} ({path.stat().st_size:,} bytes)")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from .insight.archive import ArchiveError
    from .store.reader import open_store

    with open_store(args.store, create=True) as store:
        try:
            with _progress(f"importing {args.archive}") as progress:
                run = store.import_run(args.archive, new_id=args.new_id, progress=progress)
        except (ArchiveError, FileExistsError) as exc:
            return _fail(exc)
        if args.json:
            _print_json({"run": run.id, "path": run.path, "store": store.uri})
        else:
            print(f"imported {run.id} ({run.path}) into {store.uri}")
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    with cli._read_store(args.store) as store:
        try:
            runs = [store.run(r) for r in args.runs]
        except KeyError as exc:
            return _fail(exc)
        runs = list({r.id: r for r in runs}.values())
        if not args.yes:
            listing = "\n".join(f"  {r.id}  {r.path}  {r.status}" for r in runs)
            if not sys.stdin.isatty():
                return _fail(
                    RuntimeError(
                        f"would delete {len(runs)} runs:\n{listing}\n"
                        "not a terminal to ask on; pass --yes to delete"
                    )
                )
            answer = input(f"delete {len(runs)} runs from {store.uri}?\n{listing}\n[y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("nothing deleted")
                return 1
        total = {"runs": 0, "points": 0, "media_files": 0}
        try:
            for run in runs:
                for key, value in store.delete_run(run).items():
                    total[key] += value
        except RuntimeError as exc:
            print(f"deleted {total['runs']} runs before this one", file=sys.stderr)
            return _fail(exc)
    if args.json:
        _print_json({**total, "ids": [r.id for r in runs]})
    else:
        print(f"deleted {total['runs']} runs, {total['points']:,} points, {total['media_files']} media files")
    return 0


def cmd_tensorboard_export(args: argparse.Namespace) -> int:
    with cli._read_store(args.store) as store:
        try:
            runs = store.select(args.runs)
            folders = [run.export_tensorboard(args.output) for run in runs]
        except (KeyError, ModuleNotFoundError) as exc:
            return _fail(exc)
    for folder in folders:
        print(folder)
    print(f"view with: tensorboard --logdir {args.output}", file=sys.stderr)
    return 0


# -- parsers (registered in epochline.cli.COMMANDS; --store is added there) ------------------------
def _describe(p: argparse.ArgumentParser, *examples: str, description: Optional[str] = None) -> None:
    """Every insight command's --help ends with an example."""
    if description:
        p.description = description
    p.epilog = "example:\n  " + "\n  ".join(examples)
    p.formatter_class = argparse.RawDescriptionHelpFormatter


def _json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _metric_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--metric", "-m", action="append", help="only these metrics (repeatable, or comma separated)"
    )


def configure_compare(p: argparse.ArgumentParser) -> None:
    _describe(
        p,
        "epochline compare digits/mlp/lr0.1 digits/mlp/lr0.01 --metric val_accuracy",
        description="Runs side by side: the params that differ, and each metric's best (per the "
        "run's primary metric mode, else min for *loss, max otherwise) and final value.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run id, id prefix, name, alias or path")
    _metric_flag(p)
    _json_flag(p)
    p.set_defaults(func=_pipe_safe(cmd_compare))


def configure_aggregate(p: argparse.ArgumentParser) -> None:
    _describe(
        p,
        "epochline aggregate --path digits --metric val_accuracy",
        "epochline aggregate --by lr,model --csv results.csv",
        description="Groups runs by parameter fingerprint (params given to ignore_params, e.g. the "
        "seed, do not count) or by the params named in --by, and describes each "
        "metric's best and final value per group: n, mean, std, standard error, 95 % "
        "Student-t interval, min, max. Only completed runs count unless --status says "
        "otherwise; the others are listed per group.",
    )
    p.add_argument("--path", help="only runs at this path or below it")
    p.add_argument("--tag", help="only runs with this tag")
    p.add_argument("--by", help="group by these params (comma separated) instead of the fingerprint")
    p.add_argument(
        "--status",
        default="completed",
        choices=["completed", "failed", "interrupted", "crashed", "running", "all"],
        help="which runs count (default: completed)",
    )
    _metric_flag(p)
    _json_flag(p)
    p.add_argument(
        "--csv",
        nargs="?",
        const="-",
        metavar="FILE",
        help="one row per group, metric and best/final, to FILE or stdout",
    )
    p.set_defaults(func=_pipe_safe(cmd_aggregate))


def configure_plot(p: argparse.ArgumentParser) -> None:
    _describe(p, "epochline plot digits --metric val_accuracy --x epoch --group -o acc.png")
    p.add_argument("runs", nargs="+", metavar="RUN|PATH", help="runs, or paths (every run under it)")
    p.add_argument("--metric", "-m", required=True)
    p.add_argument("--x", default="step", choices=["step", "epoch", "wall_time"])
    p.add_argument(
        "--group",
        action="store_true",
        help="one mean line with a band per configuration (fingerprint) instead of a line per run",
    )
    p.add_argument("--band", default="std", choices=["std", "ci"], help="band of --group (default std)")
    p.add_argument("--smooth", type=float, default=0.0, help="EMA weight in [0, 1), as TensorBoard")
    p.add_argument("--logy", action="store_true", help="logarithmic y axis")
    p.add_argument("--title")
    p.add_argument("-o", "--output", default="plot.png", help="PNG, SVG or PDF by suffix (default plot.png)")
    p.set_defaults(func=_pipe_safe(cmd_plot))


def configure_export(p: argparse.ArgumentParser) -> None:
    _describe(p, "epochline export digits/mlp -o mlp.zip")
    p.add_argument("run", metavar="RUN")
    p.add_argument("-o", "--output", help="the zip to write (default RUN_ID.zip)")
    _json_flag(p)
    p.set_defaults(func=_pipe_safe(cmd_export))


def configure_import(p: argparse.ArgumentParser) -> None:
    _describe(p, "epochline import mlp.zip --store postgresql://host/db --new-id")
    p.add_argument("archive", metavar="ZIP")
    p.add_argument("--new-id", action="store_true", help="give the run a new id (to import it twice)")
    _json_flag(p)
    p.set_defaults(func=_pipe_safe(cmd_import))


def configure_rm(p: argparse.ArgumentParser) -> None:
    _describe(p, "epochline rm 20250101-120000-ab12cd34 digits/old --yes")
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    _json_flag(p)
    p.set_defaults(func=_pipe_safe(cmd_rm))


def configure_tensorboard_export(p: argparse.ArgumentParser) -> None:
    _describe(p, "epochline tensorboard-export digits -o tb && tensorboard --logdir tb")
    p.add_argument("runs", nargs="+", metavar="RUN|PATH")
    p.add_argument("-o", "--output", required=True, help="the log directory to write into")
    p.set_defaults(func=_pipe_safe(cmd_tensorboard_export))
