"""The viewer in a real browser: Debian's headless Chromium (Playwright) against a real server.

Every wait polls for a condition in the page (Playwright's wait_for_*), never a fixed sleep.
Screenshots of each page land in the test's tmp dir.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import XSS

import epochline

pytestmark = pytest.mark.slow
TIMEOUT_MS = 30_000
BLUE = (47, 111, 222)  # the first series colour (COLORS[0] in app.js)

INK = """([sel, rgb]) => {
  // pixels of the series colour drawn on the chart's canvas: a drawn line, not just axes
  const c = document.querySelector(sel);
  if (!c) return -1;
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4)
    if (d[i + 3] > 100 && Math.abs(d[i] - rgb[0]) < 40 && Math.abs(d[i + 1] - rgb[1]) < 40 &&
        Math.abs(d[i + 2] - rgb[2]) < 40) n++;
  return n;
}"""


def rows(page) -> int:
    return page.locator("#runs tbody tr").count()


def wait_rows(page, n: int) -> None:
    page.wait_for_function(f"document.querySelectorAll('#runs tbody tr').length === {n}", timeout=TIMEOUT_MS)


def test_runs_page_filter_open_run_and_see_a_drawn_chart(demo_store, live, page):
    server = live(demo_store)
    page.goto(server.url + "/")
    wait_rows(page, 8)
    page.shot("runs")
    badge = page.locator("#runs tbody tr .badge[data-status=failed]")
    assert "diverged" in badge.get_attribute("title")  # the reason on hover

    page.fill("input[type=search]", "hot")
    wait_rows(page, 1)
    assert "q=hot" in page.url  # the filter is in the URL: a shareable view
    page.fill("input[type=search]", "")
    wait_rows(page, 8)
    page.select_option("select[aria-label=status]", "failed")
    wait_rows(page, 1)
    page.select_option("select[aria-label=status]", "")
    page.click(".tree span[data-path='digits/softmax']")
    wait_rows(page, 6)
    page.select_option("select[aria-label=tag]", "lr0.5")
    wait_rows(page, 3)
    page.shot("runs-filtered")

    page.click("th[data-sort=name]")
    page.wait_for_function("document.querySelector('th[data-sort=name]').textContent.includes('▴')")
    names = page.locator("#runs tbody tr .run-link").all_text_contents()
    assert names == sorted(names)

    page.locator("#runs tbody tr .run-link").first.click()
    page.wait_for_url("**/runs/*")
    page.wait_for_selector(".chart[data-metric=val_accuracy] canvas", timeout=TIMEOUT_MS)
    assert page.evaluate(INK, [".chart[data-metric=loss] canvas", list(BLUE)]) > 100
    assert page.evaluate(INK, [".chart[data-metric=val_accuracy] canvas", list(BLUE)]) > 20
    assert page.locator("#epochs tbody tr").count() == 4
    assert "%" in page.locator("#epochs tbody tr").first.text_content()  # accuracies in percent
    page.fill("input[aria-label='search params']", "lr")
    page.wait_for_function("document.querySelectorAll('#params tr').length === 1")
    assert page.locator("#images img").first.evaluate("img => img.complete && img.naturalWidth") == 80
    assert page.locator("#histograms canvas").count() == 1
    page.select_option("select[aria-label=level]", "WARNING")
    assert all("WARNING" in t for t in page.locator("#texts div").all_text_contents())
    href = page.locator("#artifacts a[download]").get_attribute("href")
    assert href.startswith("/api/runs/") and "/media/" in href

    page.select_option("select[aria-label='x axis']", "epoch")
    page.wait_for_function(
        "document.querySelector('.chart[data-metric=loss] .plot').getAttribute('data-points') === '4'"
    )
    page.check("text=log y")
    page.wait_for_selector(".chart[data-metric=loss] canvas")
    assert page.evaluate(INK, [".chart[data-metric=loss] canvas", list(BLUE)]) > 20
    page.shot("run")
    assert page.errors == []  # type: ignore[attr-defined]


def test_compare_two_runs_from_the_table(demo_store, live, page):
    server = live(demo_store)
    page.goto(server.url + "/?path=digits/softmax&tag=lr0.1")
    wait_rows(page, 3)
    boxes = page.locator("#runs tbody input[type=checkbox]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.click("text=Compare selected (2)")
    page.wait_for_url("**/compare?ids=*")
    page.wait_for_selector("#charts .chart canvas", timeout=TIMEOUT_MS)
    assert page.locator("#compare-runs tbody tr").count() == 2
    # only the seed differs between two seeds of one configuration, and it is highlighted
    assert page.locator("#params-diff tr.differs").all_text_contents()[0].startswith("seed")
    assert page.locator("#params-diff tbody tr").count() == 1
    page.uncheck("text=only the 1 that differ")
    assert page.locator("#params-diff tbody tr").count() == 6
    assert page.locator("#best-final tbody tr").count() == 6  # header row + 5 metrics
    orange = (232, 89, 12)  # the second run's colour
    for colour in (BLUE, orange):
        assert page.evaluate(INK, ["#charts .chart[data-metric=val_loss] canvas", list(colour)]) > 20
    page.shot("compare")
    assert page.errors == []  # type: ignore[attr-defined]


def test_groups_page_bands(demo_store, live, page):
    server = live(demo_store)
    page.goto(server.url + "/groups?path=digits")
    page.wait_for_selector("#charts .chart[data-metric=val_accuracy] canvas", timeout=TIMEOUT_MS)
    assert page.locator("#aggregate tbody tr").count() == 3
    assert "±" in page.locator("#aggregate tbody tr").first.text_content()
    assert page.evaluate(INK, ["#charts .chart[data-metric=val_accuracy] canvas", list(BLUE)]) > 50
    page.shot("groups")
    page.select_option("select[aria-label='band metric']", "val_loss")
    page.wait_for_selector("#charts .chart[data-metric=val_loss] canvas", timeout=TIMEOUT_MS)
    assert page.evaluate(INK, ["#charts .chart[data-metric=val_loss] canvas", list(BLUE)]) > 50


def test_markup_in_stored_values_shows_as_text(demo_store, live, page):
    server = live(demo_store)
    page.goto(server.url + "/?q=xss")
    wait_rows(page, 1)
    link = page.locator("#runs tbody .run-link")
    assert link.text_content() == XSS
    assert page.locator("#runs tbody .tag").text_content() == XSS
    link.click()
    page.wait_for_selector("#run-header h1")
    assert page.locator("#run-header h1").text_content().startswith(XSS)
    assert XSS in page.locator("#params").text_content()
    assert XSS in page.locator("#texts").text_content()
    # no script of the page's making beyond the shell's own (config, uPlot, app)
    assert page.locator("script").count() == 3
    assert page.dialogs == []  # type: ignore[attr-defined]
    page.shot("xss")


def test_unknown_run_is_a_404_page(demo_store, live, page):
    server = live(demo_store)
    response = page.goto(server.url + "/runs/no-such-run")
    assert response.status == 404
    assert "no run 'no-such-run'" in page.locator("main").text_content()


LOGGER = """
import os, sys, time
import epochline
store, stop = sys.argv[1], sys.argv[2]
with epochline.init("live/demo", name="live-run", store=store, flush_interval=0.1) as run:
    step = 0
    deadline = time.monotonic() + 90
    while not os.path.exists(stop) and time.monotonic() < deadline:
        run.log({"loss": 1.0 / (step + 1)}, step=step)
        step += 1
        time.sleep(0.05)
"""


def test_a_running_runs_chart_grows_live(tmp_path, live, page, demo_store):
    store = tmp_path / "live-store"
    stop = tmp_path / "stop"
    child = subprocess.Popen(
        [sys.executable, "-c", LOGGER, str(store), str(stop)],
        env={**os.environ, "OMP_NUM_THREADS": "1", "EPOCHLINE_EMIT": ""},
    )
    try:
        # the store exists once the child has started its run (its file appears a moment before
        # the schema is committed in it: wait until a reader sees the run)
        import time

        def started():
            try:
                with epochline.open(store) as reader:
                    return bool(reader.runs())
            except epochline.StoreNotFoundError:
                return False

        deadline = time.monotonic() + 60
        while not started():
            assert child.poll() is None and time.monotonic() < deadline, "the logger did not start"
            time.sleep(0.05)
        server = live(store)
        page.goto(server.url + "/")
        page.wait_for_selector("#runs tbody tr .badge[data-status=running]", timeout=TIMEOUT_MS)
        page.click("#runs tbody .run-link")
        page.wait_for_selector(".chart[data-metric=loss] canvas", timeout=TIMEOUT_MS)
        first = int(page.get_attribute(".chart[data-metric=loss] .plot", "data-points"))
        page.wait_for_function(
            f"+document.querySelector('.chart[data-metric=loss] .plot').getAttribute('data-points') > {first + 10}",
            timeout=TIMEOUT_MS,
        )
        page.shot("live-running")
        stop.touch()
        assert child.wait(timeout=60) == 0
        # the page notices the end by itself and shows the final status
        page.wait_for_selector("#run-header .badge[data-status=completed]", timeout=TIMEOUT_MS)
        page.shot("live-finished")
    finally:
        stop.touch()
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_long_series_is_downsampled_and_full_data_is_a_click_away(tmp_path, live, page):
    import epochline

    with epochline.init("long/series", store=tmp_path / "s") as run:
        for step in range(20_000):
            run.log({"loss": 5.0 if step == 12_345 else 1.0 / (1 + step)}, step=step)
    server = live(tmp_path / "s")
    page.goto(f"{server.url}/runs/{run.id}")
    plot = ".chart[data-metric=loss] .plot"
    page.wait_for_selector(plot + " canvas", timeout=TIMEOUT_MS)
    shown = int(page.get_attribute(plot, "data-points"))
    assert 100 < shown <= 2_002
    assert "20000 points" in page.locator(".chart[data-metric=loss] h3").text_content()
    page.click(".chart[data-metric=loss] >> text=full data")
    page.wait_for_function(
        f"document.querySelector('{plot}').getAttribute('data-points') === '20000'", timeout=TIMEOUT_MS
    )
    assert page.evaluate(INK, [plot + " canvas", list(BLUE)]) > 100
    page.shot("long-series")


def test_pages_work_under_the_viewers_own_content_security_policy(demo_store, live, browser, tmp_path):
    """The other browser tests bypass the CSP (Playwright's waits evaluate strings); this one
    keeps it: the pages draw, and the browser reports no blocked script or style."""
    server = live(demo_store)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    problems = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type in ("error", "warning") else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    try:
        page.goto(server.url + "/")
        page.wait_for_selector("#runs tbody tr", timeout=TIMEOUT_MS)
        assert page.locator("#runs tbody tr").count() == 8
        page.locator("#runs tbody .run-link").first.click()
        page.wait_for_selector(".chart canvas", timeout=TIMEOUT_MS)
        page.goto(server.url + "/groups?path=digits")
        page.wait_for_selector("#charts .chart canvas", timeout=TIMEOUT_MS)
        page.screenshot(path=str(tmp_path / "csp.png"))
    finally:
        context.close()
    assert [p for p in problems if "Content Security Policy" in p or "Refused" in p] == []
    assert problems == []
