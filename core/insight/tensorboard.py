"""``run.export_tensorboard(dir)``: scalars, images and histograms as TensorBoard event files.

For users who live in TensorBoard: ``tensorboard --logdir DIR`` then shows the run under its
path and id. Uses ``tensorboardX`` when installed, else ``torch.utils.tensorboard``; neither is
needed by epochline itself. Points are read in chunks, so memory stays bounded.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    from ..store.reader import RunView


def _writer_class() -> Any:
    try:
        from tensorboardX import SummaryWriter
    except ModuleNotFoundError:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError(
                "TensorBoard export needs tensorboardX (pip install 'epochline[tensorboard]') or "
                "torch with tensorboard installed",
                name="tensorboardX",
            ) from exc
    return SummaryWriter


def export_tensorboard(run: RunView, directory: Union[str, os.PathLike]) -> Path:
    """Write the run's event files under ``directory/<run path>/<run id>``; returns that folder.

    Numeric series become scalars at their steps and wall times (text values are skipped; bools
    are 0/1), images are decoded from the stored PNG/JPEG, histograms are written from their
    stored buckets, params as hparams text and summary values as scalars at the last step.
    """
    import numpy as np
    from PIL import Image

    target = Path(directory) / run.path / run.id
    writer = _writer_class()(str(target))  # the log directory is the first argument of both
    try:
        for key in run.metric_keys():
            for chunk in run.iter_raw(key):
                for step, wall_time, value in chunk:
                    if value is None:
                        value = math.nan
                    elif isinstance(value, str):
                        continue
                    writer.add_scalar(key, float(value), global_step=step, walltime=wall_time)
        for image in run.images():
            if not image.path.exists():
                continue
            try:
                with Image.open(io.BytesIO(image.path.read_bytes())) as img:
                    array = np.asarray(img.convert("RGB"))
            except (OSError, ValueError) as exc:
                warnings.warn(
                    f"epochline: image {image.key!r} (step {image.step}) of run {run.id} "
                    f"cannot be decoded ({exc}); left out of the TensorBoard export",
                    stacklevel=2,
                )
                continue
            writer.add_image(
                image.key, array, global_step=image.step or 0, walltime=image.wall_time, dataformats="HWC"
            )
        for key in run.histogram_keys():
            for wall_time, step, data in run.histograms(key):
                limits, counts = data.get("bucket_limits") or [], data.get("bucket_counts") or []
                if not limits or len(limits) != len(counts):
                    continue
                writer.add_histogram_raw(
                    key,
                    min=data["min"],
                    max=data["max"],
                    num=data["num"],
                    sum=data.get("sum") or 0.0,
                    sum_squares=data.get("sum_squares") or 0.0,
                    bucket_limits=limits,
                    bucket_counts=counts,
                    global_step=step,
                    walltime=wall_time,
                )
        params = run.params
        if params:
            writer.add_text("params", "\n".join(f"    {k} = {v!r}" for k, v in sorted(params.items())))
        for key, value in run.summary.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                writer.add_scalar(f"summary/{key}", float(value))
    finally:
        writer.close()
    return target
