"""Shared pieces of the protocol tests: a fixed run; the line checker itself is tests/linecheck.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from linecheck import (  # noqa: F401 - the shared checker, re-exported for the protocol tests
    KOGU_KEY,
    check_kogu_line,
    check_lines,
    check_progress_line,
    protocol_lines,
    same,
    strict_loads,
)

import epochline


def fixed_run(tmp_path: Path, emit: str, status: str = "completed", reason: Any = None) -> dict:
    """The run of the golden tests. Returns {"id", "artifact"} (the stored artifact's path)."""
    source = tmp_path / "model.txt"
    source.write_text("weights\n")
    run = epochline.init(
        "digits/mlp",
        name="golden",
        emit=emit,
        total_epochs=3,
        params={
            "lr": 0.01,
            "optimizer": {"name": "adam", "betas": [0.9, 0.999]},
            "layers": [64, 32],
            "1st": True,
            "mixed": [1, "a"],
            "none": None,
        },
        tags=("baseline",),
    )
    epochs = [
        {"loss": 0.9, "accuracy": 0.60, "val_loss": 1.0, "val_acc": 0.55, "lr": 0.01},
        {"loss": 0.5, "accuracy": 0.80, "val_loss": 0.7, "val_acc": 0.75, "lr": float("nan")},
        {"loss": 0.4, "accuracy": 0.85, "val_loss": 0.8, "val_acc": 0.70, "lr": 0.001},
    ]
    for epoch, values in enumerate(epochs, start=1):
        run.log(values, step=epoch * 10)
        run.end_epoch(epoch, values)
    artifact = run.log_artifact(source)
    run.tag("best")
    run.untag("baseline")
    run.comment("fixed run\nfor golden tests")
    run.declare_plot("Learning rate", ["lr"], y_label="lr")
    run.summary({"val/acc": 0.75, "train-loss": 0.4, "inf": float("inf")})
    run.rename("golden-2")
    run.finish(status, reason)
    return {"id": run.id, "artifact": artifact}
