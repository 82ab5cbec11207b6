"""A tiny MLP on scikit-learn's bundled digits, for the Lightning adapter's tests and benchmark.

Module-level classes (not defined inside tests) so that ``ddp_spawn`` can pickle them. The same
classes are built for ``lightning.pytorch`` (``DigitsMLP``, ``DigitsData``) and, on request, for
``pytorch_lightning`` (:func:`pl_classes`).
"""

from __future__ import annotations

import functools
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset


@functools.lru_cache(maxsize=1)
def digits_arrays() -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_val, y_val): 1437/360 samples, pixels scaled to 0..1, fixed split."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x = (x[order] / 16.0).astype(np.float32)
    y = y[order].astype(np.int64)
    return x[:1437], y[:1437], x[1437:], y[1437:]


def weights_image(layer: nn.Linear) -> np.ndarray:
    """The first layer's absolute weights as an 8-bit grey image (hidden x 64)."""
    w = layer.weight.detach().abs().cpu().numpy()
    return (255 * w / max(float(w.max()), 1e-12)).astype(np.uint8)


_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


def _define(L: Any, prefix: str = "") -> Tuple[type, type]:
    class DigitsData(L.LightningDataModule):
        def __init__(self, batch_size: int = 64):
            super().__init__()
            self.save_hyperparameters()

        def _loader(self, train: bool) -> DataLoader:
            x_train, y_train, x_val, y_val = digits_arrays()
            x, y = (x_train, y_train) if train else (x_val, y_val)
            data = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
            return DataLoader(data, batch_size=self.hparams.batch_size, shuffle=train)

        def train_dataloader(self) -> DataLoader:
            return self._loader(True)

        def val_dataloader(self) -> DataLoader:
            return self._loader(False)

        def test_dataloader(self) -> DataLoader:
            return self._loader(False)

        def predict_dataloader(self) -> DataLoader:
            return self._loader(False)

    class DigitsMLP(L.LightningModule):
        def __init__(
            self,
            lr: float = 0.01,
            hidden: int = 32,
            fail_at_step: Optional[int] = None,
            interrupt_at_step: Optional[int] = None,
            images: bool = True,
            config: Optional[Dict[str, Any]] = None,
            activation: str = "relu",
        ):
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Sequential(nn.Linear(64, hidden), _ACTIVATIONS[activation](), nn.Linear(hidden, 10))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

        def _eval(self, batch: Any, stage: str) -> torch.Tensor:
            x, y = batch
            logits = self(x)
            loss = F.cross_entropy(logits, y)
            acc = (logits.argmax(1) == y).float().mean()
            self.log(f"{stage}_loss", loss, sync_dist=True)
            self.log(f"{stage}_acc", acc, sync_dist=True)
            return loss

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            if self.hparams.fail_at_step is not None and self.global_step >= self.hparams.fail_at_step:
                raise ValueError(f"boom at step {self.global_step}")
            if (
                self.hparams.interrupt_at_step is not None
                and self.global_step >= self.hparams.interrupt_at_step
            ):
                raise KeyboardInterrupt
            x, y = batch
            logits = self(x)
            loss = F.cross_entropy(logits, y)
            acc = (logits.argmax(1) == y).float().mean()
            self.log("train_loss", loss, on_step=True, on_epoch=True, sync_dist=True)
            self.log("train_acc", acc, on_step=False, on_epoch=True, sync_dist=True)
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            return self._eval(batch, "val")

        def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            return self._eval(batch, "test")

        def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            return self(batch[0]).argmax(1)

        def on_validation_epoch_end(self) -> None:
            if self.hparams.images and not self.trainer.sanity_checking and self.logger is not None:
                self.logger.log_image(
                    "weights", [weights_image(self.net[0])], caption=f"epoch {self.current_epoch + 1}"
                )

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)

    for cls in (DigitsData, DigitsMLP):
        cls.__name__ = cls.__qualname__ = prefix + cls.__name__
        cls.__module__ = __name__
    return DigitsData, DigitsMLP


def trainer_kwargs(**overrides: Any) -> Dict[str, Any]:
    """Quiet, small, CPU-only Trainer settings."""
    kwargs: Dict[str, Any] = dict(
        max_epochs=3,
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        log_every_n_steps=5,
    )
    kwargs.update(overrides)
    return kwargs


try:
    import lightning.pytorch as _L
except ImportError:  # only the old package name is installed
    import pytorch_lightning as _L  # noqa: E402

DigitsData, DigitsMLP = _define(_L)


@functools.lru_cache(maxsize=1)
def pl_classes() -> Tuple[type, type]:
    """(PLDigitsData, PLDigitsMLP) built on ``pytorch_lightning``."""
    import pytorch_lightning

    data, model = _define(pytorch_lightning, "PL")
    globals().update({data.__name__: data, model.__name__: model})
    return data, model
