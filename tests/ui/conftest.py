"""Fixtures of the viewer tests: a demo store, the app over it, a real server, a real browser."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

pytest.importorskip("starlette", reason="the viewer needs the 'ui' extra")
pytest.importorskip("uvicorn", reason="the viewer needs the 'ui' extra")

ROOT = Path(__file__).resolve().parents[2]
XSS = "<script>alert(1)</script>"


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory) -> Path:
    """examples/ui_demo.py's store (2 configs x 3 seeds + a failed run), plus a run whose name,
    path, tag, param, text and comment are markup, recorded by a real child process."""
    path = tmp_path_factory.mktemp("ui") / "store"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "EPOCHLINE_EMIT": ""}
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "ui_demo.py"), "--store", str(path), "--epochs", "4"],
        check=True,
        env=env,
        capture_output=True,
        timeout=120,
    )
    code = (
        "import epochline\n"
        f"with epochline.init('xss/{XSS}', name={XSS!r}, params={{'note': {XSS!r}}}, tags=[{XSS!r}],"
        f" store={str(path)!r}) as run:\n"
        "    run.log({'loss': 1.0}, step=0); run.log({'loss': 0.5}, step=1)\n"
        f"    run.log_text({XSS!r}); run.comment({XSS!r})\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)
    return path


@pytest.fixture
def store_of():
    """Open a store for reading; closed at the end of the test."""
    import epochline

    opened = []

    def open_(path: Any):
        store = epochline.open(path)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def client(demo_store, store_of):
    """Starlette's TestClient over the demo store (a localhost host name, as a browser sends)."""
    from starlette.testclient import TestClient

    from epochline.ui.app import create_app

    with TestClient(create_app(store_of(demo_store)), base_url="http://127.0.0.1") as c:
        yield c


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn serving the viewer on a free localhost port, in a thread of the test process."""

    def __init__(self, store: Any, token: Optional[str] = None):
        import uvicorn

        from epochline.ui.app import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(store, token=token),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the viewer did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live(store_of) -> Iterator[Any]:
    """``live(store_path, token=None)`` → a running :class:`LiveServer` (stopped after the test)."""
    servers = []

    def start(path: Any, token: Optional[str] = None) -> LiveServer:
        server = LiveServer(store_of(path), token=token).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium driven by Playwright (no browser download)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the 'test' extra")
    from epochline.ui._chromium import CHROMIUM
    from epochline.ui._chromium import launch as launch_chromium

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} missing (apt-get install chromium; .ci/run does)")
    with sync_api.sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


@pytest.fixture
def page(browser, tmp_path):
    """A fresh page; console errors fail the test; a screenshot helper saves under tmp_path."""
    # bypass_csp: Playwright's waits evaluate strings, which the viewer's CSP forbids; it also
    # makes the markup tests prove that escaping alone keeps stored values inert
    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    pg = context.new_page()
    errors = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    pg.dialogs = []  # type: ignore[attr-defined]
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))  # type: ignore[attr-defined]

    def shot(name: str) -> Path:
        out = tmp_path / f"{name}.png"
        pg.screenshot(path=str(out), full_page=True)
        return out

    pg.shot = shot  # type: ignore[attr-defined]
    pg.errors = errors  # type: ignore[attr-defined]
    yield pg
    context.close()
