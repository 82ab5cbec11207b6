"""The viewer's web app: a Starlette ASGI app of read-only JSON endpoints and one page shell.

Every endpoint is a GET over the read API (:mod:`epochline.ui.data`); nothing writes to the
store. Pages are rendered in the browser from JSON with text nodes only, so stored values can
never become markup. A token, when set, is required on every request (``?token=`` once, then a
cookie); without one the app answers only to ``localhost`` host names, which keeps other web
sites from reading it through DNS rebinding.
"""

from __future__ import annotations

import hmac
import html
import json
import re
import threading
import time
from functools import wraps
from pathlib import Path
from typing import Any, Callable, Dict, List, MutableMapping, Optional, Tuple

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..store.reader import RunView, Store
from . import data

__all__ = ["create_app", "page_html", "STATIC_DIR", "TOKEN_COOKIE"]

STATIC_DIR = Path(__file__).parent / "static"
TOKEN_COOKIE = "epochline_token"
LOCAL_HOSTS = ["localhost", "127.0.0.1", "::1", "[::1]"]
POLL_MS = 1500
"""How often pages poll for new data: live views stay under 2 s behind the store."""
_HASH = re.compile(r"[0-9a-f]{64}")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# scripts only from the viewer's own files (the page's config is a JSON data block, not code);
# inline styles are allowed for the chart library's and the colour swatches' style attributes
SCRIPTS = ("uPlot.iife.min.js", "app.js")
STYLES = ("uPlot.min.css", "app.css")


class JSON(Response):
    """Strict JSON (NaN and infinities as strings, as ``epochline show --json`` writes them)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(
            data.json_safe(content), allow_nan=False, separators=(",", ":"), default=str
        ).encode("utf-8")


def script_json(value: Any) -> str:
    """JSON safe to place inside a ``<script>`` element (no ``</script>``, no ``<!--``)."""
    text = json.dumps(data.json_safe(value), allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page_html(config: Dict[str, Any], styles: str, scripts: str, title: str = "epochline") -> str:
    """The page shell: the app builds everything else from ``config`` (a JSON data block the
    script reads; never executed) and the JSON endpoints."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{html.escape(title)}</title>{styles}</head>"
        '<body><div id="app"><p class="loading">Loading…</p></div>'
        f'<script type="application/json" id="epochline-config">{script_json(config)}</script>'
        f"{scripts}</body></html>"
    )


def error_page(status: int, title: str, detail: str) -> HTMLResponse:
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{status} {html.escape(title)} · epochline</title>"
        '<link rel="stylesheet" href="/static/app.css"></head><body><main class="error">'
        f"<h1>{status} · {html.escape(title)}</h1><p>{html.escape(detail)}</p>"
        '<p><a href="/">All runs</a></p></main></body></html>'
    )
    return HTMLResponse(body, status_code=status)


def _int_arg(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise HTTPException(400, f"{name} must be an integer, got {raw!r}") from None


class Endpoints:
    """The viewer's handlers over one open store; each is a GET that only reads."""

    AGGREGATE_TTL_S = 10.0
    """A groups page asks for the aggregate once and for each metric's bands: one computation."""

    def __init__(self, store: Store):
        self.store = store
        self.index = data.RunsIndex(store)
        self.series_cache = data.SeriesCache()
        self._aggregates: Dict[tuple, Tuple[float, Dict[str, Any]]] = {}

    def find(self, ref: str) -> RunView:
        try:
            return self.store.run(ref)
        except KeyError as exc:
            raise HTTPException(404, str(exc.args[0]) if exc.args else f"no run {ref!r}") from None

    def shell(self, request: Request) -> HTMLResponse:
        if "run_id" in request.path_params:
            self.find(request.path_params["run_id"])  # a bad id is a 404 page, not an empty shell
        styles = "".join(f'<link rel="stylesheet" href="/static/{s}">' for s in STYLES)
        scripts = "".join(f'<script src="/static/{s}"></script>' for s in SCRIPTS)
        config = {"report": False, "poll_ms": POLL_MS, "store": self.store.uri}
        return HTMLResponse(page_html(config, styles, scripts))

    def runs(self, request: Request) -> JSON:
        qp = request.query_params
        return JSON(
            self.index.page(
                path=qp.get("path"),
                tag=qp.get("tag"),
                status=qp.get("status"),
                q=qp.get("q"),
                sort=qp.get("sort", "start_time"),
                desc=qp.get("desc", "1") not in ("0", "false"),
                offset=_int_arg(request, "offset", 0),
                limit=_int_arg(request, "limit", 50),
            )
        )

    def run(self, request: Request) -> JSON:
        return JSON(data.run_detail(self.find(request.path_params["run_id"])))

    def series(self, request: Request) -> JSON:
        run = self.find(request.path_params["run_id"])
        keys = request.query_params.get("keys")
        return JSON(
            data.run_series(
                run,
                keys.split(",") if keys else None,
                points=_int_arg(request, "points", data.DEFAULT_POINTS),
                epochs=request.query_params.get("x") == "epoch",
                cache=self.series_cache,
            )
        )

    def histograms(self, request: Request) -> JSON:
        run = self.find(request.path_params["run_id"])
        return JSON(data.histograms(run, request.query_params.get("key", "")))

    def media(self, request: Request) -> Response:
        run = self.find(request.path_params["run_id"])
        digest = request.path_params["digest"]
        found = data.media_file(run, digest) if _HASH.fullmatch(digest) else None
        if found is None:
            raise HTTPException(404, f"run {run.id} has no media file {digest!r}")
        path, name, kind = found
        if not path.is_file():
            raise HTTPException(404, f"media file {digest} is missing from the store")
        if kind == "image":
            return FileResponse(path, media_type="image/jpeg" if path.suffix == ".jpg" else "image/png")
        return FileResponse(
            path, filename=name, media_type="application/octet-stream", content_disposition_type="attachment"
        )

    def compare(self, request: Request) -> JSON:
        ids = [i for i in request.query_params.get("ids", "").split(",") if i]
        if not ids:
            raise HTTPException(400, "give the runs to compare: /api/compare?ids=ID,ID")
        runs = [self.find(i) for i in ids]
        return JSON(
            data.compare(
                self.store,
                runs,
                points=_int_arg(request, "points", data.DEFAULT_POINTS),
                epochs=request.query_params.get("x") == "epoch",
                cache=self.series_cache,
            )
        )

    def _aggregate(self, request: Request) -> Dict[str, Any]:
        qp = request.query_params
        by = qp.get("by") or "fingerprint"
        key = (qp.get("path") or None, qp.get("tag") or None, by)
        cached = self._aggregates.get(key)
        if cached is not None and time.monotonic() - cached[0] < self.AGGREGATE_TTL_S:
            return cached[1]
        try:
            result = data.groups(
                self.store,
                path=key[0],
                tag=key[1],
                by=by if by == "fingerprint" else [b.strip() for b in by.split(",")],
            )
        except KeyError as exc:
            raise HTTPException(404, str(exc.args[0]) if exc.args else "not found") from None
        if len(self._aggregates) > 16:
            self._aggregates.clear()
        self._aggregates[key] = (time.monotonic(), result)
        return result

    def groups(self, request: Request) -> JSON:
        return JSON(self._aggregate(request))

    def bands(self, request: Request) -> JSON:
        key = request.query_params.get("metric")
        if not key:
            raise HTTPException(400, "give the metric: /api/groups/bands?metric=NAME")
        return JSON(
            data.group_bands(
                self.store,
                self._aggregate(request)["aggregate"],
                key,
                points=_int_arg(request, "points", data.DEFAULT_POINTS),
            )
        )


async def _http_error(request: Request, exc: Exception) -> Response:
    """A page (or ``{"error": ...}`` under /api/) for every HTTP error: never a traceback."""
    assert isinstance(exc, HTTPException)
    detail = exc.detail or "not found"
    if request.url.path.startswith("/api/"):
        return JSON({"error": detail}, status_code=exc.status_code)
    titles = {400: "Bad request", 401: "Token required", 404: "Not found", 405: "Read-only viewer"}
    return error_page(exc.status_code, titles.get(exc.status_code, "Error"), detail)


def create_app(store: Store, token: Optional[str] = None, allowed_hosts: Optional[List[str]] = None) -> Any:
    """The viewer over an open ``store`` (an ASGI app). ``token``: required on every request."""
    ep = Endpoints(store)
    lock = threading.Lock()

    def serial(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        """One request at a time on the store's connection (handlers run in a thread pool)."""

        @wraps(handler)
        def run(request: Request) -> Response:
            with lock:
                return handler(request)

        return run

    routes = [
        Route("/", ep.shell),
        Route("/runs", ep.shell),
        Route("/runs/{run_id}", serial(ep.shell)),
        Route("/compare", ep.shell),
        Route("/groups", ep.shell),
        Route("/api/runs", serial(ep.runs)),
        Route("/api/runs/{run_id}", serial(ep.run)),
        Route("/api/runs/{run_id}/series", serial(ep.series)),
        Route("/api/runs/{run_id}/histograms", serial(ep.histograms)),
        Route("/api/runs/{run_id}/media/{digest}", serial(ep.media)),
        Route("/api/compare", serial(ep.compare)),
        Route("/api/groups", serial(ep.groups)),
        Route("/api/groups/bands", serial(ep.bands)),
        Mount("/static", app=StaticFiles(directory=str(STATIC_DIR)), name="static"),
    ]
    middleware = [
        Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts or (["*"] if token else LOCAL_HOSTS))
    ]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={HTTPException: _http_error})
    app.state.store = store
    return _guard(app, token)


def _guard(app: Starlette, token: Optional[str]) -> Any:
    """Wrap ``app``: read-only methods, a token when set, and safety headers on every answer."""

    async def guarded(scope: Dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        request = Request(scope)
        set_cookie = False

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                ]
                if set_cookie and token:
                    headers.append(
                        (b"set-cookie", f"{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict".encode())
                    )
                message = {**message, "headers": headers}
            await send(message)

        if scope["method"] not in ("GET", "HEAD"):
            response = error_page(
                405, "Read-only viewer", "this viewer only reads the store; nothing can be changed here"
            )
            response.headers["allow"] = "GET, HEAD"
            await response(scope, receive, send_with_headers)
            return
        if token:
            bearer = request.headers.get("authorization", "")
            given = (
                request.query_params.get("token")
                or request.cookies.get(TOKEN_COOKIE)
                or (bearer[7:].strip() if bearer.startswith("Bearer ") else "")
            )
            if not given or not hmac.compare_digest(given.encode(), token.encode()):
                response = error_page(
                    401, "Token required", "open the URL with ?token=... that `epochline ui` printed"
                )
                await response(scope, receive, send_with_headers)
                return
            set_cookie = request.query_params.get("token") is not None

        await app(scope, receive, send_with_headers)

    guarded.state = app.state  # type: ignore[attr-defined]
    return guarded
