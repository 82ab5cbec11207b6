"""Zip export/import round trips (SQLite and PostgreSQL), hostile archives, delete_run."""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import tempfile
import uuid
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import epochline
from epochline.insight.archive import ArchiveError, Limits
from epochline.store.admin import dump_run

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4"
    "890000000d49444154789c6360000000000500010d0a2db40000000049454e44ae426082"
)


def points_of(view):
    return {
        k: [(s, t, "NaN" if isinstance(v, float) and v != v else v) for t, s, v in view.metrics(k)]
        for k in view.metric_keys()
    }


def snapshot(store, run_id):
    """Everything stored of a run, ids left out, NaN made comparable."""
    record = dump_run(store.backend, run_id)
    record["run"].pop("id")
    view = store.run(run_id)
    media = {
        row[4]: hashlib.sha256(Path(store.backend.media_root, row[4]).read_bytes()).hexdigest()
        for row in record["media"]
    }
    return json.loads(json.dumps(record, default=str)), points_of(view), media


def record_full_run(uri, path, values, extra_artifact=None, params=None, tags=("x", "y"), texts=("hello",)):
    params = {"lr": 0.1, "nested": {"a": [1, 2]}} if params is None else params
    with epochline.init(path, store=uri, params=params, tags=list(tags)) as run:
        run.set_primary_metric("acc", mode="max")
        for step, value in enumerate(values):
            run.log({"v": value}, step=step, epoch=step // 2)
        run.log({"acc": 0.5, "flag": True, "label": "text value", "big": 2**60}, step=len(values))
        run.end_epoch(1, {"val_accuracy": 0.5, "val_loss": math.inf})
        for text in texts:
            run.log_text(text)
        run.comment("a comment")
        run.log_image("img", PNG, caption="c")
        run.log_histogram("w", [1.0, 2.0, 2.5, 3.0])
        if extra_artifact:
            run.log_artifact(extra_artifact)
        return run.id


FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-(2**62), max_value=2**62)
)


# no control characters: PostgreSQL text cannot hold NUL (what a run may store is issue 14's matter)
CHARS = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"))
NAMES = st.text(CHARS, min_size=1, max_size=12)
PARAMS = st.dictionaries(
    NAMES,
    st.one_of(
        st.integers(-(10**6), 10**6),
        st.floats(allow_nan=False),
        st.text(CHARS, max_size=20),
        st.booleans(),
        st.lists(st.integers(0, 9), max_size=3),
    ),
    max_size=5,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(FLOATS, max_size=40),
    params=PARAMS,
    tags=st.lists(NAMES, max_size=3, unique=True),
    texts=st.lists(st.text(CHARS, max_size=30), max_size=3),
)
def test_export_import_round_trip(backend_uri, values, params, tags, texts):
    path = f"rt{uuid.uuid4().hex[:12]}/run"
    with tempfile.TemporaryDirectory() as work:
        artifact = Path(work, "model.bin")
        artifact.write_bytes(os.urandom(3000))
        run_id = record_full_run(backend_uri, path, values, artifact, params, tags, texts)
        target_uri = str(Path(work, "target"))
        with epochline.open(backend_uri) as source:
            before = snapshot(source, run_id)
            archive = source.run(run_id).export(Path(work, "run.zip"))
        # into an empty SQLite store, and back into the same backend with a new id
        with epochline.open(target_uri, create=True) as target:  # importing into a new store
            assert target.import_run(archive).id == run_id
            assert snapshot(target, run_id) == before
        with epochline.open(backend_uri) as source:
            with pytest.raises(FileExistsError, match="new_id=True"):
                source.import_run(archive)
            copy = source.import_run(archive, new_id=True)
            assert copy.id != run_id and snapshot(source, copy.id) == before


def test_export_import_into_postgres(tmp_path):
    uri = os.environ.get("EPOCHLINE_TEST_POSTGRES")
    if not uri:
        pytest.skip("EPOCHLINE_TEST_POSTGRES is not set")
    pg = f"{uri}{'&' if '?' in uri else '?'}media={tmp_path / 'pgmedia'}"
    run_id = record_full_run(tmp_path / "src", f"pg{uuid.uuid4().hex[:8]}/r", [1.5, math.nan, -math.inf])
    with epochline.open(tmp_path / "src") as source:
        archive = source.run(run_id).export(tmp_path / "r.zip")
        original = points_of(source.run(run_id))
    with epochline.open(pg) as target:
        view = target.import_run(archive, new_id=True)
        got = points_of(view)
        # PostgreSQL keeps every number as a float, so compare numerically
        assert got.keys() == original.keys() and got["v"] == original["v"]
        assert got["label"] == original["label"] and got["flag"][0][2] is True
        assert view.images()[0].path.read_bytes() == PNG
        target.delete_run(view.id)


@pytest.fixture
def good_zip(tmp_path):
    run_id = record_full_run(tmp_path / "src", "good/run", [1.0, 2.0])
    with epochline.open(tmp_path / "src") as store:
        return store.run(run_id).export(tmp_path / "good.zip")


def rewrite(source, target, change=None, add=(), manifest_fix=True, attrs=None):
    """Copy ``source`` zip to ``target``, changing member bytes, adding members, fixing the
    manifest's hashes (so that only the hostile part differs) unless told not to."""
    with zipfile.ZipFile(source) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    if change:
        members = change(members)
    manifest = json.loads(members["manifest.json"])
    for name, data in add:
        members[name] = data
    if manifest_fix:
        manifest["members"] = {
            n: {"size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
            for n, d in members.items()
            if n != "manifest.json"
        }
        members["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if attrs and name in attrs:
                info.external_attr = attrs[name]
            zf.writestr(info, data)
    return target


def assert_refused(store_dir, archive, match, **kwargs):
    with epochline.open(store_dir, create=True) as store:
        with pytest.raises(ArchiveError, match=match):
            store.import_run(archive, **kwargs)
        assert store.runs() == []
    media = Path(store_dir, "media")
    assert not any(p.is_file() for p in media.rglob("*")), "media written for a refused archive"


@pytest.mark.parametrize(
    "name", ["../evil.txt", "/etc/evil", "C:/evil", "media/../../x", "a\\..\\b", "series/./x"]
)
def test_zip_slip_names_are_refused(good_zip, tmp_path, name):
    bad = rewrite(good_zip, tmp_path / "bad.zip", add=[(name, b"x")])
    assert_refused(tmp_path / "dst", bad, "absolute|escape")


def test_symlink_member_is_refused(good_zip, tmp_path):
    bad = rewrite(
        good_zip,
        tmp_path / "bad.zip",
        add=[("media/link", b"/etc/passwd")],
        attrs={"media/link": (stat.S_IFLNK | 0o777) << 16},
    )
    assert_refused(tmp_path / "dst", bad, "symbolic link")


def test_member_over_size_limit_is_refused(good_zip, tmp_path):
    assert_refused(tmp_path / "dst", good_zip, "over the limit", limits=Limits(member_bytes=100))


def test_total_over_size_limit_is_refused(good_zip, tmp_path):
    assert_refused(tmp_path / "dst", good_zip, "expands to", limits=Limits(total_bytes=1000))


def test_zip_bomb_ratio_is_refused(good_zip, tmp_path):
    bad = rewrite(good_zip, tmp_path / "bomb.zip", add=[("media/00/zeros", bytes(50 << 20))])
    assert_refused(tmp_path / "dst", bad, "zip bomb")


def test_hash_mismatch_is_refused(good_zip, tmp_path):
    def tamper(members):
        tampered = members["run.json"].replace(b'"good/run"', b'"evil/run"')
        assert tampered != members["run.json"]
        members["run.json"] = tampered
        return members

    bad = rewrite(good_zip, tmp_path / "bad.zip", change=tamper, manifest_fix=False)
    assert_refused(tmp_path / "dst", bad, "SHA-256")


def test_future_format_version_is_refused(good_zip, tmp_path):
    def future(members):
        manifest = json.loads(members["manifest.json"])
        manifest["format_version"] = 99
        members["manifest.json"] = json.dumps(manifest).encode()
        return members

    bad = rewrite(good_zip, tmp_path / "bad.zip", change=future, manifest_fix=False)
    assert_refused(tmp_path / "dst", bad, "newer than this epochline")


def test_unlisted_member_and_not_a_zip_are_refused(good_zip, tmp_path):
    bad = rewrite(good_zip, tmp_path / "bad.zip", add=[("extra.txt", b"x")], manifest_fix=False)
    assert_refused(tmp_path / "dst", bad, "members and the manifest differ")
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    assert_refused(tmp_path / "dst", junk, "not a readable zip")


def test_media_path_outside_content_address_is_refused(good_zip, tmp_path):
    def retarget(members):
        record = json.loads(members["run.json"])
        record["media"][0][4] = "../../outside.png"
        members["run.json"] = json.dumps(record).encode()
        return members

    bad = rewrite(good_zip, tmp_path / "bad.zip", change=retarget)
    assert_refused(tmp_path / "dst", bad, "content address")


def test_delete_run_keeps_shared_media(tmp_path):
    uri = tmp_path / "s"
    first = record_full_run(uri, "d/one", [1.0])
    second = record_full_run(uri, "d/two", [2.0])
    with epochline.open(uri) as store:
        image = store.run(first).images()[0].path
        assert image == store.run(second).images()[0].path  # content addressed: one file
        gone = store.delete_run(first)
        assert gone == {"runs": 1, "points": 5, "media_files": 0} and image.exists()
        assert [r.id for r in store.runs()] == [second]
        assert store.delete_run("d/two")["media_files"] == 1 and not image.exists()
        assert store.runs() == [] and store.backend.query("SELECT COUNT(*) FROM metrics")[0][0] == 0
        with pytest.raises(KeyError, match="no run"):
            store.delete_run(first)


def test_delete_refuses_a_running_run(tmp_path):
    import time

    uri = tmp_path / "s"
    run = epochline.init("live/run", store=uri, flush_interval=0.05)
    try:
        run.log({"x": 1.0}, step=0)
        deadline = time.monotonic() + 30
        while True:  # the row appears when the writer thread has flushed (no sleep-and-hope)
            try:
                with epochline.open(uri) as store:
                    store.run(run.id)
                break
            except (KeyError, FileNotFoundError):
                assert time.monotonic() < deadline, "the run never reached the store"
                time.sleep(0.05)
        with epochline.open(uri) as store:
            with pytest.raises(RuntimeError, match="still running"):
                store.delete_run(run.id)
    finally:
        run.finish()
    with epochline.open(uri) as store:
        assert store.delete_run(run.id)["points"] == 1


def test_export_and_import_report_progress(tmp_path):
    with epochline.init("prog/run", store=tmp_path / "s") as run:
        for step in range(1200):
            run.log({"a": float(step), "b": step * 2.0}, step=step)
    seen_export, seen_import = [], []
    with epochline.open(tmp_path / "s") as store:
        archive = store.run("prog/run").export(
            tmp_path / "p.zip", progress=lambda d, t: seen_export.append((d, t))
        )
    with epochline.open(tmp_path / "t", create=True) as target:
        target.import_run(archive, progress=lambda d, t: seen_import.append((d, t)))
    assert seen_export[-1] == (2400, 2400) and all(t == 2400 for _, t in seen_export)
    done = [d for d, _ in seen_import]
    assert done == sorted(done) and seen_import[-1][0] == seen_import[-1][1]


@pytest.mark.parametrize("damage", ["params_shape", "run_field", "series_kind"])
def test_crafted_record_with_valid_hashes_is_refused(good_zip, tmp_path, damage):
    def craft(members):
        record = json.loads(members["run.json"])
        if damage == "params_shape":
            record["params"].append(["only-a-key"])
        elif damage == "run_field":
            record["run"]["status"] = {"nested": True}
        else:
            record["series"][0]["kind"] = "bool'; DROP TABLE runs; --"
        members["run.json"] = json.dumps(record).encode()
        return members

    bad = rewrite(good_zip, tmp_path / "bad.zip", change=craft)  # manifest re-hashed: only the shape is wrong
    assert_refused(tmp_path / "dst", bad, "run.json|run record")


def test_export_of_a_run_whose_media_file_is_gone(tmp_path):
    run_id = record_full_run(tmp_path / "s", "gone/run", [1.0])
    with epochline.open(tmp_path / "s") as store:
        store.run(run_id).images()[0].path.unlink()
        archive = store.run(run_id).export(tmp_path / "g.zip")
    with zipfile.ZipFile(archive) as zf:
        assert len(json.loads(zf.read("manifest.json"))["missing"]) == 1
    with epochline.open(tmp_path / "t", create=True) as target:
        view = target.import_run(archive)
        assert view.images()[0].path.exists() is False and len(view.artifacts()) == 0
