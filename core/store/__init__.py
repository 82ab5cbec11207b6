"""Storage: backends chosen by URI scheme through the ``epochline_store_backend`` hook.

The backend interface (what a third-party backend provides) is :class:`StoreBackend`; a backend
that ``epochline.open()`` can also read from is a :class:`ReadableBackend`. The two built-ins
(:mod:`epochline.store.sqlite`, :mod:`epochline.store.postgres`) share one SQL implementation,
:class:`epochline.store.base.Backend`.

The one rule about creating stores lives here: a run (``init``) opens its store with
``create=True`` and makes it if missing; reading (``epochline.open()``, the CLI) opens with
``create=False`` and never creates anything: a store that does not exist is a
:class:`~epochline.errors.StoreNotFoundError`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Protocol, Sequence, Union
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from ..events import Event

DEFAULT_DIR = "epochline-runs"
"""The default store: a visible folder of the working directory, like MLflow's ``mlruns/``."""

LOCAL_SCHEMES = ("sqlite://", "file://")


class StoreBackend(Protocol):
    """What a storage backend provides to the run that writes to it (the plugin-author API).

    Return one from an ``epochline_store_backend`` hook. Every method is called on the run's
    dispatcher thread except :meth:`resume_point` (called by ``init`` on the training thread).
    """

    uri: str
    """The store as the user named it (shown in messages and by ``Store.uri``)."""

    @property
    def media_root(self) -> Path:
        """Directory for images and artifacts (content-addressed files, written by the run)."""

    def write(self, events: Sequence[Event]) -> None:
        """Persist one batch of events, in order; raising loses (and counts) that batch."""

    def resume_point(self, run_id: str) -> Optional[Dict[str, Any]]:
        """``{"name", "path", "step", "epochs", "total_epochs"}`` of a stored run, or None."""

    def close(self) -> None:
        """Release connections; called once when the run's last event was dispatched."""


class ReadableBackend(StoreBackend, Protocol):
    """A backend ``epochline.open()`` can read: SQL over the schema of :mod:`epochline.store.base`."""

    POINT_COLUMNS: str

    def query(self, sql: str, params: Iterable[Any] = ()) -> List[tuple]:
        """Rows of a parameterised query (``?`` placeholders)."""

    def read_point(self, row: Sequence[Any], kind: int) -> Any:
        """A stored metric value as it was logged."""


def resolve_uri(store: Union[str, os.PathLike, None] = None) -> str:
    """``store=`` if given, else ``EPOCHLINE_STORE``, else ``./epochline-runs``."""
    if store is None:
        store = os.environ.get("EPOCHLINE_STORE") or DEFAULT_DIR
    return os.fspath(store)


def path_from_uri(uri: str) -> Optional[Path]:
    """The store directory for a plain path or a ``sqlite://``/``file://`` URI, else None."""
    for scheme in LOCAL_SCHEMES:
        if uri.startswith(scheme):
            return Path(uri[len(scheme) :] or ".")
    if "://" in uri:
        return None
    return Path(uri)


def local_directory(store: Union[str, os.PathLike, None] = None) -> Optional[Path]:
    """The directory of a local (SQLite) store, or None for a server store (PostgreSQL...).

    For adapters that put framework files next to the store (Lightning's ``save_dir``).
    """
    directory = path_from_uri(resolve_uri(store))
    return None if directory is None else directory.expanduser()


def open_backend(store: Union[str, os.PathLike, None] = None, *, create: bool = True) -> Any:
    """The backend for ``store`` (see :func:`resolve_uri`), through the plugin hook.

    Opening connects to nothing and writes nothing: a writer connects (and creates or upgrades
    the schema) on its first write, a reader opens read-only on its first query. So a store that
    is away, locked or read-only never makes opening it fail or wait. ``create=False`` (reading)
    never creates a store: a missing one raises :class:`~epochline.errors.StoreNotFoundError`.
    """
    from ..errors import NoBackendError
    from ..plugins import get_plugin_manager

    uri = resolve_uri(store)
    backend = get_plugin_manager().hook.epochline_store_backend(uri=uri, create=create)
    if backend is None:
        scheme = uri.split("://", 1)[0] if "://" in uri else "(none)"
        raise NoBackendError(
            f"no epochline storage backend accepts {redact(uri)!r} (scheme {scheme}); give a directory path, "
            "sqlite:///path, or postgresql://... with the 'postgres' extra installed"
        )
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
                text = urlunsplit(
                    (parts.scheme, f"{userinfo}@{host}", parts.path, parts.query, parts.fragment)
                )
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


__all__ = [
    "DEFAULT_DIR",
    "StoreBackend",
    "ReadableBackend",
    "resolve_uri",
    "path_from_uri",
    "local_directory",
    "open_backend",
    "media_path",
    "redact",
    "redact_text",
]
