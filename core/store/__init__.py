"""Storage: backends chosen by URI scheme through the ``epochline_store_backend`` hook."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Union
from urllib.parse import urlsplit, urlunsplit

DEFAULT_DIR = "epochline-runs"
"""The default store: a visible folder of the working directory, like MLflow's ``mlruns/``."""


def resolve_uri(store: Union[str, os.PathLike, None] = None) -> str:
    """``store=`` if given, else ``EPOCHLINE_STORE``, else ``./epochline-runs``."""
    if store is None:
        store = os.environ.get("EPOCHLINE_STORE") or DEFAULT_DIR
    return os.fspath(store)


def open_backend(store: Union[str, os.PathLike, None] = None):
    """The backend for ``store`` (see :func:`resolve_uri`), through the plugin hook.

    Opening connects to nothing and writes nothing: a writer connects (and creates or upgrades
    the schema) on its first write, a reader opens read-only on its first query. So a store that
    is away, locked or read-only never makes opening it fail or wait.
    """
    from ..plugins import get_plugin_manager

    uri = resolve_uri(store)
    backend = get_plugin_manager().hook.epochline_store_backend(uri=uri)
    if backend is None:
        scheme = uri.split("://", 1)[0] if "://" in uri else "(none)"
        raise ValueError(
            f"no epochline storage backend accepts {redact(uri)!r} (scheme {scheme}); give a directory path, "
            "sqlite:///path, or postgresql://... with the 'postgres' extra installed")
    return backend


_PASSWORD_PARAM = re.compile(r"(?i)((?:^|[?&\s])password=)('[^']*'|[^&\s]*)")


def redact(uri: Union[str, os.PathLike]) -> str:
    """``uri`` as it may be shown or stored: a password in it is replaced by ``***``.

    Covers ``scheme://user:password@host`` and a ``password=`` parameter (URI query or libpq
    ``key=value`` text). Give passwords through ``PGPASSWORD`` or ``~/.pgpass`` instead, which
    libpq reads itself; they never appear in a URI.
    """
    text = os.fspath(uri)
    if "://" in text:
        try:
            parts = urlsplit(text)
        except ValueError:
            parts = None
        if parts is not None and "@" in parts.netloc:
            userinfo, host = parts.netloc.rsplit("@", 1)
            if ":" in userinfo:
                userinfo = userinfo.split(":", 1)[0] + ":***"
                text = urlunsplit((parts.scheme, f"{userinfo}@{host}", parts.path, parts.query,
                                   parts.fragment))
    return _PASSWORD_PARAM.sub(r"\1***", text)


def redact_text(text: str, uri: Union[str, os.PathLike, None]) -> str:
    """``text`` (e.g. an error message) with the password of ``uri`` masked wherever it appears."""
    if uri is None:
        return text
    raw = os.fspath(uri)
    secrets = set()
    if "://" in raw:
        try:
            parts = urlsplit(raw)
            if parts.password:
                secrets.add(parts.password)
        except ValueError:
            pass
    secrets.update(m.group(2).strip("'") for m in _PASSWORD_PARAM.finditer(raw))
    for secret in secrets:
        if secret and secret != "***":
            text = text.replace(secret, "***")
    return text


def media_path(root: Path, relative: str) -> Path:
    """``root / relative``, refusing anything that would land outside ``root``."""
    root = Path(root).resolve()
    target = (root / relative).resolve()
    if target != root and root not in target.parents:
        raise ValueError(f"media path {relative!r} escapes the store")
    return target


__all__ = ["DEFAULT_DIR", "resolve_uri", "open_backend", "media_path", "redact", "redact_text"]
