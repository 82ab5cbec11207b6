"""Memory and loss on very wide logging: ``run.log`` with 1,000 keys a call, 20,000 calls (20 M values).

    OMP_NUM_THREADS=1 python benchmarks/bench_wide.py [--calls 20000] [--keys 1000] [--locked]

Prints the peak RSS of the process, the time ``finish()`` took, the values the run lost (as
reported) and the values read back. ``--locked``: another process holds the store's write lock
for the whole logging loop (the store is away), so the queue fills to its bound and the overflow
is dropped: the peak RSS then is the queue's memory ceiling (docs/reliability.md).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings

import epochline

LOCKER = (
    "import sqlite3, sys, time\nconn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
    "conn.execute('BEGIN EXCLUSIVE')\nprint('locked', flush=True)\nsys.stdin.read()\n"
)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--locked", action="store_true")
    args = parser.parse_args()
    keys = [f"metric_{i:04d}" for i in range(args.keys)]
    with tempfile.TemporaryDirectory() as tmp:
        store = os.path.join(tmp, "store")
        epochline.init("bench/first", store=store).finish()
        locker = None
        if args.locked:
            locker = subprocess.Popen(
                [sys.executable, "-c", LOCKER, os.path.join(store, "epochline.db")],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert locker.stdout.readline().strip() == "locked"
        base = rss_mb()
        warnings.simplefilter("ignore")
        run = epochline.init("bench/wide", store=store)
        t0 = time.perf_counter()
        for step in range(args.calls):
            run.log({k: step * 0.001 + i for i, k in enumerate(keys)}, step=step)
        logging_s = time.perf_counter() - t0
        if locker is not None:
            locker.stdin.close()
            locker.wait()
        t0 = time.perf_counter()
        run.finish()
        finish_s = time.perf_counter() - t0
        with epochline.open(store) as reader:
            view = reader.run(run.id)
            kept = reader.backend.query(
                "SELECT COUNT(*) FROM metrics m JOIN series s ON s.id = m.series WHERE s.run_id = ?",
                (run.id,),
            )[0][0]
            status = view.status
    logged = args.calls * args.keys
    print(
        f"{args.calls} calls x {args.keys} keys = {logged:,} values{' (store locked)' if args.locked else ''}"
    )
    print(
        f"peak RSS {rss_mb():.0f} MB (before the run {base:.0f} MB); logging {logging_s:.1f} s, "
        f"finish {finish_s:.1f} s"
    )
    print(
        f"reported lost {run.lost:,}; read back {kept:,}; logged - read back {logged - kept:,}; "
        f"status {status}"
    )


if __name__ == "__main__":
    main()
