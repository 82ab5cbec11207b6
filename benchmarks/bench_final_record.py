"""What the final-record tracker costs: the same logging run with and without it, alternating.

The tracker (``epochline.sinks.final``) sees every batch on the dispatcher thread but looks only at
the few events per epoch (a table lookup per event; the per-step ``Metrics`` pass by); the primary
metric's best is read back from the store once, at finish. This runs ``bench_log``'s workload (20,000 steps x 5 metrics) with the
tracker registered and unregistered, in alternating order, and prints the median of each and the
ratio (with / without) for the training thread's time and for the end-to-end time.

    OMP_NUM_THREADS=1 python benchmarks/bench_final_record.py --repeat 7
"""

from __future__ import annotations

import argparse
import gc
import shutil
import statistics
import sys
import tempfile

from bench_log import bench_epochline, make_data

import epochline
from epochline.plugins import get_plugin_manager

NAME = "epochline.sinks.final"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    data = make_data(args.steps)
    pm = get_plugin_manager()
    module = pm.get_plugin(NAME)
    results = {"with": ([], []), "without": ([], [])}
    for i in range(args.repeat * 2):
        variant = ("with", "without")[(i + i // 2) % 2]  # with/without, then without/with, ...
        if variant == "without":
            pm.unregister(name=NAME)
        directory = tempfile.mkdtemp(prefix="epochline-bench-")
        try:
            gc.collect()
            hot, e2e, _ = bench_epochline(data, directory)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
            if variant == "without":
                epochline.register(module, name=NAME)
        results[variant][0].append(hot)
        results[variant][1].append(e2e)
    points = args.steps * 5
    (hot_w, e2e_w), (hot_o, e2e_o) = ([statistics.median(x) for x in results[v]] for v in ("with", "without"))
    print(f"{points} points, median of {args.repeat} runs each, alternating")
    print(
        f"hot path   with {hot_w * 1e6 / points:.3f} us/point, without {hot_o * 1e6 / points:.3f} "
        f"us/point: ratio {hot_w / hot_o:.2f}"
    )
    print(f"end to end with {e2e_w:.3f} s, without {e2e_o:.3f} s: ratio {e2e_w / e2e_o:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
