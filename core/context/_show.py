"""The part of ``epochline show`` for what a run carries beside its metrics (issue 17)."""

from __future__ import annotations

from typing import Any, Dict, List

CONSOLE_TAIL = 10


def _size(n: Any) -> str:
    if not isinstance(n, (int, float)):
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


def env_lines(env: Dict[str, Any]) -> List[str]:
    py, plat, cpu = env.get("python") or {}, env.get("platform") or {}, env.get("cpu") or {}
    gpus = [g.get("name", g.get("error", "?")) for g in env.get("gpus") or []]
    head = (
        f"env: Python {py.get('version', '?')} on {plat.get('system', '?')} {plat.get('machine', '')}"
        f", {cpu.get('usable', cpu.get('count', '?'))} CPUs ({cpu.get('model') or '?'}), "
        f"{_size(env.get('memory_bytes'))} RAM, GPUs: {', '.join(gpus) if gpus else 'none'}"
    )
    lines = [head]
    packages = env.get("packages") or {}
    if packages:
        lines.append("packages: " + ", ".join(f"{k} {v}" for k, v in packages.items()))
    git = env.get("git")
    if isinstance(git, dict) and "error" in git:
        lines.append(f"git: {git['error']}")
    elif isinstance(git, dict):
        lines.append(
            f"git: {git.get('branch') or '(detached)'} @ {(git.get('commit') or '?')[:12]}"
            f"{' (dirty)' if git.get('dirty') else ''}"
        )
    command = env.get("command") or {}
    if command.get("argv"):
        lines.append(f"command: {' '.join(command['argv'])}  (in {command.get('cwd')})")
    return lines


def _where(record: Dict[str, Any]) -> str:
    if "uri" in record:
        return record["uri"]
    if "location" in record:
        return ", ".join(f"{k}={v}" for k, v in record["location"].items())
    return record.get("path", "-")


def _note(record: Dict[str, Any]) -> str:
    notes = []
    if record.get("exists") is False:
        notes.append(f"missing ({record.get('error')})")
    if record.get("stopped"):
        notes.append(record["stopped"])
    if record.get("unreadable"):
        notes.append(f"{record['unreadable']} unreadable")
    archive = record.get("archive") or {}
    if archive.get("artifact"):
        notes.append(f"archived as {archive['artifact']} ({_size(archive.get('bytes'))})")
    elif archive.get("refused"):
        notes.append(f"not archived: {archive['refused']}")
    if record.get("config"):
        notes.append(f"config: {len(record['config'])} keys")
    if record.get("description"):
        notes.append(str(record["description"]))
    return "; ".join(notes)


def _head(console: Any, run: Any) -> None:
    env = run.env
    if env:
        for line in env_lines(env):
            console.print(line, markup=False)
    code = run.code
    if code:
        if code.get("artifact"):
            console.print(
                f"code: {code['artifact']} ({code.get('files')} files, {_size(code.get('bytes'))}, "
                f"from {code.get('root')} by {code.get('mode')})",
                markup=False,
            )
        else:
            console.print(f"code: not stored ({code.get('refused')})", markup=False)
    meta = run.param_meta
    if meta.get("parents"):
        off = set(run.ignored_params)
        console.print(
            "param parents: "
            + ", ".join(
                f"{c} -> {p}{' (not counted)' if c in off else ''}" for c, p in meta["parents"].items()
            ),
            markup=False,
        )
    if meta.get("name_params"):
        console.print("name from params: " + ", ".join(meta["name_params"]), markup=False)


def render(console: Any, run: Any) -> None:
    """Print the environment, code, config files, datasets, models, parameter model, console."""
    from rich.table import Table

    _head(console, run)
    configs = run.config_files()
    if configs:
        table = Table(title="config files", title_justify="left")
        for column in ("file", "stored as", "params"):
            table.add_column(column)
        for c in configs:
            params = str(c.get("params")) if c.get("parsed") else c.get("note") or c.get("error") or ""
            table.add_row(c["name"], c.get("artifact") or "-", params)
        console.print(table)
    for title, rows, first in (("datasets", run.datasets(), "context"), ("models", run.models(), "source")):
        if not rows:
            continue
        table = Table(title=title, title_justify="left")
        for column in ("name", first, "location", "files", "size", "fingerprint", "notes"):
            table.add_column(column, overflow="fold")
        for r in rows:
            table.add_row(
                r["name"],
                str(r.get(first, "")),
                _where(r),
                str(r.get("files", "-")),
                _size(r.get("bytes")) if "bytes" in r else "-",
                r.get("fingerprint", "-"),
                _note(r),
            )
        console.print(table)
    console_lines = run.console()
    if console_lines:
        console.print(f"console ({len(console_lines)} lines, last {CONSOLE_TAIL}):")
        for line in console_lines[-CONSOLE_TAIL:]:
            console.print(f"  {'!' if line['stream'] == 'stderr' else ' '} {line['text']}", markup=False)
