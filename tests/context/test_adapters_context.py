"""The context keywords through each adapter's constructor, with real tiny fits: console, system
samples, environment, run name from params; and each framework's own extras (Lightning dataset
sizes, the transformers model and training args, the Keras summary and optimizer config)."""

import pytest

import epochline


def _checks(view, printed):
    assert view.env is not None and view.env["packages"]["epochline"] == epochline.__version__
    assert printed in [c["text"] for c in view.console()]
    assert len(view.metrics("system/rss_mb")) >= 2


def test_lightning_logger_passes_the_context_keywords(tmp_path, store_dir, store):
    from epochline.integrations.lightning import KoguLogger
    from tests.integrations.lightning_models import _L as L
    from tests.integrations.lightning_models import DigitsData, DigitsMLP, trainer_kwargs

    class Say(L.Callback):
        def on_train_end(self, trainer, module):
            print("lightning says hello")

    logger = KoguLogger(
        "ctx/lightning",
        capture_console=True,
        system_metrics=True,
        system_interval=60,
        name_params=["lr"],
        emit="none",
    )
    trainer = L.Trainer(
        **trainer_kwargs(
            max_epochs=1, logger=logger, callbacks=[Say()], limit_train_batches=3, limit_val_batches=2
        )
    )
    trainer.fit(DigitsMLP(lr=0.02), datamodule=DigitsData(batch_size=64))
    logger.finalize("success")
    view = store().runs(path="ctx/lightning")[0]
    _checks(view, "lightning says hello")
    assert view.name == "lr=0.02"
    datasets = {d["context"]: d for d in view.datasets()}
    assert datasets["train"]["name"] == "DigitsData" and datasets["train"]["location"]["samples"] == 1437
    assert datasets["val"]["location"]["samples"] == 360


def test_transformers_callback_records_model_and_training_args(tmp_path, store_dir, store):
    pytest.importorskip("transformers")
    from epochline.integrations.transformers import TrackerCallback
    from tests.integrations.test_transformers import make_trainer

    callback = TrackerCallback(
        "ctx/hf", capture_console=True, system_metrics=True, system_interval=60, emit="none"
    )
    trainer = make_trainer(tmp_path, [callback], n_train=64, n_val=32, num_train_epochs=1)
    trainer.train()
    print("transformers says hello")  # after train(): the run is finished, not recorded
    view = store().runs(path="ctx/hf")[0]
    assert len(view.metrics("system/rss_mb")) >= 2 and view.env is not None
    assert "transformers says hello" not in [c["text"] for c in view.console()]
    (model,) = view.models()
    assert model["name"] == "BertForSequenceClassification" and model["config"]["hidden_size"] == 32
    assert view.params["learning_rate"] == 3e-3  # the training args, through log_config


def test_keras_callback_records_console_summary_and_optimizer(store_dir, store):
    keras = pytest.importorskip("keras")
    import numpy as np

    from epochline.integrations.keras import TrackerCallback

    class Say(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            print(f"keras epoch {epoch + 1} done")

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).random((64, 8)).astype("float32")
    y = (x.sum(axis=1) > 4).astype("int64")
    callback = TrackerCallback(
        "ctx/keras", capture_console=True, system_metrics=True, system_interval=60, emit="none"
    )
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[callback, Say()])
    view = store().runs(path="ctx/keras")[0]
    _checks(view, "keras epoch 2 done")
    assert any(t.logger == "keras.summary" for t in view.texts())
    assert view.params["optimizer.class"] == "Adam"
