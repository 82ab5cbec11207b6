"""The paired-run protocol shared by the adapter benchmarks (bench_lightning/transformers/keras).

Every repetition runs each variant once, in an order that rotates from one repetition to the next,
so that drift on a shared machine hits every variant alike. Reported per variant: the median
seconds, the median over repetitions of (variant time / baseline time of the same repetition) - 1
("paired overhead"), and the median time spent inside the tracker's own methods (its direct cost,
which the noise of a shared machine does not blur).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from typing import Any, Callable, Dict, Iterable, List, Tuple

Variant = Callable[[], Tuple[float, float]]
"""Runs one training; returns (seconds, seconds spent inside the tracker)."""


def add_timer(obj: Any, methods: Iterable[str]) -> Any:
    """Wrap ``obj``'s methods so the seconds spent in them add up in ``obj.spent``."""
    obj.spent = 0.0
    for name in methods:
        if not hasattr(obj, name):
            continue

        def wrapper(*args: Any, _method: Callable = getattr(obj, name), **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return _method(*args, **kwargs)
            finally:
                obj.spent += time.perf_counter() - start

        setattr(obj, name, wrapper)
    return obj


def quiet_seconds(train: Callable[[], Any]) -> float:
    """Seconds ``train()`` takes, with its stdout (progress, emitted lines) sent to /dev/null."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        start = time.perf_counter()
        train()
        return time.perf_counter() - start


def run_paired(
    variants: Dict[str, Variant], reps: int, warmup: bool = True
) -> Tuple[Dict[str, List[float]], Dict[str, List[float]]]:
    names = list(variants)
    if warmup:  # imports, first store, first model build: not measured
        for name in names:
            variants[name]()
    times: Dict[str, List[float]] = {n: [] for n in names}
    inside: Dict[str, List[float]] = {n: [] for n in names}
    for rep in range(reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            seconds, spent = variants[name]()
            times[name].append(seconds)
            inside[name].append(spent)
    return times, inside


def report(header: str, times: Dict[str, List[float]], inside: Dict[str, List[float]]) -> None:
    """Print the table; the first variant is the baseline."""
    names = list(times)
    base = times[names[0]]
    width = max(len(n) for n in names) + 2
    print(header)
    print(
        f"{'variant':<{width}}{'median s':>10}{'min s':>9}{'paired overhead':>17}"
        f"{'inside ms':>11}{'% of run':>10}"
    )
    for name in names:
        over = (statistics.median(t / b for t, b in zip(times[name], base)) - 1) * 100
        ms = statistics.median(inside[name]) * 1000
        share = statistics.median(i / t for i, t in zip(inside[name], times[name])) * 100
        print(
            f"{name:<{width}}{statistics.median(times[name]):>10.3f}{min(times[name]):>9.3f}"
            f"{over:>+16.1f}%{ms:>11.1f}{share:>9.2f}%"
        )
    print(
        f"paired overhead: median over repetitions of (variant / {names[0]} of the same repetition)"
        " - 1; inside: median time spent in the tracker's own methods per run"
    )
