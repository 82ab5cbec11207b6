"""``epochline report``: the viewer's run and compare pages as ONE self-contained HTML file.

The file holds the viewer's own script and styles, uPlot, and the JSON answers to exactly the
URLs those pages ask for, so it opens offline from disk (``file://``), in CI artifact browsers
and in mail attachments: no server, nothing fetched. Images are inlined as ``data:`` URIs up to
a total size; artifacts are listed, not embedded (a checkpoint does not belong in a report).
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from ..store.reader import RunView, Store
from . import data
from .app import SCRIPTS, STATIC_DIR, STYLES, page_html

__all__ = ["build_report", "select_runs", "MAX_IMAGE_BYTES", "MAX_RUNS"]

GROUP_CHARTS = 6
"""Band charts on the groups page (the page shows the first six metrics, live or in a report)."""
MAX_RUNS = 50
"""Runs one report holds unless asked for more: a compare page of hundreds of overlaid curves
helps nobody, and each run adds its series (about 1,000 points per metric) to the file."""
MAX_IMAGE_BYTES = 20 * 1024 * 1024
"""Images inlined into one report at most (the newest of each key first); the rest are left out."""


def select_runs(store: Store, refs: Sequence[Union[str, RunView]]) -> List[RunView]:
    """Runs for ``refs``: a RunView, a path (every run at or below it), or what ``store.run`` takes."""
    select = getattr(store, "select", None)
    if select is not None:
        return select(list(refs))
    out: Dict[str, RunView] = {}
    for ref in refs:
        if isinstance(ref, RunView):
            out.setdefault(ref.id, ref)
            continue
        under = store.runs(path=ref)
        for run in under or [store.run(ref)]:
            out.setdefault(run.id, run)
    return list(out.values())


def _inline(names: Sequence[str], tag: str) -> str:
    parts = []
    for name in names:
        text = (STATIC_DIR / name).read_text(encoding="utf-8")
        # nothing inside may close the element early
        text = text.replace("</" + tag, "<\\/" + tag)
        parts.append(f"<{tag}>\n{text}\n</{tag}>")
    return "".join(parts)


def _images(run: RunView, budget: List[int]) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for image in reversed(run.images()):  # the newest first: the slider opens on the last step
        path = image.path
        try:
            size = path.stat().st_size
        except OSError:
            continue
        if size > budget[0]:
            continue
        budget[0] -= size
        mime = "image/jpeg" if path.suffix == ".jpg" else "image/png"
        key = f"/api/runs/{_quote(run.id)}/media/{data.media_hash(path)}"
        out[key] = f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    return out


def _quote(text: str) -> str:
    """What the page's ``encodeURIComponent`` makes of a run id (ids are [A-Za-z0-9._-])."""
    from urllib.parse import quote

    return quote(text, safe="-_.!~*'()")


def build_report(
    store: Store,
    refs: Sequence[Union[str, RunView]],
    out: Union[str, Path],
    points: int = data.DEFAULT_POINTS,
    max_image_bytes: int = MAX_IMAGE_BYTES,
    title: Optional[str] = None,
    max_runs: int = MAX_RUNS,
) -> Path:
    """Write the report of ``refs`` to ``out``; one run opens on its run page, several on compare.

    More than ``max_runs`` selected runs is a :class:`ValueError` (nothing written).
    """
    runs = select_runs(store, refs)
    if not runs:
        raise KeyError("no runs to report: " + ", ".join(map(str, refs)))
    if len(runs) > max_runs:
        raise ValueError(
            f"{len(runs)} runs selected, more than {max_runs} in one report; "
            "name fewer runs or a narrower path, or raise the limit (--max-runs)"
        )
    index = data.RunsIndex(store)
    payload: Dict[str, Any] = {"/api/runs": {"runs": [index.row(r) for r in runs]}}
    budget = [max_image_bytes]
    for run in runs:
        base = f"/api/runs/{_quote(run.id)}"
        detail = data.run_detail(run)
        payload[base] = detail
        payload[base + "/series"] = data.run_series(run, points=points)
        for key in detail["histogram_keys"]:
            payload[f"{base}/histograms?key={_quote(key)}"] = data.histograms(run, key)
        payload.update(_images(run, budget))
    ids = ",".join(_quote(r.id) for r in runs)
    has_groups = False
    if len(runs) > 1:
        payload[f"/api/compare?ids={ids}"] = data.compare(store, runs, points=points)
        groups = data.groups(store, runs=runs)
        payload["/api/groups"] = groups
        has_groups = True
        for key in groups["aggregate"]["metrics"][:GROUP_CHARTS]:
            payload[f"/api/groups/bands?metric={_quote(key)}"] = data.group_bands(
                store, groups["aggregate"], key, points=points
            )
    start = f"/runs/{_quote(runs[0].id)}" if len(runs) == 1 else f"/compare?ids={ids}"
    config = {
        "report": True,
        "data": payload,
        "start": start,
        "has_groups": has_groups,
        "store": store.uri,
        "created": time.strftime("%Y-%m-%d %H:%M"),
    }
    name = title or (runs[0].name if len(runs) == 1 else f"{len(runs)} runs")
    html = page_html(
        config, _inline(STYLES, "style"), _inline(SCRIPTS, "script"), title=f"{name} · epochline report"
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)
    return out
