"""Insight on a big store: aggregate, compare, history, export and import, with their memory.

    python benchmarks/bench_insight.py [--store DIR] [--runs 200] [--steps 10000] [--metrics 5]

Builds (once; reused when DIR exists) a store of RUNS runs x STEPS steps x METRICS metrics (the
issue's 10 M points) plus one run of 1 M points, writing rows in bulk through the store's own
whole-run insert (:func:`epochline.store.admin.insert_run`, what ``epochline import`` uses) instead
of ``run.log`` loops, which would take minutes. Then times each operation (best of 3, in seconds)
next to a baseline from the same process: one full scan of the metrics table
(``SELECT COUNT(*), SUM(value)``), the floor for anything that looks at every point. Peak memory is
``tracemalloc``'s peak of Python allocations during the operation.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import epochline
from epochline.events import dumps_value
from epochline.store import open_backend
from epochline.store.admin import insert_run

METRIC_NAMES = ["loss", "val_loss", "accuracy", "val_accuracy", "lr", "grad_norm", "f1", "recall"]


def _record(run_id: str, path: str, params: Dict[str, Any], keys: List[str], t0: float) -> Dict[str, Any]:
    return {
        "run": {
            "id": run_id,
            "name": run_id,
            "path": path,
            "status": "completed",
            "host": "bench",
            "pid": 1,
            "start_time": t0,
            "end_time": t0 + 100.0,
            "heartbeat": t0 + 100.0,
            "lost": 0,
        },
        "params": [[k, dumps_value(v), 0 if k == "seed" else 1] for k, v in params.items()],
        "series": [{"key": k, "kind": 0, "stage": None} for k in keys],
    }


def _points(seed: int, steps: int, t0: float) -> Callable[[str], Any]:
    def points(key: str):
        rng = random.Random(f"{seed}-{key}")
        sign = 1.0 if "loss" in key else -1.0
        chunk = []
        for step in range(steps):
            chunk.append((step, t0 + step * 0.01, sign / (1.0 + step * 0.001) + rng.random() * 0.01))
            if len(chunk) == 50_000:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    return points


def build_store(directory: Path, runs: int, steps: int, metrics: int, big: int = 1_000_000) -> float:
    """Fill ``directory``; returns the seconds it took."""
    start = time.perf_counter()
    backend = open_backend(str(directory), create=True)
    keys = METRIC_NAMES[:metrics]
    t0 = 1.7e9
    for i in range(runs):
        params = {
            "lr": [0.1, 0.01, 0.001, 0.0001][i % 4],
            "model": ["mlp", "cnn"][(i // 4) % 2],
            "width": [64, 128, 256, 512, 1024][(i // 8) % 5],
            "seed": i // 40,
        }
        insert_run(
            backend, _record(f"run{i:04d}", "bench/grid", params, keys, t0 + i), _points(i, steps, t0 + i)
        )
    # the big run (1 M points by default: 200,000 steps x 5 metrics)
    insert_run(backend, _record("big", "bench/big", {"lr": 0.1}, keys, t0), _points(-1, big // len(keys), t0))
    backend.close()
    return time.perf_counter() - start


def measure(fn: Callable[[], Any], repeat: int = 3) -> Tuple[float, float]:
    """(best seconds of ``repeat``, peak MB of Python allocations in one more call)."""
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return best, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=os.path.join(tempfile.gettempdir(), "epochline-bench-insight"))
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--metrics", type=int, default=5)
    parser.add_argument(
        "--big-points",
        type=int,
        default=1_000_000,
        help="points of the one big run (export/import/history cases)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed calls per case (best is shown)")
    args = parser.parse_args()
    directory = Path(args.store)
    if not (directory / "epochline.db").exists():
        seconds = build_store(directory, args.runs, args.steps, args.metrics, args.big_points)
        print(
            f"built {args.runs} runs x {args.steps} steps x {args.metrics} metrics + one {args.big_points:,}-point run "
            f"in {seconds:.1f} s at {directory}"
        )
    store = epochline.open(str(directory))
    total = store.backend.query("SELECT COUNT(*) FROM metrics")[0][0]
    print(f"store: {len(store.runs())} runs, {total:,} points")
    grid = [r.id for r in store.runs(path="bench/grid")]
    big = store.run("big")
    work = Path(tempfile.mkdtemp(prefix="epochline-bench-"))
    counter = iter(range(1_000_000))

    def import_once() -> None:
        target = epochline.open(str(work / f"imported{next(counter)}"), create=True)
        target.import_run(work / "big.zip")
        target.close()

    cases: List[Tuple[str, Callable[[], Any], float]] = [
        (
            "baseline: full scan of the metrics table",
            lambda: store.backend.query("SELECT COUNT(*), SUM(value) FROM metrics"),
            math.nan,
        ),
        (f"aggregate over all {len(grid)} grid runs", lambda: store.aggregate(path="bench/grid"), 1.0),
        ("compare of 10 runs", lambda: store.compare(grid[:10]), 0.5),
        ("run.history() of the big run", big.history, 1.0),
        ("export of the big run", lambda: big.export(work / "big.zip"), 3.0),
        ("import of the big run", import_once, 5.0),
    ]
    print(f"{'operation':45s} {'seconds':>8s} {'x scan':>7s} {'target':>7s} {'peak MB':>8s}")
    scan = None
    for name, fn, target in cases:
        seconds, peak = measure(fn, args.repeat)
        scan = scan or seconds
        print(
            f"{name:45s} {seconds:8.3f} {seconds / scan:7.2f} "
            f"{'' if math.isnan(target) else f'{target:.1f}':>7s} {peak:8.1f}"
        )


if __name__ == "__main__":
    main()
