"""Overhead of KoguLogger on a real Lightning fit (scikit-learn digits, small MLP, CPU).

    OMP_NUM_THREADS=1 python benchmarks/bench_lightning.py --reps 7

The fit is the one of ``examples/lightning_digits.py``. The paired protocol and the report are those
of ``benchmarks/paired.py``. Variants:

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
import logging
import os
import sys
import tempfile
import warnings
from typing import Any, Callable, Dict

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))

import lightning.pytorch as L
from lightning_digits import DigitsData, DigitsMLP
from paired import add_timer, quiet_seconds, report, run_paired

from epochline.integrations.lightning import KoguLogger

METHODS = (
    "log_hyperparams",
    "log_metrics",
    "log_graph",
    "log_image",
    "after_save_checkpoint",
    "save",
    "finalize",
)


def timed(logger: Any) -> Any:
    return add_timer(logger, METHODS)


VARIANTS: Dict[str, Callable[[str], Any]] = {
    "logger=False": lambda store: False,
    "KoguLogger (store)": lambda store: timed(KoguLogger(path="bench/lightning", store=store, emit="none")),
    "KoguLogger + lines": lambda store: timed(KoguLogger(path="bench/lightning", store=store)),
}


def one_fit(logger: Any, epochs: int, batch_size: int) -> float:
    L.seed_everything(0, verbose=False)
    trainer = L.Trainer(
        max_epochs=epochs,
        logger=logger,
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        log_every_n_steps=10,
        num_sanity_val_steps=0,
    )
    model, data = DigitsMLP(image_every=10**9), DigitsData(batch_size=batch_size)
    return quiet_seconds(lambda: trainer.fit(model, data))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # no per-fit banners
    warnings.simplefilter("ignore")  # nor deprecation notes from inside Lightning
    with tempfile.TemporaryDirectory() as store:

        def variant(make: Callable[[str], Any]) -> Callable[[], tuple]:
            def run() -> tuple:
                logger = make(store)
                return one_fit(logger, args.epochs, args.batch_size), getattr(logger, "spent", 0.0)

            return run

        times, inside = run_paired({name: variant(make) for name, make in VARIANTS.items()}, args.reps)
    report(
        f"lightning {L.__version__}, python {sys.version.split()[0]}, {args.reps} reps x "
        f"{args.epochs} epochs, batch {args.batch_size}, log_every_n_steps=10",
        times,
        inside,
    )


if __name__ == "__main__":
    main()
