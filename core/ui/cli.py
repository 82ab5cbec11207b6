"""``epochline ui`` and ``epochline report``: the viewer's two commands.

Importing this module is cheap: Starlette and uvicorn are imported only when a command runs, so
``epochline --help`` and ``import epochline`` never pay for the web stack.
"""

from __future__ import annotations

import argparse
import secrets
import socket
import sys

__all__ = ["configure_ui", "configure_report", "cmd_ui", "cmd_report", "DEFAULT_PORT"]

DEFAULT_PORT = 23300
LOCAL = ("127.0.0.1", "localhost", "::1")


def _missing_extra(exc: ModuleNotFoundError) -> int:
    print(
        f"epochline: the viewer needs the 'ui' extra ({exc.name} is missing): pip install 'epochline[ui]'",
        file=sys.stderr,
    )
    return 2


def cmd_ui(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from .app import create_app
    except ModuleNotFoundError as exc:
        return _missing_extra(exc)
    from ..cli import _read_store

    token = args.token
    if args.host not in LOCAL:
        print(
            f"epochline: WARNING: serving on {args.host} makes your runs readable from other "
            "machines; every request needs the token",
            file=sys.stderr,
        )
        token = token or secrets.token_urlsafe(24)
    store = _read_store(args.store)
    app = create_app(store, token=token)
    try:  # bind before printing the URL, so a busy port is an error, not a dead link
        sock = socket.create_server(
            (args.host, args.port), family=socket.AF_INET6 if ":" in args.host else socket.AF_INET
        )
    except OSError as exc:
        store.close()
        print(
            f"epochline: cannot listen on {args.host}:{args.port} ({exc.strerror or exc}); "
            "give another --port",
            file=sys.stderr,
        )
        return 2
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    url = f"http://{'[' + shown + ']' if ':' in shown else shown}:{sock.getsockname()[1]}/"
    print(f"epochline viewer of {store.uri} at {url}{'?token=' + token if token else ''}", flush=True)
    print("read-only; Ctrl-C stops it", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
    store.close()
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    try:
        from .report import build_report
    except ModuleNotFoundError as exc:
        return _missing_extra(exc)
    from ..cli import _read_store

    with _read_store(args.store) as store:
        try:
            out = build_report(store, args.runs, args.output, max_runs=args.max_runs)
        except (KeyError, ValueError) as exc:
            print(f"epochline: {exc.args[0]}", file=sys.stderr)
            return 2
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB); open it in a browser, no server needed")
    return 0


def configure_ui(p: argparse.ArgumentParser) -> None:
    """``epochline ui``'s arguments (an entry of :data:`epochline.cli.COMMANDS`)."""
    p.description = "Serve a read-only web viewer of the store (runs, charts, compare, groups)."
    p.epilog = "example: epochline ui --store ./epochline-runs   # then open http://127.0.0.1:23300/"
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; any other needs a token)"
    )
    p.add_argument(
        "--token",
        default=None,
        help="require this token on every request (generated when --host is not local)",
    )
    p.set_defaults(func=cmd_ui)


def configure_report(p: argparse.ArgumentParser) -> None:
    """``epochline report``'s arguments (an entry of :data:`epochline.cli.COMMANDS`)."""
    p.description = "Write the run page (one run) or the compare page (several) as one offline HTML file."
    p.epilog = "example: epochline report cv/resnet50 -o report.html"
    p.add_argument(
        "runs",
        nargs="+",
        metavar="RUN|PATH",
        help="run id, id prefix, name or alias; or a path (all runs under it)",
    )
    p.add_argument("-o", "--output", required=True, help="the HTML file to write")
    p.add_argument(
        "--max-runs", type=int, default=50, help="refuse a selection of more runs than this (default 50)"
    )
    p.set_defaults(func=cmd_report)
