"""What issue 17's collectors cost: environment capture at init, the system sampler and the console
tee during training, as ratios against a baseline measured in the same run (paired protocol of
:mod:`paired`).

* init: ``init()+finish()`` of an empty run with ``capture_env=False`` vs ``True`` (the capture
  runs on a background thread, so ``init`` itself returns at once; ``finish`` waits for it), and
  the time of one ``capture()`` call itself;
* training: a CPU-bound loop (numpy matmuls) that logs 3 metrics and prints one line per step,
  with the run plain, with ``system_metrics`` at the default 10 s and at 0.1 s (100x the default
  rate: the worst case), and with ``capture_console``.

Run: ``python benchmarks/bench_context.py [--reps 5] [--steps 300]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))

import numpy as np
from paired import quiet_seconds, report, run_paired

import epochline
from epochline.context import _console, _env, _system


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    store = tempfile.mkdtemp(prefix="bench-context-")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((96, 96))

    def timed_init(**kw):
        def variant():
            start = time.perf_counter()
            run = epochline.init("bench/init", store=store, **kw)
            inside = time.perf_counter() - start
            run.finish()
            return time.perf_counter() - start, inside

        return variant

    times, inside = run_paired(
        {
            "capture_env=False": timed_init(capture_env=False),
            "capture_env=True": timed_init(capture_env=True),
        },
        args.reps * 4,
    )
    report("init()+finish() of an empty run (inside = init() alone)", times, inside)
    captures = []
    for _ in range(args.reps):
        start = time.perf_counter()
        _env.capture()
        captures.append(time.perf_counter() - start)
    print(f"one environment capture itself: median {statistics.median(captures) * 1000:.1f} ms\n")

    def training(**kw):
        def variant():
            run = epochline.init("bench/train", store=store, capture_env=False, **kw)
            spent = [0.0]

            def train():
                x = a
                for step in range(args.steps):
                    for _ in range(20):
                        x = np.tanh(x @ a / 96.0)
                    t = time.perf_counter()
                    run.log({"loss": float(x[0, 0]), "acc": 0.5, "lr": 0.1}, step=step)
                    print(f"step {step} loss {x[0, 0]:.4f}")
                    spent[0] += time.perf_counter() - t

            seconds = quiet_seconds(train)
            run.finish()
            return seconds, spent[0]

        return variant

    sampler = _system.Sampler(lambda event, weight=1: None, "bench", 10.0)
    sampler.start()
    sampler.stop()
    costs = []
    for _ in range(200):
        start = time.perf_counter()
        sampler.sample()
        costs.append(time.perf_counter() - start)
    sample_ms = statistics.median(costs) * 1000
    print(
        f"one system sample: median {sample_ms:.3f} ms -> at the default 10 s: "
        f"{sample_ms / 10_000 * 100:.5f} % of one core"
    )
    with open(os.devnull, "w") as null:
        line = "epoch 3 step 120 loss 0.1234\n"
        plain, teed = [], []
        for _ in range(args.reps):
            start = time.perf_counter()
            for _ in range(20_000):
                null.write(line)
            plain.append(time.perf_counter() - start)
            tee = _console.ConsoleTee(null, "stdout", lambda text, stream: None)
            start = time.perf_counter()
            for _ in range(20_000):
                tee.write(line)
            teed.append(time.perf_counter() - start)
    print(
        f"console tee: {statistics.median(teed) / 20_000 * 1e6:.2f} us per printed line vs "
        f"{statistics.median(plain) / 20_000 * 1e6:.2f} us for the write alone "
        "(the event itself is queued, not written, on the printing thread)\n"
    )

    times, inside = run_paired(
        {
            "plain run": training(),
            "system_metrics 10s": training(system_metrics=True),
            "system_metrics 0.1s": training(system_metrics=True, system_interval=0.1),
            "capture_console": training(capture_console=True),
        },
        args.reps,
    )
    report(f"training loop, {args.steps} steps (inside = run.log + the step's print)", times, inside)


if __name__ == "__main__":
    main()
