"""What the framework adapters add to a run's context records, without importing any framework.

Each function takes the framework's own objects (duck-typed) and a run, records what is cheap to
get, and never raises: the adapters call them inside their catch-and-warn methods anyway.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterator, Optional, Tuple


def _loaders(value: Any) -> Iterator[Any]:
    """The DataLoaders in what Lightning hands out: one, a list/tuple/dict, or a CombinedLoader."""
    if value is None:
        return
    flattened = getattr(value, "flattened", None)  # lightning's CombinedLoader
    if isinstance(flattened, list):
        yield from flattened
    elif isinstance(value, dict):
        for item in value.values():
            yield from _loaders(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _loaders(item)
    else:
        yield value


def _size(obj: Any) -> Optional[int]:
    """``len(obj)`` for a sized map-style dataset or loader; None for an iterable one."""
    try:
        return len(obj)
    except Exception:
        return None


def dataloader_sizes(loader: Any) -> Dict[str, Any]:
    """Class, samples, batches and batch size of one DataLoader, as far as they are known."""
    dataset = getattr(loader, "dataset", None)
    out: Dict[str, Any] = {
        "dataset": type(dataset).__name__ if dataset is not None else None,
        "samples": _size(dataset) if dataset is not None else None,
        "batches": _size(loader),
        "batch_size": getattr(loader, "batch_size", None),
    }
    return {k: v for k, v in out.items() if v is not None}


_LIGHTNING_LOADERS: Tuple[Tuple[str, str], ...] = (
    ("train", "train_dataloader"),
    ("val", "val_dataloaders"),
    ("test", "test_dataloaders"),
)


def lightning_datasets(run: Any, trainer: Any) -> int:
    """Record one dataset entry per stage whose dataloaders the trainer has loaded (sizes from
    ``len()``, never by iterating); named after the datamodule, else the dataset class. Returns
    how many entries were recorded."""
    datamodule = getattr(trainer, "datamodule", None)
    recorded = 0
    for context, attr in _LIGHTNING_LOADERS:
        try:
            loaders = [dataloader_sizes(loader) for loader in _loaders(getattr(trainer, attr, None))]
        except Exception:
            continue
        loaders = [item for item in loaders if item]
        if not loaders:
            continue
        name = type(datamodule).__name__ if datamodule is not None else loaders[0].get("dataset", "data")
        description: Dict[str, Any] = (
            dict(loaders[0]) if len(loaders) == 1 else {f"loader{i}": item for i, item in enumerate(loaders)}
        )
        samples = [item.get("samples") for item in loaders]
        if len(loaders) > 1 and all(isinstance(s, int) for s in samples):
            description["samples"] = sum(samples)
        run.log_dataset(name, description, context=context)
        recorded += 1
    return recorded


def huggingface_model(run: Any, model: Any) -> None:
    """``log_model`` for a transformers model: its ``_name_or_path`` (a hub id, or a local folder
    described like a dataset) and ``config.to_dict()``; a model built from a config alone is
    recorded under its class name."""
    config = getattr(model, "config", None)
    if config is None:
        return
    name = getattr(config, "_name_or_path", None) or getattr(model, "name_or_path", None) or ""
    try:
        settings = config.to_dict()
    except Exception:
        settings = None
    if not isinstance(name, str) or not name:
        run.log_model(
            type(model).__name__,
            None,
            source="local",
            config=settings,
            description="built from a config, no pretrained weights named",
        )
        return
    local = os.path.exists(name)
    run.log_model(
        os.path.basename(name.rstrip("/")) if local else name,
        name,
        source="local" if local else "huggingface",
        config=settings,
    )
