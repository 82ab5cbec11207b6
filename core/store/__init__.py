"""Storage: backends chosen by URI scheme through the ``epochline_store_backend`` hook."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

DEFAULT_DIR = "epochline-runs"
"""The default store: a visible folder of the working directory, like MLflow's ``mlruns/``."""


def resolve_uri(store: Union[str, os.PathLike, None] = None) -> str:
    """``store=`` if given, else ``EPOCHLINE_STORE``, else ``./epochline-runs``."""
    if store is None:
        store = os.environ.get("EPOCHLINE_STORE") or DEFAULT_DIR
    return os.fspath(store)


def open_backend(store: Union[str, os.PathLike, None] = None):
    """The backend for ``store`` (see :func:`resolve_uri`), opened through the plugin hook."""
    from ..plugins import get_plugin_manager

    uri = resolve_uri(store)
    backend = get_plugin_manager().hook.epochline_store_backend(uri=uri)
    if backend is None:
        scheme = uri.split("://", 1)[0] if "://" in uri else "(none)"
        raise ValueError(
            f"no epochline storage backend accepts {uri!r} (scheme {scheme}); give a directory path, "
            "sqlite:///path, or postgresql://... with the 'postgres' extra installed")
    return backend


def media_path(root: Path, relative: str) -> Path:
    """``root / relative``, refusing anything that would land outside ``root``."""
    root = Path(root).resolve()
    target = (root / relative).resolve()
    if target != root and root not in target.parents:
        raise ValueError(f"media path {relative!r} escapes the store")
    return target


__all__ = ["DEFAULT_DIR", "resolve_uri", "open_backend", "media_path"]
