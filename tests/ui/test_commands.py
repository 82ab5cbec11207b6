"""``epochline ui`` and ``epochline report`` through the real entry point, in child processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import XSS, free_port

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "EPOCHLINE_EMIT": ""}


def epochline(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "epochline", *args], capture_output=True, text=True, env=ENV, timeout=timeout
    )


class Served:
    """``epochline ui`` in a child process; its first line tells the URL."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "epochline", "ui", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        self.line = self.proc.stdout.readline()  # printed before serving starts
        match = re.search(r"(http://\S+)", self.line)
        assert match, (self.line, self.proc.stderr.read() if self.proc.poll() is not None else "")
        self.url = match.group(1)

    def get(self, url: str, timeout: float = 30) -> tuple:
        """(status, body): retried while the server is still binding its port."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    return r.status, r.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read().decode()
            except (ConnectionError, urllib.error.URLError):
                assert self.proc.poll() is None, self.proc.stderr.read()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> str:
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err


def test_ui_serves_localhost_without_token(demo_store):
    port = free_port()
    served = Served("--store", str(demo_store), "--port", str(port))
    try:
        assert served.url == f"http://127.0.0.1:{port}/"
        status, body = served.get(served.url + "api/runs")
        assert status == 200 and '"total":8' in body
        assert served.get(served.url)[0] == 200
    finally:
        served.stop()


def test_ui_on_another_address_warns_and_requires_the_printed_token(demo_store):
    port = free_port()
    # 127.0.0.2: "not localhost" to the command, yet still this machine's loopback
    served = Served("--store", str(demo_store), "--port", str(port), "--host", "127.0.0.2")
    try:
        match = re.search(r"\?token=(\S+)", served.line)
        assert match and len(match.group(1)) >= 24
        base = f"http://127.0.0.2:{port}/"
        assert served.get(base + "api/runs")[0] == 401
        assert served.get(base + "api/runs?token=wrong")[0] == 401
        assert served.get(base + "api/runs?token=" + match.group(1))[0] == 200
    finally:
        err = served.stop()
    assert "WARNING" in err and "token" in err


def test_ui_refuses_a_missing_store(tmp_path):
    result = epochline("ui", "--store", str(tmp_path / "none"), "--port", str(free_port()))
    assert result.returncode != 0 and "no store at" in result.stderr
    assert not (tmp_path / "none").exists()


def test_report_is_one_offline_file(demo_store, tmp_path, browser):
    out = tmp_path / "report.html"
    result = epochline("report", "digits/softmax", "-o", str(out), "--store", str(demo_store))
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}" in result.stdout
    html = out.read_text()
    assert "<script src" not in html and '<link rel="stylesheet"' not in html
    assert "data:image/png;base64," in html  # the images travel inside

    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    requests = []  # anything but the file itself is a fetch the report must not make

    def offline(route):
        if route.request.url == out.as_uri():
            route.continue_()
        else:
            requests.append(route.request.url)
            route.abort()

    context.route("**/*", offline)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(out.as_uri())
        page.wait_for_selector("#charts .chart[data-metric=val_accuracy] canvas", timeout=30_000)
        assert page.locator("#compare-runs tbody tr").count() == 6
        assert page.locator("#params-diff tr.differs").count() == 2  # lr and seed
        from test_browser import BLUE, INK

        assert page.evaluate(INK, ["#charts .chart[data-metric=val_loss] canvas", list(BLUE)]) > 20
        page.screenshot(path=str(tmp_path / "report-compare.png"), full_page=True)
        page.locator("#compare-runs .run-link, #compare-runs a").first.click()
        page.wait_for_selector("#run-header h1", timeout=30_000)
        page.wait_for_selector(".chart[data-metric=loss] canvas")
        assert page.evaluate(INK, [".chart[data-metric=loss] canvas", list(BLUE)]) > 100
        assert page.locator("#images img").first.evaluate("img => img.complete && img.naturalWidth") == 80
        page.screenshot(path=str(tmp_path / "report-run.png"), full_page=True)
        page.click("text=Groups")
        page.wait_for_selector("#aggregate tbody tr")
        assert page.locator("#aggregate tbody tr").count() == 2
        page.wait_for_selector("#charts canvas")
        page.click("header.top >> text=Runs")  # the report's runs table, filtered offline too
        page.wait_for_function("document.querySelectorAll('#runs tbody tr').length === 6")
        page.select_option("select[aria-label=tag]", "lr0.5")
        page.wait_for_function("document.querySelectorAll('#runs tbody tr').length === 3")
    finally:
        context.close()
    assert [u for u in requests if not u.startswith("data:")] == []
    assert errors == []


def test_report_of_one_run_opens_on_its_page_and_keeps_markup_inert(demo_store, tmp_path, browser):
    out = tmp_path / "xss.html"
    result = epochline("report", XSS, "-o", str(out), "--store", str(demo_store))
    assert result.returncode == 0, result.stderr
    page = browser.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        page.goto(out.as_uri())
        page.wait_for_selector("#run-header h1")
        assert page.locator("#run-header h1").text_content().startswith(XSS)
        assert page.locator("script").count() == 3
    finally:
        page.close()
    assert dialogs == []


def test_report_of_an_unknown_run_or_too_many(demo_store, tmp_path):
    result = epochline("report", "nope", "-o", str(tmp_path / "r.html"), "--store", str(demo_store))
    assert result.returncode == 2 and "nope" in result.stderr
    result = epochline(
        "report", "digits", "-o", str(tmp_path / "r.html"), "--store", str(demo_store), "--max-runs", "5"
    )
    assert result.returncode == 2 and "7 runs selected, more than 5" in result.stderr
    assert not (tmp_path / "r.html").exists()


def test_help_shows_examples():
    for command in ("ui", "report"):
        result = epochline(command, "--help")
        assert result.returncode == 0 and "example: epochline " + command in result.stdout


def test_import_epochline_does_not_import_the_web_stack():
    code = (
        "import sys, epochline, epochline.cli; epochline.cli.build_parser(); "
        "print(sorted(m for m in ('starlette', 'uvicorn', 'epochline.ui.app') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    assert result.stdout.strip() == "[]", result.stderr


@pytest.mark.parametrize("name", ["uPlot.iife.min.js", "uPlot.min.css", "uPlot.LICENSE", "app.js", "app.css"])
def test_static_files_ship_in_the_package(name):
    import epochline.ui

    assert (Path(epochline.ui.__file__).parent / "static" / name).is_file()


def test_ui_on_a_busy_port_is_an_error_before_any_url(demo_store):
    import socket

    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = epochline("ui", "--store", str(demo_store), "--port", str(port), timeout=60)
    assert result.returncode == 2 and "http://" not in result.stdout
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "--port" in result.stderr
