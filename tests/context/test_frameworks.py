"""The framework helpers of issue 17 with real frameworks: a Lightning fit on digits, a tiny
transformers model built from a config and one saved and loaded from a local folder."""

import pytest

import epochline
from epochline.context._frameworks import huggingface_model, lightning_datasets


def test_lightning_dataset_sizes_from_a_real_fit(store_dir, store):
    from tests.integrations.lightning_models import _L as L
    from tests.integrations.lightning_models import DigitsData, DigitsMLP, trainer_kwargs

    run = epochline.init("fw", capture_env=False)
    seen = []

    class Record(L.Callback):
        def on_train_epoch_end(self, trainer, module):
            seen.append(lightning_datasets(run, trainer))

    trainer = L.Trainer(
        **trainer_kwargs(
            max_epochs=1, callbacks=[Record()], logger=False, limit_train_batches=3, limit_val_batches=2
        )
    )
    trainer.fit(DigitsMLP(), datamodule=DigitsData(batch_size=64))
    run.finish()
    assert seen == [2]  # train and val were loaded; test was not
    datasets = {d["context"]: d for d in store().run(run.id).datasets()}
    assert datasets["train"]["name"] == "DigitsData"
    assert datasets["train"]["location"] == {
        "dataset": "TensorDataset",
        "samples": 1437,
        "batches": 23,
        "batch_size": 64,
    }
    assert datasets["val"]["location"]["samples"] == 360 and "test" not in datasets


def test_huggingface_model_from_config_and_from_a_local_folder(tmp_path, store_dir, store):
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8
    )
    model = transformers.BertForSequenceClassification(config)
    model.save_pretrained(tmp_path / "tiny-bert")
    loaded = transformers.BertForSequenceClassification.from_pretrained(tmp_path / "tiny-bert")
    with epochline.init("fw", capture_env=False) as run:
        huggingface_model(run, model)
        huggingface_model(run, loaded)
        huggingface_model(run, object())  # no config: nothing, no error
    models = {m["name"]: m for m in store().run(run.id).models()}
    built = models["BertForSequenceClassification"]
    assert built["source"] == "local" and built["config"]["hidden_size"] == 8
    local = models["tiny-bert"]
    assert local["source"] == "local" and local["path"] == str(tmp_path / "tiny-bert")
    assert local["files"] >= 2 and local["config"]["num_hidden_layers"] == 1
