"""How much does epochline cost per logged point, and how close to SQLite's own speed does it get?

One run, 10 params, 20,000 steps x 5 metrics, measured in one process:

* floor      - a bare ``list.append`` of ``(wall_time, step, key, value)`` tuples: what any tracker
               must at least do per point;
* raw sqlite - ``executemany`` of the same rows into a WAL database in one transaction: the storage
               limit;
* epochline  - the hot-path cost of ``run.log`` per point (the training thread's time), and the
               end-to-end time from the first ``log`` until ``finish()`` returns with everything on disk.

Targets (ratios in one run): hot path <= 3x the floor; end to end <= 2x raw sqlite.
Run: ``python benchmarks/bench_log.py [--steps N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time

KEYS = ("loss", "accuracy", "lr", "grad_norm", "throughput")


def make_data(steps: int):
    return [{k: (step * 0.001 + i) for i, k in enumerate(KEYS)} for step in range(steps)]


def bench_floor(data) -> float:
    rows = []
    append = rows.append
    now = time.time
    t0 = time.perf_counter()
    for step, values in enumerate(data):
        t = now()
        for key, value in values.items():
            append((t, step, key, value))
    return time.perf_counter() - t0


def bench_sqlite(data, directory: str) -> float:
    path = os.path.join(directory, "raw.db")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE metrics (run_id TEXT, key TEXT, step INTEGER, wall_time REAL, value REAL)")
    t0 = time.perf_counter()
    now = time.time()
    rows = [
        ("run", key, step, now, value) for step, values in enumerate(data) for key, value in values.items()
    ]
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed


def bench_epochline(data, directory: str):
    import epochline

    params = {f"p{i}": i * 0.1 for i in range(10)}
    run = epochline.init("bench/log", store=os.path.join(directory, "store"), params=params, emit="none")
    log = run.log
    t0 = time.perf_counter()
    for step, values in enumerate(data):
        log(values, step=step)
    hot = time.perf_counter() - t0
    run.finish()
    e2e = time.perf_counter() - t0
    with epochline.open(os.path.join(directory, "store")) as store:
        stored = sum(len(store.run(run.id).metrics(k)) for k in KEYS)
    return hot, e2e, stored


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    data = make_data(args.steps)
    points = args.steps * len(KEYS)
    floors, raws, hots, e2es = [], [], [], []
    for _ in range(args.repeat):
        directory = tempfile.mkdtemp(prefix="epochline-bench-")
        try:
            gc.collect()
            floors.append(bench_floor(data))
            raws.append(bench_sqlite(data, directory))
            hot, e2e, stored = bench_epochline(data, directory)
            if stored != points:
                print(f"ERROR: stored {stored} points, expected {points}", file=sys.stderr)
                return 1
            hots.append(hot)
            e2es.append(e2e)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    floor, raw, hot, e2e = (statistics.median(x) for x in (floors, raws, hots, e2es))
    us = 1e6 / points
    print(f"{args.steps} steps x {len(KEYS)} metrics = {points} points, median of {args.repeat} runs")
    print(f"floor (list.append)         {floor * us:7.3f} us/point")
    print(f"raw sqlite3 executemany     {raw * us:7.3f} us/point  ({raw:.3f} s)")
    print(f"epochline hot path (log)    {hot * us:7.3f} us/point  = {hot / floor:.2f}x floor (target <= 3x)")
    print(
        f"epochline end to end        {e2e * us:7.3f} us/point  ({e2e:.3f} s) = {e2e / raw:.2f}x raw sqlite (target <= 2x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
