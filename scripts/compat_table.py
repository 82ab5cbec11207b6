"""Write docs/compatibility.md from the result file of a real tox run.

Why a script: the support table must say what a run proved, not what someone remembers. It reads
tox's ``--result-json`` journal (one or more files: the full matrix first, then runs of envs that
tox.ini defines outside its env_list: the versions below the supported range), takes each env's
installed framework version from the env's own ``pip freeze`` and its test counts from pytest's
closing line, and writes a dated table with the command that regenerates it.

    tox -r --result-json .tox/matrix.json                 # the matrix (env_list)
    tox -m below --result-json .tox/extra.json            # optional: below the range
    python scripts/compat_table.py .tox/matrix.json [.tox/extra.json] [--wall SECONDS] \
        [-o docs/compatibility.md]

An env counts as ``pass`` only if tox succeeded AND pytest ran at least one test and none failed:
a module skipped whole (framework missing) is ``skipped``, never a silent pass.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

# env-name prefix -> (framework shown in the table, distribution whose version is reported)
FRAMEWORKS: Tuple[Tuple[str, str, str], ...] = (
    ("core", "core (no framework)", "torch"),
    ("lightning", "Lightning (`lightning`)", "lightning"),
    ("pl", "Lightning (`pytorch-lightning` alone)", "pytorch-lightning"),
    ("transformers", "transformers", "transformers"),
    ("keras", "Keras 3 (torch backend)", "keras"),
)
# pytest's closing line, e.g. "12 passed, 1 skipped, 2 warnings in 5.31s"
_COUNT = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected)")
_CLOSING = re.compile(r"^=*\s*(?:\d+ \w+(?:, )?)+.* in [\d.]+s", re.MULTILINE)
_FREEZE = re.compile(r"^([A-Za-z0-9_.\-]+)==(\S+)")


def framework_of(env: str) -> Tuple[str, str]:
    """(framework label, distribution name) for a tox env name such as ``transformers4.46``."""
    base = env.split("-v", 1)[0]
    for prefix, label, dist in FRAMEWORKS:
        if base == prefix:
            return label, dist
    return env, ""


def installed(packages: Iterable[str]) -> Dict[str, str]:
    """``pip freeze`` lines -> {normalised name: version}."""
    out = {}
    for line in packages or ():
        m = _FREEZE.match(line.strip())
        if m:
            out[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    return out


def pytest_counts(outputs: Iterable[str]) -> Dict[str, int]:
    """Sum the counts of every pytest closing line in the env's command outputs."""
    counts: Dict[str, int] = {}
    for text in outputs:
        for line in _CLOSING.findall(text or ""):
            for n, kind in _COUNT.findall(line):
                kind = "errors" if kind.startswith("error") else kind
                counts[kind] = counts.get(kind, 0) + int(n)
    return counts


_HEADER = re.compile(r"^_{3,} (test\S*) _{3,}$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def failures(outputs: Iterable[str], limit: int = 140) -> str:
    """Why an env failed: each failing test's name with its first ``E`` line, or pytest's skip
    reason, or (an install that failed) the last line of output."""
    found: List[Tuple[str, str]] = []
    texts = [t or "" for t in outputs]
    for text in texts:
        name = None
        for line in text.splitlines():
            m = _HEADER.match(line.strip())
            if m:
                name = m.group(1)
                continue
            if name and line.startswith("E "):
                msg = re.sub(r"\s+", " ", _ANSI.sub("", line[1:])).strip()
                found.append((name, msg[:limit]))
                name = None
    if found:
        by_msg: Dict[str, List[str]] = {}
        for name, msg in found:
            by_msg.setdefault(msg, []).append(name)
        return "; ".join(
            f"`{names[0]}`" + (f" (+{len(names) - 1} more tests)" if len(names) > 1 else "") + f": {msg}"
            for msg, names in by_msg.items()
        )
    for text in texts:
        for line in text.splitlines():
            if line.startswith("SKIPPED"):
                return "all skipped: " + line.split(": ", 1)[-1][:limit]
    for text in texts:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if lines:
            return lines[-1][:limit]
    return ""


def summarise(name: str, env: Dict[str, Any]) -> Dict[str, Any]:
    """One table row from one env's journal."""
    label, dist = framework_of(name)
    pkgs = installed(env.get("installed_packages") or [])
    tests = [t for t in env.get("test") or [] if str(t.get("run_id", "")).startswith("commands")]
    setup = env.get("setup") or []
    counts = pytest_counts(t.get("output", "") + "\n" + t.get("err", "") for t in tests)
    result = env.get("result") or {}
    ok = bool(result.get("success"))
    if ok and counts.get("passed", 0) > 0 and not counts.get("failed") and not counts.get("errors"):
        verdict = "pass"
    elif counts.get("failed") or counts.get("errors"):
        verdict = "fail"
    elif tests and not counts.get("passed"):
        verdict = "skipped"  # pytest ran nothing (tox exits 5, or green with all skipped): no proof
    elif not tests:
        verdict = "install fails"
    else:
        verdict = "fail"
    why = (
        ""
        if verdict == "pass"
        else failures([t.get("output", "") + "\n" + t.get("err", "") for t in (tests or setup)])
    )
    return {
        "env": name,
        "framework": label,
        "dist": dist,
        "version": pkgs.get(dist, "?") if dist else "",
        "torch": pkgs.get("torch", "-"),
        "numpy": pkgs.get("numpy", "-"),
        # tox-uv reports the requested spec (3.11.0), so only major.minor is meaningful
        "python": ".".join(str(x) for x in (env.get("python") or {}).get("version_info", [])[:2]),
        "verdict": verdict,
        "counts": counts,
        "test_s": sum(float(t.get("elapsed") or 0) for t in tests),
        "total_s": float(result.get("duration") or 0),
        "why": why,
    }


def _counts_text(c: Dict[str, int]) -> str:
    parts = [f"{c[k]} {k}" for k in ("passed", "skipped", "failed", "errors", "xfailed") if c.get(k)]
    return ", ".join(parts) or "-"


def _version_key(v: str) -> Tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3]) or (0,)


def _table(rows: List[Dict[str, Any]]) -> List[str]:
    out = [
        "| Framework | Package | Version | Result | Tests | env s | tests s | tox env | Why not a pass |",
        "| --- | --- | --- | --- | --- | ---: | ---: | --- | --- |",
    ]
    for r in rows:
        why = r["why"].replace("|", "\\|")
        out.append(
            f"| {r['framework']} | {r['dist'] or '-'} | {r['version'] or '-'} | **{r['verdict']}** | "
            f"{_counts_text(r['counts'])} | {r['total_s'] - r['test_s']:.0f} | {r['test_s']:.0f} | "
            f"`{r['env']}` | {why} |"
        )
    return out


def _ranges(rows: List[Dict[str, Any]]) -> List[str]:
    """Per framework: the versions that passed and those inside that span that did not."""
    out = []
    for _, label, _dist in FRAMEWORKS[1:]:
        mine = sorted((r for r in rows if r["framework"] == label), key=lambda r: _version_key(r["version"]))
        passed = [r["version"] for r in mine if r["verdict"] == "pass"]
        if not mine:
            continue
        if not passed:
            out.append(
                f"- {label}: no version passed ({', '.join(r['version'] + ' ' + r['verdict'] for r in mine)})"
            )
            continue
        lo, hi = _version_key(passed[0]), _version_key(passed[-1])
        holes = [
            f"{r['version']} ({r['verdict']})"
            for r in mine
            if r["verdict"] != "pass" and lo <= _version_key(r["version"]) <= hi
        ]
        out.append(
            f"- {label}: passes {', '.join(passed)}"
            + (f"; **inside that span not passing: {', '.join(holes)}**" if holes else "")
        )
    return out


def render(
    groups: List[Tuple[str, List[Dict[str, Any]]]],
    *,
    generated: str,
    sources: List[str],
    wall: Optional[float],
    toxversion: str,
) -> str:
    """The Markdown page: one table per result file (the matrix first)."""
    order = {label: i for i, (_, label, _) in enumerate(FRAMEWORKS)}

    def ordered(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        return sorted(rows, key=lambda r: (order.get(r["framework"], 99), _version_key(r["version"])))

    every = [r for _, rows in groups for r in rows]
    torch = sorted({r["torch"] for r in every if r["torch"] != "-"})
    numpy = sorted({r["numpy"] for r in every if r["numpy"] != "-"})
    pythons = sorted({r["python"] for r in every if r["python"]})
    out = [
        "# Compatibility",
        "",
        "Which framework versions the adapters are tested against, from a real run of the tox matrix",
        "(`tox.ini`; how to run it: [testing.md](testing.md)). Each row is one tox env: a fresh",
        "virtualenv with that framework version and torch pinned, running that framework's adapter",
        "tests (real training on CPU on scikit-learn's digits, no mocks).",
        "",
        f"- Generated: {generated} by `scripts/compat_table.py` from {', '.join(f'`{s}`' for s in sources)}",
        (
            f"- Python {', '.join(pythons) or '?'}; torch {', '.join(torch) or '?'}; numpy {', '.join(numpy) or '?'}; "
            f"tox {toxversion} with tox-uv"
        ),
    ]
    if wall is not None:
        out.append(
            f"- Wall time of the full matrix run (envs one at a time, 2 cores): "
            f"{wall:.0f} s ({wall / 60:.1f} min)"
        )
    out += [
        "- `pass`: pytest ran the tests and none failed. `skipped`: pytest ran nothing (the test module",
        "  skipped itself), so nothing is proven. `fail`: see the last column (failing test: first error line).",
        "",
        "Regenerate:",
        "",
        "```bash",
        "tox -r --result-json .tox/matrix.json        # the matrix (tox.ini env_list)",
        "tox -m below --result-json .tox/extra.json     # the versions below the supported range",
        "python scripts/compat_table.py .tox/matrix.json .tox/extra.json --wall SECONDS",
        "```",
        "",
        "## What the matrix proves",
        "",
    ]
    out += _ranges(groups[0][1]) if groups else []
    for title, rows in groups:
        out += ["", f"## {title}", ""] + _table(ordered(rows))
    out += [
        "",
        (
            f"Sum over the matrix envs: {sum(r['total_s'] for r in groups[0][1]):.0f} s as tox reports them "
            f"({sum(r['test_s'] for r in groups[0][1]):.0f} s of it pytest)."
        ),
        "",
    ]
    return "\n".join(out)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "results",
        nargs="+",
        type=Path,
        help="tox --result-json files: the matrix first, then extra runs (an env already seen is kept)",
    )
    ap.add_argument("-o", "--output", type=Path, default=Path("docs/compatibility.md"))
    ap.add_argument("--wall", type=float, default=None, help="measured wall time of the full run, seconds")
    ap.add_argument("--date", default=None, help="date to print (default: the result files' mtime)")
    args = ap.parse_args(argv)

    titles = ["The matrix (tox.ini env_list)"] + [
        "Below the supported range (`tox -m below`, not in env_list)"
    ] * (len(args.results) - 1)
    groups: List[Tuple[str, List[Dict[str, Any]]]] = []
    toxversion = "?"
    newest = 0.0
    seen = set()
    for title, path in zip(titles, args.results):
        data = json.loads(path.read_text())
        toxversion = data.get("toxversion", toxversion)
        newest = max(newest, path.stat().st_mtime)
        rows = [
            summarise(name, env)
            for name, env in (data.get("testenvs") or {}).items()
            if not name.startswith(".") and env.get("result") and name not in seen
        ]  # not packaging envs
        seen.update(r["env"] for r in rows)
        if groups and groups[-1][0] == title:
            groups[-1][1].extend(rows)
        else:
            groups.append((title, rows))
    rows = [r for _, g in groups for r in g]
    if not rows:
        print("no test env results in the given files", file=sys.stderr)
        return 2
    generated = args.date or dt.datetime.fromtimestamp(newest, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        render(
            groups,
            generated=generated,
            sources=[p.name for p in args.results],
            wall=args.wall,
            toxversion=toxversion,
        )
    )
    for r in rows:
        print(f"{r['env']:20} {r['version']:10} {r['verdict']:14} {_counts_text(r['counts'])}")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
