"""run.log_config, run.log_dataset, run.log_model / log_pretrained on real files."""

import argparse
import dataclasses
import json
import os
import sys
import zipfile

import pytest

import epochline


def _init(**kw):
    return epochline.init("ctx", capture_env=False, **kw)


@dataclasses.dataclass
class Train:
    epochs: int = 3
    opt: dict = dataclasses.field(default_factory=lambda: {"name": "adam", "betas": [0.9, 0.99]})


def test_log_config_args_extra_and_files(tmp_path, store_dir, store):
    (tmp_path / "model.yaml").write_text("width: 64\nlayers:\n  - {kind: conv}\n  - {kind: fc}\n")
    (tmp_path / "data.json").write_text(json.dumps({"batch": 32, "aug": {"flip": True}}))
    (tmp_path / "sched.toml").write_text("[sched]\ngamma = 0.5\n")
    (tmp_path / "broken.yaml").write_text("a: [1, 2\n")
    (tmp_path / "notes.txt").write_text("free text")
    args = argparse.Namespace(lr=0.01, out=tmp_path / "out", fn=len)
    run = _init()
    run.log_config(
        args=args,
        extra={"model": "resnet"},
        config_files=[
            tmp_path / n for n in ("model.yaml", "data.json", "sched.toml", "broken.yaml", "notes.txt")
        ],
    )
    run.log_config(args=Train())
    run.finish()
    view = store().run(run.id)
    params = view.params
    assert params["lr"] == 0.01 and params["out"] == str(tmp_path / "out") and params["fn"] == "len"
    assert params["model"] == "resnet" and params["epochs"] == 3 and params["opt.betas"] == [0.9, 0.99]
    assert params["config.model.width"] == 64 and params["config.model.layers.1.kind"] == "fc"
    assert params["config.data.aug.flip"] is True and params["config.sched.sched.gamma"] == 0.5
    assert not any(k.startswith(("config.broken", "config.notes")) for k in params)
    files = {c["name"]: c for c in view.config_files()}
    assert files["model.yaml"]["parsed"] is True and files["model.yaml"]["params"] == 3
    assert files["broken.yaml"]["parsed"] is False and "not parsed" in files["broken.yaml"]["note"]
    assert "not YAML, JSON or TOML" in files["notes.txt"]["note"]
    stored = {a.name: a for a in view.artifacts()}
    assert sorted(stored) == [
        "config/broken.yaml",
        "config/data.json",
        "config/model.yaml",
        "config/notes.txt",
        "config/sched.toml",
    ]
    assert stored["config/broken.yaml"].path.read_text() == "a: [1, 2\n"  # stored even unparsed


def test_log_config_omegaconf_and_bad_input(tmp_path, store_dir, store):
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"model": {"depth": 18, "name": "${name}"}, "name": "r18"})
    run = _init()
    run.log_config(args=cfg)
    with pytest.raises(TypeError, match="argparse Namespace, a dict"):
        run.log_config(args="--lr 0.1")
    with pytest.raises(TypeError, match="argparse Namespace, a dict"):
        run.log_config(extra=[1, 2])
    with pytest.warns(RuntimeWarning, match="config file .*missing.yaml.* no such file"):
        run.log_config(config_files=str(tmp_path / "missing.yaml"))
    with pytest.warns(RuntimeWarning, match="1 of .* were not recorded"):
        run.finish()
    view = store().run(run.id)
    assert view.params == {"model.depth": 18, "model.name": "r18", "name": "r18"}
    assert view.config_files() == [
        {"name": "missing.yaml", "path": str(tmp_path / "missing.yaml"), "error": "no such file"}
    ]
    assert view.lost == 1


def test_yaml_without_pyyaml_is_stored_not_parsed(tmp_path, store_dir, store, monkeypatch):
    monkeypatch.setitem(sys.modules, "yaml", None)  # `import yaml` now raises ImportError
    (tmp_path / "c.yaml").write_text("a: 1\n")
    with _init() as run:
        run.log_config(config_files=[tmp_path / "c.yaml"])
    view = store().run(run.id)
    assert view.params == {}
    assert "PyYAML is not installed" in view.config_files()[0]["note"]
    assert [a.name for a in view.artifacts()] == ["config/c.yaml"]


def _tree(root):
    (root / "train" / "cats").mkdir(parents=True)
    (root / "train" / "cats" / "a.jpg").write_bytes(b"\xff\xd8" + b"1" * 100)
    (root / "train" / "cats" / "b.jpg").write_bytes(b"\xff\xd8" + b"2" * 50)
    (root / "labels.csv").write_text("a,0\nb,1\n")
    return root


def test_log_dataset_describes_and_fingerprints_the_listing(tmp_path, store_dir, store):
    root = _tree(tmp_path / "ds")
    run = _init()
    first = run.log_dataset("pets", root, description="two cats")
    again = run.log_dataset("pets", str(root), context="val")
    (root / "labels.csv").write_text("a,0\nb,1\nc,2\n")
    changed = run.log_dataset("pets", root, context="test")
    run.log_dataset("remote", "s3://bucket/pets/", context="train")
    run.log_dataset("hub", {"repo": "user/pets", "revision": "main"}, context="train")
    run.finish()
    assert first["files"] == 3 and first["bytes"] == 102 + 52 + 8 and first["complete"] is True
    assert first["fingerprint"] == again["fingerprint"] != changed["fingerprint"]
    datasets = {(d["context"], d["name"]): d for d in store().run(run.id).datasets()}
    assert datasets[("train", "pets")]["description"] == "two cats"
    assert datasets[("train", "pets")]["path"] == str(root)
    assert datasets[("train", "remote")]["uri"] == "s3://bucket/pets/"
    assert datasets[("train", "hub")]["location"] == {"repo": "user/pets", "revision": "main"}
    assert datasets[("test", "pets")]["files"] == 3


def test_log_dataset_bounded_walk_missing_path_and_bad_input(tmp_path, store_dir, store):
    root = tmp_path / "many"
    for i in range(3):
        (root / f"d{i}").mkdir(parents=True)
        for j in range(5):
            (root / f"d{i}" / f"f{j}").write_text("x")
    run = _init()
    with pytest.warns(RuntimeWarning, match="stopped after 7 files"):
        cut = run.log_dataset("many", root, max_files=7)
    assert cut["files"] == 7 and cut["complete"] is False and "max_files" in cut["stopped"]
    with pytest.warns(RuntimeWarning, match="does not exist"):
        missing = run.log_dataset("gone", tmp_path / "nope")
    assert missing["exists"] is False and "FileNotFoundError" in missing["error"]
    with pytest.raises(TypeError, match="location"):
        run.log_dataset("x", 42)
    with pytest.raises(TypeError, match="name must be a non-empty string"):
        run.log_dataset("", root)
    run.finish()
    by_name = {d["name"]: d for d in store().run(run.id).datasets()}
    assert by_name["many"]["stopped"] == cut["stopped"] and by_name["gone"]["exists"] is False


def test_log_dataset_save_archives_within_limits_and_refuses_beyond(tmp_path, store_dir, store):
    root = _tree(tmp_path / "ds")
    run = _init()
    saved = run.log_dataset("pets", root, save=True)
    with pytest.warns(RuntimeWarning, match="3 files is more than max_archive_files=2"):
        refused = run.log_dataset("pets", root, context="val", save=True, max_archive_files=2)
    with pytest.warns(RuntimeWarning, match="more than max_archive_bytes=10"):
        run.log_dataset("pets", root, context="test", save=True, max_archive_bytes=10)
    with pytest.warns(RuntimeWarning, match="only a local path"):
        run.log_dataset("remote", "s3://b/x", save=True)
    run.finish()
    assert saved["archive"]["artifact"] == "dataset/pets.zip"
    assert "refused" in refused["archive"]
    view = store().run(run.id)
    arts = view.artifacts()
    assert [a.name for a in arts] == ["dataset/pets.zip"]  # nothing stored for the refusals
    with zipfile.ZipFile(arts[0].path) as zf:
        assert sorted(zf.namelist()) == ["labels.csv", "train/cats/a.jpg", "train/cats/b.jpg"]
        assert zf.read("train/cats/b.jpg") == (root / "train" / "cats" / "b.jpg").read_bytes()


def test_log_model_and_log_pretrained(tmp_path, store_dir, store):
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(os.urandom(2048))
    run = _init()
    local = run.log_model(
        "mlp", ckpt, save=True, description="best epoch", config={"hidden": [64, 32], "act": "relu"}
    )
    run.log_pretrained("bert-base", path_or_uri="bert-base-uncased", source_type="huggingface")
    run.log_model("resnet18", "resnet18", source="torchvision")
    with pytest.warns(RuntimeWarning, match="does not exist"):
        run.log_model("lost", tmp_path / "none.pt")
    run.finish()
    assert local["kind"] == "file" and local["bytes"] == 2048
    view = store().run(run.id)
    models = {m["name"]: m for m in view.models()}
    assert models["mlp"]["config"] == {"hidden": [64, 32], "act": "relu"}
    assert models["mlp"]["archive"]["artifact"] == "model/mlp"
    assert models["bert-base"] == {
        "name": "bert-base",
        "source": "huggingface",
        "description": None,
        "uri": "bert-base-uncased",
    }
    assert models["resnet18"]["uri"] == "resnet18" and models["lost"]["exists"] is False
    (art,) = view.artifacts()
    assert art.path.read_bytes() == ckpt.read_bytes()


def test_show_and_json_carry_the_records(tmp_path, store_dir, store):
    from epochline.cli import main

    root = _tree(tmp_path / "ds")
    (tmp_path / "c.json").write_text('{"a": 1}')
    with _init(param_parents={"m": "use_m"}, params={"use_m": False, "m": 0.9}) as run:
        run.log_config(config_files=[tmp_path / "c.json"])
        run.log_dataset("pets", root)
        run.log_model("bert", "bert-base-uncased", source="huggingface")
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["show", "--store", str(store_dir), run.id]) == 0
    text = out.getvalue()
    for expected in (
        "config files",
        "c.json",
        "datasets",
        "pets",
        "models",
        "bert-base-uncased",
        "param parents: m -> use_m (not counted)",
    ):
        assert expected in text, expected
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["show", "--store", str(store_dir), run.id, "--json"]) == 0
    data = json.loads(out.getvalue())
    assert data["datasets"][0]["files"] == 3 and data["models"][0]["source"] == "huggingface"
    assert data["config_files"][0]["params"] == 1 and data["param_meta"]["parents"] == {"m": "use_m"}
    assert data["env"] is None and data["code"] is None and data["console"] == []


def test_export_import_keeps_the_records_console_and_system_samples(tmp_path, store_dir, store):
    root = _tree(tmp_path / "ds")
    with epochline.init(
        "ctx",
        capture_console=True,
        system_metrics=True,
        system_interval=60,
        param_parents={"m": "on"},
        params={"on": False, "m": 1},
    ) as run:
        run.log_dataset("pets", root)
        run.log_model("bert", "bert-base-uncased", source="huggingface")
        print("kept in the archive")
    archive = store().run(run.id).export(tmp_path / "run.zip")
    target = tmp_path / "other"
    with epochline.open(target, create=True) as other:
        other.import_run(archive)
    with epochline.open(target) as other:
        view = other.run(run.id)
        assert view.datasets()[0]["files"] == 3 and view.models()[0]["uri"] == "bert-base-uncased"
        assert view.env == store().run(run.id).env and view.param_meta["parents"] == {"m": "on"}
        assert [c["text"] for c in view.console()] == ["kept in the archive"]
        assert len(view.metrics("system/rss_mb")) >= 2 and view.fingerprint == run.fingerprint
