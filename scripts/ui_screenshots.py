"""Take the screenshots of docs/ui.md: the demo store (examples/ui_demo.py) in the viewer, in
Debian's headless chromium.

    python scripts/ui_screenshots.py [--out docs/img]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "img"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = Path(tempfile.mkdtemp(prefix="epochline-shots-")) / "demo-runs"
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "ui_demo.py"), "--store", str(store)],
        check=True,
        capture_output=True,
    )
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "epochline", "ui", "--store", str(store), "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline()
        base = re.search(r"(http://[^/\s]+)", line).group(1)
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/static/app.css", timeout=2)
                break
            except OSError:
                time.sleep(0.05)
        from playwright.sync_api import sync_playwright

        from epochline.ui._chromium import launch as launch_chromium

        with sync_playwright() as p:
            browser = launch_chromium(p)
            page = browser.new_page(viewport={"width": 1280, "height": 760})
            page.goto(base + "/")
            page.wait_for_selector("#runs tbody tr")
            page.hover("#runs tbody tr .badge[data-status=failed]")
            page.screenshot(path=str(out / "ui-runs.png"))
            ids = page.eval_on_selector_all("#runs tbody tr", "rows => rows.map(r => r.dataset.run)")
            page.goto(base + "/runs/" + ids[-1])
            page.wait_for_selector(".chart[data-metric=val_loss] canvas")
            page.set_viewport_size({"width": 1280, "height": 1500})
            page.screenshot(path=str(out / "ui-run.png"))
            page.goto(base + "/compare?ids=" + ",".join(ids[1:4]))
            page.wait_for_selector("#charts .chart[data-metric=val_loss] canvas")
            page.screenshot(path=str(out / "ui-compare.png"))
            page.goto(base + "/groups?path=digits")
            page.wait_for_selector("#charts .chart[data-metric=val_accuracy] canvas")
            page.set_viewport_size({"width": 1280, "height": 860})
            page.screenshot(path=str(out / "ui-groups.png"))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    print(f"wrote {', '.join(sorted(p.name for p in out.glob('ui-*.png')))} to {out}")


if __name__ == "__main__":
    main()
