"""Describing and archiving local files for datasets, models and the code snapshot.

A description is cheap and bounded: one ``os.scandir`` walk (sorted, so the same tree always gives
the same fingerprint; directory symlinks are not followed, so no loops) that stops after
``max_files`` files or ``max_seconds`` and says so. The fingerprint hashes the listing (relative
names, sizes, modification times), not the contents: it changes when a file is added, removed,
resized or rewritten, at the cost of reading no file.

An archive is a zip written to a temporary file in the store's media folder and then stored
content-addressed like any artifact. Limits are checked before anything is written.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

from ..media import store_file
from ._limits import MAX_LIST_FILES, MAX_LIST_SECONDS


class Refused(Exception):
    """An archive that would break a limit: nothing was written."""


def walk(root: Path) -> Iterator[Tuple[str, Path, int, int]]:
    """``(relative posix name, path, size, mtime_ns)`` of every file below ``root``, sorted.

    Unreadable directories and files that vanish while walking are skipped; they are reported
    by yielding ``("", path, -1, 0)`` so callers can count them.
    """
    stack: List[Tuple[Path, str]] = [(root, "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            yield "", directory, -1, 0
            continue
        subdirs = []
        for entry in entries:
            rel = prefix + entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append((Path(entry.path), rel + "/"))
                    continue
                st = entry.stat()
            except OSError:
                yield "", Path(entry.path), -1, 0
                continue
            if stat.S_ISREG(st.st_mode):
                yield rel, Path(entry.path), st.st_size, st.st_mtime_ns
        stack.extend(reversed(subdirs))


def describe(
    location: Any, *, max_files: int = MAX_LIST_FILES, max_seconds: float = MAX_LIST_SECONDS
) -> Dict[str, Any]:
    """Location, kind, file count, total bytes and listing fingerprint of a local file or folder.

    A missing path gives ``{"exists": False, "error": ...}``; a walk cut short gives
    ``"complete": False`` and ``"stopped"`` saying why (the counts then cover what was seen).
    """
    path = Path(os.fspath(location)).expanduser()
    out: Dict[str, Any] = {"path": str(path.absolute())}
    try:
        st = path.stat()
    except OSError as exc:
        out.update(exists=False, error=f"{type(exc).__name__}: {exc.strerror or exc}")
        return out
    out["exists"] = True
    digest = hashlib.sha256()
    if not stat.S_ISDIR(st.st_mode):
        digest.update(f"{path.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "replace"))
        out.update(kind="file", files=1, bytes=st.st_size, fingerprint=digest.hexdigest()[:16], complete=True)
        return out
    files = size = unreadable = 0
    stopped: Optional[str] = None
    deadline = time.monotonic() + max_seconds
    for rel, _, fsize, mtime in walk(path):
        if fsize < 0:
            unreadable += 1
            continue
        if files >= max_files:
            stopped = f"stopped after {max_files} files (max_files)"
            break
        files += 1
        size += fsize
        digest.update(f"{rel}\0{fsize}\0{mtime}\n".encode("utf-8", "replace"))
        if files % 1000 == 0 and time.monotonic() > deadline:
            stopped = f"stopped after {max_seconds:g} s ({files} files seen; max_seconds)"
            break
    out.update(
        kind="dir", files=files, bytes=size, fingerprint=digest.hexdigest()[:16], complete=stopped is None
    )
    if stopped:
        out["stopped"] = stopped
    if unreadable:
        out["unreadable"] = unreadable
    return out


def check_limits(what: str, description: Dict[str, Any], max_bytes: int, max_files: int) -> None:
    """Raise :class:`Refused` with the reason when ``description`` may not be archived."""
    if not description.get("exists"):
        raise Refused(f"{what}: nothing to archive at {description['path']}")
    if not description.get("complete", False):
        raise Refused(
            f"{what}: the listing of {description['path']} is incomplete "
            f"({description.get('stopped')}); archive a smaller folder"
        )
    if description["files"] > max_files:
        raise Refused(
            f"{what}: {description['files']} files is more than max_archive_files="
            f"{max_files}; raise the limit or archive a smaller folder"
        )
    if description["bytes"] > max_bytes:
        raise Refused(
            f"{what}: {description['bytes']} bytes is more than max_archive_bytes="
            f"{max_bytes}; raise the limit or archive a smaller folder"
        )


def _zip_time(mtime_ns: int) -> Tuple[int, int, int, int, int, int]:
    t = time.gmtime(max(mtime_ns // 1_000_000_000, 315532800))  # zip cannot hold dates before 1980
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


def zip_into_store(
    media_root: Path, entries: Iterable[Tuple[str, Path, int, int]]
) -> Tuple[str, int, str, int]:
    """Write ``entries`` (as from :func:`walk`) into one zip stored content-addressed.

    Returns (relative media path, zip size, sha256, files skipped because they could not be
    read). The zip is deterministic for the same names, contents and times, so re-archiving an
    unchanged tree stores nothing new.
    """
    media_root = Path(media_root)
    media_root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=media_root, prefix=".tmp-", suffix=".zip")
    os.close(fd)
    skipped = 0
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for rel, path, _, mtime in entries:
                if not rel:
                    continue
                info = zipfile.ZipInfo(rel, _zip_time(mtime))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                try:
                    with open(path, "rb") as src, zf.open(info, "w") as dst:
                        while True:
                            chunk = src.read(1 << 20)
                            if not chunk:
                                break
                            dst.write(chunk)
                except OSError:
                    skipped += 1
        rel_path, size, digest = store_file(media_root, Path(tmp))
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    return rel_path, size, digest, skipped
