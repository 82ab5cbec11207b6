"""A tiny BERT trained with the transformers Trainer and recorded by epochline. Offline, CPU, ~10 s.

    python examples/transformers_tiny.py [--epochs 5] [--store DIR]

The task is synthetic topic classification: each "sentence" is 16 tokens of filler words with 2-4
keywords of its topic and one distractor keyword of another topic. A 2-layer BERT built from a
config (nothing downloaded) reaches 99-100 % validation accuracy in 5 epochs (~87 % after the first).

What you get: PROGRESS and Kogu lines on stdout (one per epoch, then the final one), and a run in
the store with the TrainingArguments, the model config, every logged metric, one epoch record per
epoch (accuracy in percent), a confusion-matrix image per evaluation and the status.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile

import numpy as np
import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

import epochline
from epochline.integrations.transformers import TrackerCallback

TOPICS, KEYWORDS, FILLER, LENGTH = 4, 8, 64, 16
CLS = 1
VOCAB = 2 + TOPICS * KEYWORDS + FILLER


def sentences(n: int, rng: np.random.Generator) -> "TopicData":
    ids = np.zeros((n, LENGTH + 1), np.int64)
    labels = rng.integers(0, TOPICS, n)
    for i, topic in enumerate(labels):
        words = rng.integers(2 + TOPICS * KEYWORDS, VOCAB, LENGTH)
        k = rng.integers(2, 5)
        where = rng.choice(LENGTH, k + 1, replace=False)
        words[where[:k]] = 2 + topic * KEYWORDS + rng.integers(0, KEYWORDS, k)
        other = (topic + rng.integers(1, TOPICS)) % TOPICS
        words[where[k]] = 2 + other * KEYWORDS + rng.integers(0, KEYWORDS)
        ids[i, 0], ids[i, 1:] = CLS, words
    return TopicData(ids, labels)


class TopicData(torch.utils.data.Dataset):
    def __init__(self, ids: np.ndarray, labels: np.ndarray):
        self.ids, self.labels = torch.from_numpy(ids), torch.from_numpy(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def build_model(seed: int = 0) -> BertForSequenceClassification:
    """A 2-layer BERT from a config: nothing is downloaded."""
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=32,
        num_labels=TOPICS,
    )
    return BertForSequenceClassification(config)


def accuracy(pred) -> dict:
    return {"accuracy": float((pred.predictions.argmax(-1) == pred.label_ids).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument(
        "--store", default=None, help="store directory (default: EPOCHLINE_STORE or ./epochline-runs)"
    )
    parser.add_argument("--lr", type=float, default=3e-3)
    opts = parser.parse_args()

    rng = np.random.default_rng(0)
    train, val = sentences(1600, rng), sentences(400, rng)
    model = build_model()

    def confusion(state, model) -> dict:
        """Called at each evaluation: a TOPICS x TOPICS confusion matrix, scaled up to be seen."""
        with torch.no_grad():
            pred = model(input_ids=val.ids.to(model.device)).logits.argmax(-1).cpu()
        counts = np.zeros((TOPICS, TOPICS))
        np.add.at(counts, (val.labels.numpy(), pred.numpy()), 1)
        pixels = (255 * counts / counts.max()).astype(np.uint8)
        return {"confusion": np.kron(pixels, np.ones((32, 32), np.uint8))}

    tracker = TrackerCallback(
        path="examples/transformers-tiny",
        store=opts.store,
        tags=("example",),
        params={"data": {"train": len(train), "val": len(val), "topics": TOPICS}},
        images=confusion,
    )
    fields = {f.name for f in dataclasses.fields(TrainingArguments)}
    strategy = "eval_strategy" if "eval_strategy" in fields else "evaluation_strategy"  # < 4.46
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            report_to="none",
            use_cpu=True,
            save_strategy="no",
            **{strategy: "epoch"},
            num_train_epochs=opts.epochs,
            per_device_train_batch_size=32,
            learning_rate=opts.lr,
            warmup_steps=30,
            logging_steps=10,
            disable_tqdm=True,
            seed=0,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=train,
            eval_dataset=val,
            compute_metrics=accuracy,
            callbacks=[tracker],
        )
        with tracker.guard():  # an exception or Ctrl-C ends the run failed/interrupted at once
            trainer.train()

    run = tracker.run
    view = epochline.open(opts.store).run(run.id)
    last = view.epochs()[-1]
    print(
        f"run {view.id}: {view.status}, {len(view.epochs())} epoch records, "
        f"val_accuracy {last['values']['val_accuracy']:.1f} % at epoch {last['epoch']}; "
        f"store {run.store_uri}"
    )


if __name__ == "__main__":
    main()
