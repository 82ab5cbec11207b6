"""The issue-17 records, console lines and system samples on a real PostgreSQL server.

Set EPOCHLINE_TEST_POSTGRES to a connection URI to run it; without it it is skipped.
"""

import os
import uuid

import pytest

import epochline

URI = os.environ.get("EPOCHLINE_TEST_POSTGRES")
pytestmark = pytest.mark.skipif(not URI, reason="EPOCHLINE_TEST_POSTGRES is not set")


def test_records_console_and_system_samples_round_trip(tmp_path):
    store = f"{URI}{'&' if '?' in URI else '?'}media={tmp_path / 'media'}"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.csv").write_text("1,2\n")
    (tmp_path / "c.json").write_text('{"depth": 3}')
    path = f"pg/{uuid.uuid4().hex}"
    with epochline.init(
        path,
        store=store,
        params={"use_m": False, "m": 0.9},
        param_parents={"m": "use_m"},
        capture_console=True,
        system_metrics=True,
        system_interval=60,
    ) as run:
        run.log_config(config_files=[tmp_path / "c.json"])
        run.log_dataset("d", tmp_path / "data", save=True)
        run.log_model("bert", "bert-base-uncased", source="huggingface")
        run.log({"loss": 0.5}, wall_time=12.5)
        run.set_best(0)
        print("hello postgres")
    with epochline.open(store) as reader:
        view = reader.run(run.id)
        assert view.env["packages"]["epochline"] == epochline.__version__
        assert (
            view.datasets()[0]["files"] == 1 and view.datasets()[0]["archive"]["artifact"] == "dataset/d.zip"
        )
        assert view.models()[0]["uri"] == "bert-base-uncased"
        assert view.config_files()[0]["params"] == 1 and view.params["config.c.depth"] == 3
        assert view.ignored_params == ["m"] and view.fingerprint == run.fingerprint
        assert [c["text"] for c in view.console()] == ["hello postgres"]
        assert "system/rss_mb" in view.system_metric_keys() and len(view.metrics("system/rss_mb")) >= 2
        assert view.metrics("loss") == [(12.5, 0, 0.5)] and view.summary["best_step"] == 0
