"""The viewer on big stores, measured in a real browser (Debian's chromium via Playwright).

    python benchmarks/bench_ui.py [--store DIR] [--work DIR] [--repeat 3] [--only groups]
    python benchmarks/bench_ui.py --work /tmp/x --runs 12 --steps 200 --series-points 2000 \
        --many-runs 60 --repeat 1          # a smoke run (CI): small stores, same pages

Stores (built once, reused when present; ``--store`` may point at bench_insight.py's store):
- the issue's 10 M-point store: 200 runs x 10,000 steps x 5 metrics, built by
  ``bench_insight.build_store`` (plus its run "big": 200,000 steps x 5 metrics);
- one run with a single 1,000,000-point series;
- 10,000 runs of 20 points each, for the runs table.

``epochline ui`` runs as a child process (as a user starts it); each page is timed from
navigation until its content is drawn (rows in the table, a canvas per chart), best of
``--repeat``, next to a baseline measured the same way in the same run: the viewer's 404 page
(one request, no data). The server's memory is its peak resident set (VmHWM) after all pages.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, List, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_insight import _points, _record, build_store  # noqa: E402

from epochline.store import open_backend  # noqa: E402
from epochline.store.admin import insert_run  # noqa: E402
from epochline.ui._chromium import launch as launch_chromium  # noqa: E402


def one_series_store(directory: Path, points: int = 1_000_000) -> None:
    backend = open_backend(str(directory))
    insert_run(
        backend, _record("series1m", "bench/one", {"lr": 0.1}, ["loss"], 1.7e9), _points(7, points, 1.7e9)
    )
    backend.close()


def many_runs_store(directory: Path, runs: int = 10_000, steps: int = 20) -> None:
    backend = open_backend(str(directory))
    for i in range(runs):
        path = f"sweep/{['cv', 'nlp', 'rl'][i % 3]}/{['resnet', 'vit', 'mlp', 'bert'][i % 4]}"
        insert_run(
            backend,
            _record(f"r{i:05d}", path, {"lr": 10 ** -(i % 5), "seed": i % 7}, ["loss"], 1.7e9 + i),
            _points(i, steps, 1.7e9 + i),
        )
    backend.close()


def ensure(directory: Path, build: Callable[[Path], Any], what: str) -> None:
    if (directory / "epochline.db").exists():
        return
    start = time.perf_counter()
    build(directory)
    print(f"built {what} in {time.perf_counter() - start:.0f} s at {directory}", flush=True)


class Viewer:
    """``epochline ui`` over one store, in a child process."""

    def __init__(self, store: Path):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "epochline", "ui", "--store", str(store), "--port", str(port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        self.url = re.search(r"(http://\S+)/", line).group(1)
        for _ in range(400):
            try:
                urllib.request.urlopen(self.url + "/static/app.css", timeout=2).read()
                break
            except OSError:
                time.sleep(0.05)

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


def timed(page: Any, url: str, ready: str, repeat: int) -> Tuple[float, float]:
    """(first, best) seconds from navigation start until ``ready`` (a JS condition) holds.

    The first load is cold (the server reads the store); later ones may be served from the
    viewer's cache of finished runs' downsampled series. inf: not ready within 120 s.
    """
    times: List[float] = []
    for _ in range(repeat):
        page.goto("about:blank")
        start = time.perf_counter()
        page.goto(url, wait_until="commit")
        try:
            page.wait_for_function(ready, timeout=120_000, polling="raf")
        except Exception as exc:  # a timeout: report it, measure the rest
            print(f"  {url}: not ready ({type(exc).__name__})", file=sys.stderr)
            times.append(float("inf"))
            break
        times.append(time.perf_counter() - start)
    return times[0], min(times)


def floor_seconds(store: Path, run_id: str, key: str) -> float:
    """The database's floor for anything that looks at every point of one series: one scan of it
    (``COUNT(*), SUM(value)``), best of 3."""
    import epochline

    with epochline.open(str(store)) as s:
        sid = s.backend.query("SELECT id FROM series WHERE run_id = ? AND key = ?", (run_id, key))[0][0]
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            s.backend.query("SELECT COUNT(*), SUM(value) FROM metrics WHERE series = ?", (sid,))
            best = min(best, time.perf_counter() - start)
    return best


def charts(n: int) -> str:
    return f"document.querySelectorAll('.chart canvas').length >= {n}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--store", default=None, help="the 10 M-point store (default: WORK/store, built when missing)"
    )
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "epochline-bench-ui"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--runs", type=int, default=200, help="runs of the big store (default 200)")
    parser.add_argument("--steps", type=int, default=10_000, help="steps per run (default 10,000)")
    parser.add_argument(
        "--series-points",
        type=int,
        default=1_000_000,
        help="points of the one long series (default 1,000,000)",
    )
    parser.add_argument(
        "--many-runs", type=int, default=10_000, help="runs of the runs-table store (default 10,000)"
    )
    parser.add_argument(
        "--only",
        default=None,
        help="time only the pages whose name contains this text (e.g. 'groups'), and their baseline",
    )
    args = parser.parse_args()
    work = Path(args.work)
    big = Path(args.store) if args.store else work / "store"
    ensure(
        big,
        lambda d: build_store(d, args.runs, args.steps, 5, big=args.series_points),
        f"{args.runs} runs x {args.steps:,} steps x 5 metrics",
    )
    one = work / "one-series"
    ensure(
        one,
        lambda d: one_series_store(d, args.series_points),
        f"one run with a {args.series_points:,}-point series",
    )
    many = work / "runs10k"
    ensure(many, lambda d: many_runs_store(d, args.many_runs), f"{args.many_runs:,} runs")

    from playwright.sync_api import sync_playwright

    rows: List[Tuple[str, float, float, float]] = []
    memory: List[Tuple[str, float]] = []
    with sync_playwright() as p:
        browser = launch_chromium(p)
        # bypass_csp: Playwright's wait conditions are evaluated strings, which the viewer forbids
        page = browser.new_page(viewport={"width": 1400, "height": 900}, bypass_csp=True)
        page.context.set_default_timeout(60_000)
        for store, cases in [
            (
                big,
                [
                    (
                        f"runs page ({args.runs + 1} runs)",
                        "/",
                        "document.querySelectorAll('#runs tbody tr').length >= 1",
                        1.0,
                    ),
                    (f"run page, 5 charts of {args.steps:,} steps", "/runs/run0000", charts(5), 1.0),
                    (
                        "compare of 10 runs (5 charts)",
                        "/compare?ids=" + ",".join(f"run{i:04d}" for i in range(10)),
                        charts(5),
                        1.5,
                    ),
                    (
                        f"groups page ({args.runs} runs' bands)",
                        "/groups?path=bench/grid",
                        charts(1),
                        float("nan"),
                    ),
                    (
                        f"run page, 5 charts of {args.series_points // 5:,} steps",
                        "/runs/big",
                        charts(5),
                        float("nan"),
                    ),
                ],
            ),
            (one, [(f"run page, one {args.series_points:,}-point series", "/runs/series1m", charts(1), 1.0)]),
            (
                many,
                [
                    (
                        f"runs page of {args.many_runs:,} runs",
                        "/",
                        "document.querySelectorAll('#runs tbody tr').length >= 1",
                        1.0,
                    ),
                    (
                        f"{args.many_runs:,} runs: filter by path + text",
                        "/?path=sweep/cv&q=r0001",
                        "document.querySelectorAll('#runs tbody tr').length >= 1",
                        1.0,
                    ),
                ],
            ),
        ]:
            cases = [c for c in cases if args.only is None or args.only in c[0]]
            if not cases:
                continue
            viewer = Viewer(store)
            try:
                base = timed(
                    page, viewer.url + "/runs/no-such-run", "document.querySelector('h1')", args.repeat
                )
                rows.append((f"baseline: 404 page ({store.name})", *base, float("nan")))
                for name, path, ready, target in cases:
                    first, best = timed(page, viewer.url + path, ready, args.repeat)
                    rows.append((name, first, best, target))
                    print(f"  {name}: {first:.3f} s cold, {best:.3f} s warm", file=sys.stderr, flush=True)
                memory.append((store.name, viewer.peak_rss_mb()))
            finally:
                viewer.stop()
        browser.close()
    scan = floor_seconds(one, "series1m", "loss")
    load = os.getloadavg()
    print(
        f"{'page (ready in the browser), seconds':45s} {'cold':>7s} {'warm':>7s} {'x 404':>6s} {'target':>7s}"
    )
    base = 1.0
    for name, first, best, target in rows:
        base = best if name.startswith("baseline") else base
        print(
            f"{name:45s} {first:7.3f} {best:7.3f} {best / base:6.1f} "
            f"{'' if target != target else f'{target:.1f}':>7s}"
        )
    print(f"database floor: one scan of the {args.series_points:,}-point series (COUNT, SUM): {scan:.3f} s")
    print(f"load average when done: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f} (1, 5, 15 min)")
    for name, mb in memory:
        print(f"server peak RSS over the {name} store: {mb:.0f} MB (target <= 200)")


if __name__ == "__main__":
    main()
