"""Overhead of KoguLogger on a real Lightning fit (scikit-learn digits, small MLP, CPU).

    OMP_NUM_THREADS=1 python benchmarks/bench_lightning.py --reps 7

The fit is the one of ``examples/lightning_digits.py``. Each repetition fits the same model (same
seed) once per variant, in an order that rotates from one repetition to the next, so that drift on
a shared machine hits every variant alike:

* ``logger=False``       - Lightning with no logger at all (``self.log`` still runs);
* ``KoguLogger (store)`` - ``KoguLogger(emit="none")``: the store only;
* ``KoguLogger + lines`` - the default Kogu and PROGRESS lines too (to /dev/null).

Reported: median seconds per fit, the median of the per-repetition ratios to ``logger=False``
(paired overhead, goal <= 1 %), and the time spent inside the logger's own methods per fit (its
direct cost, which the noise of a shared machine does not blur). Only ``trainer.fit`` is timed; the
tracked fits include starting the run and finishing it (the store's writer drains before ``fit``
returns).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from typing import Any, Callable, Dict, List

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))

import lightning.pytorch as L  # noqa: E402

from epochline.integrations.lightning import KoguLogger  # noqa: E402
from lightning_digits import DigitsData, DigitsMLP  # noqa: E402

METHODS = ("log_hyperparams", "log_metrics", "log_graph", "log_image", "after_save_checkpoint",
           "save", "finalize")


class TimedKoguLogger(KoguLogger):
    """Adds up the seconds spent inside the logger (its methods and ``experiment``)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.spent = 0.0
        for name in METHODS:
            setattr(self, name, self._timed(getattr(self, name)))

    def _timed(self, fn: Callable) -> Callable:
        def wrapper(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.spent += time.perf_counter() - t
        return wrapper

    @property
    def experiment(self) -> Any:
        t = time.perf_counter()
        try:
            return super().experiment
        finally:
            self.spent += time.perf_counter() - t


VARIANTS: Dict[str, Callable[[str], Any]] = {
    "logger=False": lambda store: False,
    "KoguLogger (store)": lambda store: TimedKoguLogger(path="bench/lightning", store=store, emit="none"),
    "KoguLogger + lines": lambda store: TimedKoguLogger(path="bench/lightning", store=store),
}


def one_fit(logger: Any, epochs: int, batch_size: int) -> float:
    L.seed_everything(0, verbose=False)
    trainer = L.Trainer(max_epochs=epochs, logger=logger, accelerator="cpu", devices=1,
                        enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False, log_every_n_steps=10, num_sanity_val_steps=0)
    model, data = DigitsMLP(image_every=10 ** 9), DigitsData(batch_size=batch_size)
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        start = time.perf_counter()
        trainer.fit(model, data)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # no per-fit banners
    warnings.simplefilter("ignore")  # nor deprecation notes from inside Lightning
    names = list(VARIANTS)
    times: Dict[str, List[float]] = {n: [] for n in names}
    inside: Dict[str, List[float]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as store:
        for name in names:  # warm-up: imports, first store, first fit
            one_fit(VARIANTS[name](store), 1, args.batch_size)
        for rep in range(args.reps):
            order = names[rep % len(names):] + names[:rep % len(names)]
            for name in order:
                logger = VARIANTS[name](store)
                times[name].append(one_fit(logger, args.epochs, args.batch_size))
                inside[name].append(getattr(logger, "spent", 0.0))
    print(f"lightning {L.__version__}, python {sys.version.split()[0]}, {args.reps} reps x "
          f"{args.epochs} epochs, batch {args.batch_size}, log_every_n_steps=10")
    base = times[names[0]]
    print(f"{'variant':<22}{'median s':>10}{'min s':>9}{'paired overhead':>17}{'in logger ms':>14}{'% of fit':>10}")
    for name in names:
        over = (statistics.median(t / b for t, b in zip(times[name], base)) - 1) * 100
        ms = statistics.median(inside[name]) * 1000
        share = statistics.median(i / t for i, t in zip(inside[name], times[name])) * 100
        print(f"{name:<22}{statistics.median(times[name]):>10.3f}{min(times[name]):>9.3f}"
              f"{over:>+16.1f}%{ms:>14.1f}{share:>9.2f}%")
    print("paired overhead: median over repetitions of (variant time / logger=False time of the same "
          "repetition) - 1; in logger: median time spent inside the logger's methods per fit")


if __name__ == "__main__":
    main()
