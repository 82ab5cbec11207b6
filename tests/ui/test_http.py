"""Every endpoint of the viewer over HTTP (Starlette's TestClient over a real SQLite store)."""

from __future__ import annotations

import hashlib
import math

import pytest
from conftest import XSS

STATUSES = ("running", "completed", "failed", "interrupted", "crashed")


def _runs(client, **params):
    r = client.get("/api/runs", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def _run_id(client, **filters) -> str:
    return _runs(client, **filters)["runs"][0]["id"]


def test_runs_table_lists_filters_sorts_and_pages(client):
    all_runs = _runs(client)
    assert all_runs["total"] == 8
    assert all_runs["paths"] == {"digits/softmax": 6, "digits/softmax-hot": 1, f"xss/{XSS}": 1}
    assert all_runs["statuses"] == {"completed": 7, "failed": 1}
    assert all_runs["tags"]["digits"] == 7 and all_runs["tags"]["lr0.5"] == 3

    # path prefix: the parent selects both children, a sibling prefix ("digits/soft") none
    assert _runs(client, path="digits")["total"] == 7
    assert _runs(client, path="digits/softmax")["total"] == 6
    assert _runs(client, path="digits/soft")["total"] == 0
    assert _runs(client, tag="lr0.1")["total"] == 3
    failed = _runs(client, status="failed")
    assert failed["total"] == 1 and failed["runs"][0]["path"] == "digits/softmax-hot"
    assert "diverged" in failed["runs"][0]["reason"]
    assert _runs(client, q="HOT")["total"] == 1  # free text, any case
    assert _runs(client, q="lr0.5", status="completed")["total"] == 3

    best = [r["best"] for r in _runs(client, sort="best", desc="0", path="digits")["runs"]]
    assert best == sorted(best)
    names = [r["name"] for r in _runs(client, sort="name", desc="1")["runs"]]
    assert names == sorted(names, key=str.lower, reverse=True)
    start = [r["start_time"] for r in _runs(client)["runs"]]
    assert start == sorted(start, reverse=True)  # newest first by default

    page1 = _runs(client, limit=3, offset=0)
    page3 = _runs(client, limit=3, offset=6)
    assert len(page1["runs"]) == 3 and len(page3["runs"]) == 2 and page3["total"] == 8
    assert not {r["id"] for r in page1["runs"]} & {r["id"] for r in page3["runs"]}


def test_runs_bad_query_values(client):
    r = client.get("/api/runs", params={"limit": "many"})
    assert r.status_code == 400 and "limit must be an integer" in r.json()["error"]
    # unknown sort column falls back to start time; limit is clamped
    body = _runs(client, sort="nonsense; DROP TABLE runs", limit=100000)
    assert body["sort"] == "start_time" and body["limit"] == 1000 and body["total"] == 8


def test_run_detail(client):
    rid = _run_id(client, status="failed")
    run = client.get(f"/api/runs/{rid}").json()
    assert run["id"] == rid and run["status"] == "failed" and "FloatingPointError" in run["reason"]
    assert run["params"]["optimizer.lr"] == 25.0 and run["ignored_params"] == ["seed"]
    assert set(run["metric_keys"]) == {"loss", "train_loss", "train_accuracy", "val_loss", "val_accuracy"}
    assert [e["epoch"] for e in run["epochs"]] == [1, 2]
    assert "val_accuracy" in run["epochs"][0]["percent"]  # accuracies in percent
    assert 0 <= run["epochs"][0]["values"]["val_accuracy"] <= 100
    assert run["histogram_keys"] == ["weights"] and len(run["images"]) == 2
    assert {t["level"] for t in run["texts"]} >= {"INFO", "ERROR"}
    ok = client.get(f"/api/runs/{_run_id(client, path='digits/softmax')}").json()
    assert ok["artifacts"][0]["name"] == "weights.npz" and ok["comments"]
    assert ok["summary"]["final_val_accuracy"] > 0.5


def test_series_downsampled_and_full(client, demo_store, store_of):
    rid = _run_id(client, path="digits/softmax")
    stored = store_of(demo_store).run(rid).metrics("loss")
    full = client.get(f"/api/runs/{rid}/series", params={"points": 0, "keys": "loss", "x": "epoch"}).json()
    loss = full["series"]["loss"]
    assert set(full["series"]) == {"loss"} and not loss["downsampled"]
    assert loss["n"] == len(stored) == len(loss["step"])
    assert loss["value"] == [v for _, _, v in stored]
    assert loss["time"][0] >= 0 and loss["time"] == sorted(loss["time"])
    # per epoch: the value of the epoch's last step
    epochs = {}
    for row in store_of(demo_store).run(rid).metric_rows("loss"):
        epochs[row["epoch"]] = row["value"]
    assert loss["epochs"] == {"epoch": list(epochs), "value": list(epochs.values())}

    small = client.get(f"/api/runs/{rid}/series", params={"points": 20}).json()["series"]
    assert "epochs" not in small["loss"]  # per-epoch values only when the page asks (x=epoch)
    assert small["loss"]["downsampled"] and len(small["loss"]["step"]) <= 22
    # the envelope survives: global min and max are among the points kept
    assert min(small["loss"]["value"]) == min(loss["value"])
    assert max(small["loss"]["value"]) == max(loss["value"])
    assert set(small) == {"loss", "train_loss", "train_accuracy", "val_loss", "val_accuracy"}
    assert client.get(f"/api/runs/{rid}/series", params={"keys": "nope"}).json()["series"] == {}


def test_histograms(client):
    rid = _run_id(client, path="digits/softmax")
    hists = client.get(f"/api/runs/{rid}/histograms", params={"key": "weights"}).json()
    assert len(hists) == 4 and hists[0]["num"] == 640
    assert len(hists[0]["bucket_counts"]) == len(hists[0]["bucket_limits"])
    assert client.get(f"/api/runs/{rid}/histograms", params={"key": "nope"}).json() == []


def test_media_by_content_hash_only(client, demo_store, store_of):
    rid = _run_id(client, path="digits/softmax")
    run = client.get(f"/api/runs/{rid}").json()
    image = run["images"][-1]
    r = client.get(f"/api/runs/{rid}/media/{image['hash']}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert hashlib.sha256(r.content).hexdigest() == image["hash"]
    artifact = run["artifacts"][0]
    r = client.get(f"/api/runs/{rid}/media/{artifact['hash']}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"] == 'attachment; filename="weights.npz"'
    assert hashlib.sha256(r.content).hexdigest() == artifact["sha256"]

    other = _run_id(client, status="failed")
    other_image = client.get(f"/api/runs/{other}").json()["images"][0]["hash"]
    for bad in (
        "0" * 64,
        other_image,
        "../../epochline.db",
        "..%2F..%2Fepochline.db",
        image["hash"].upper(),
        image["hash"] + ".png",
        "%2Fetc%2Fpasswd",
    ):
        r = client.get(f"/api/runs/{rid}/media/{bad}")
        assert r.status_code == 404, bad
        assert r.headers["content-type"].startswith(("application/json", "text/html"))


def test_unknown_ids_are_404_pages_not_tracebacks(client):
    evil = "<img src=x onerror=alert(1)>"
    for url in ("/runs/nope", f"/runs/{evil}", f"/runs/{XSS}", "/no/such/page"):
        r = client.get(url)
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
        assert "<script>" not in r.text and "<img" not in r.text  # the id is escaped
        assert "Traceback" not in r.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in client.get(f"/runs/{evil}").text
    for url in (
        "/api/runs/nope",
        "/api/runs/nope/series",
        "/api/runs/nope/histograms",
        "/api/runs/nope/media/" + "0" * 64,
        "/api/compare?ids=nope",
    ):
        r = client.get(url)
        assert r.status_code == 404 and "nope" in r.json()["error"], url
    assert client.get("/api/compare").status_code == 400


def test_pages_and_static(client):
    rid = _run_id(client)
    for url in ("/", "/runs", f"/runs/{rid}", f"/compare?ids={rid}", "/groups"):
        r = client.get(url)
        assert r.status_code == 200 and 'id="epochline-config"' in r.text, url
        assert "script-src 'self';" in r.headers["content-security-policy"]  # no inline code
        assert r.headers["x-content-type-options"] == "nosniff"
    js = client.get("/static/uPlot.iife.min.js")
    assert js.status_code == 200 and "uPlot" in js.text
    assert "MIT" in client.get("/static/uPlot.LICENSE").text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/../data.py").status_code == 404


def test_the_xss_run_comes_back_as_data(client):
    xss = _runs(client, q="xss")["runs"][0]
    assert xss["name"] == XSS and xss["tags"] == [XSS] and xss["path"] == f"xss/{XSS}"
    run = client.get(f"/api/runs/{xss['id']}").json()
    assert run["params"]["note"] == XSS and run["texts"][0]["text"] == XSS


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_read_only_every_route(client, method):
    rid = _run_id(client)
    for url in (
        "/",
        f"/runs/{rid}",
        "/api/runs",
        f"/api/runs/{rid}",
        f"/api/runs/{rid}/series",
        f"/api/runs/{rid}/histograms",
        "/api/compare",
        "/api/groups",
        "/static/app.js",
    ):
        r = client.request(method, url)
        assert r.status_code == 405, (method, url)
        assert r.headers["allow"] == "GET, HEAD"


def test_serving_does_not_change_the_store(demo_store, client):
    db = demo_store / "epochline.db"
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    rid = _run_id(client)
    for url in ("/api/runs", f"/api/runs/{rid}", f"/api/runs/{rid}/series", f"/runs/{rid}", "/"):
        assert client.get(url).status_code == 200
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_token_required_when_set(demo_store, store_of):
    from starlette.testclient import TestClient

    from epochline.ui.app import TOKEN_COOKIE, create_app

    app = create_app(store_of(demo_store), token="s3cret")
    with TestClient(app, base_url="http://192.0.2.10") as c:  # any host name once a token guards
        assert c.get("/api/runs").status_code == 401
        assert c.get("/", params={"token": "wrong"}).status_code == 401
        assert c.get("/api/runs", headers={"authorization": "Bearer s3cret"}).status_code == 200
        r = c.get("/", params={"token": "s3cret"})
        assert r.status_code == 200 and TOKEN_COOKIE in r.headers["set-cookie"]
        assert "HttpOnly" in r.headers["set-cookie"]
        assert c.get("/api/runs").status_code == 200  # the cookie now carries it


def test_without_token_only_localhost_names(demo_store, store_of):
    """No token: answer only to localhost host names, so a DNS-rebinding page cannot read runs."""
    from starlette.testclient import TestClient

    from epochline.ui.app import create_app

    app = create_app(store_of(demo_store))
    with TestClient(app, base_url="http://evil.example") as c:
        assert c.get("/api/runs").status_code == 400
    with TestClient(app, base_url="http://localhost:23300") as c:
        assert c.get("/api/runs").status_code == 200


def test_non_finite_values_are_strict_json(tmp_path, store_of):
    import json
    import math

    from starlette.testclient import TestClient

    import epochline
    from epochline.ui.app import create_app

    with epochline.init("nan", store=tmp_path, params={"x": math.inf}) as run:
        run.log({"loss": 1.0}, step=0)
        run.log({"loss": math.nan}, step=1)
        run.log({"loss": math.inf}, step=2)
        run.log({"loss": 0.5}, step=3)
        run.summary({"worst": -math.inf})
    with TestClient(create_app(store_of(tmp_path)), base_url="http://127.0.0.1") as c:
        detail = json.loads(c.get(f"/api/runs/{run.id}").text)  # strict: raises on NaN tokens
        assert detail["params"]["x"] == "Infinity" and detail["summary"]["worst"] == "-Infinity"
        series = c.get(f"/api/runs/{run.id}/series").json()["series"]["loss"]
        assert series["value"] == [1.0, None, None, 0.5]  # gaps in the chart


def test_groups_and_bands(client, demo_store, store_of):
    import statistics

    groups = client.get("/api/groups", params={"path": "digits"}).json()["aggregate"]
    assert len(groups["groups"]) == 3  # lr 0.1, lr 0.5 (3 seeds each), the failed lr 25
    hot = next(g for g in groups["groups"] if "25" in g["label"])
    assert hot["runs"] == [] and hot["excluded"][0]["status"] == "failed"
    by_lr = client.get("/api/groups", params={"path": "digits", "by": "optimizer.lr"}).json()
    assert by_lr["aggregate"]["by"] == ["optimizer.lr"]
    assert client.get("/api/groups", params={"metric": "x", "by": "nope"}).status_code == 200
    assert client.get("/api/groups/bands").status_code == 400

    bands = client.get("/api/groups/bands", params={"metric": "val_accuracy", "path": "digits"}).json()
    store = store_of(demo_store)
    for group, band in zip(groups["groups"], bands["groups"]):
        assert band["label"] == group["label"] and band["runs"] == len(group["runs"])
        if not group["runs"]:
            assert band["step"] == []
            continue
        curves = [[v for _, _, v in store.run(r).metrics("val_accuracy")] for r in group["runs"]]
        for i, values in enumerate(zip(*curves)):  # the seeds log at the same steps
            assert math.isclose(band["mean"][i], statistics.mean(values))
            std = statistics.stdev(values)
            assert math.isclose(band["upper"][i], band["mean"][i] + std)
            assert math.isclose(band["lower"][i], band["mean"][i] - std)
            assert band["n"][i] == 3
