"""``init(snapshot_code=True)``: a zip of the working tree's source files, stored as an artifact.

In a git repository the files are what ``git ls-files --cached --others --exclude-standard``
lists below the root (tracked files plus new files that ``.gitignore`` does not exclude).
Elsewhere the tree is walked for source-like suffixes (:data:`SOURCE_SUFFIXES`), skipping
virtualenvs, caches and VCS folders (:data:`SKIP_DIRS`). Either way the store's own directory is
left out, single files larger than :data:`MAX_FILE_BYTES` are left out (and named in the record),
and a tree with more than :data:`MAX_FILES` files or :data:`MAX_BYTES` bytes is not archived at
all: the record says so (a partial snapshot would look complete).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ._files import zip_into_store

MAX_FILES = 5_000
MAX_BYTES = 50 * 1024 * 1024
MAX_FILE_BYTES = 2 * 1024 * 1024
GIT_TIMEOUT_S = 10.0
SOURCE_SUFFIXES = frozenset(
    {
        ".py",
        ".pyi",
        ".pyx",
        ".ipynb",
        ".yaml",
        ".yml",
        ".json",
        ".toml",
        ".cfg",
        ".ini",
        ".txt",
        ".md",
        ".rst",
        ".sh",
        ".bash",
        ".c",
        ".cc",
        ".cpp",
        ".h",
        ".hpp",
        ".cu",
        ".cuh",
        ".js",
        ".ts",
        ".r",
        ".jl",
        ".sql",
        ".proto",
        ".lock",
    }
)
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "__pycache__",
        "node_modules",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".ipynb_checkpoints",
        "build",
        "dist",
        "site-packages",
        "wandb",
        "mlruns",
        "lightning_logs",
        "epochline-runs",
    }
)

Entry = Tuple[str, Path, int, int]


def _git_files(root: Path) -> Optional[List[str]]:
    """Files below ``root`` that git would keep, or None when ``root`` is not in a repository."""
    try:
        proc = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
            env=dict(os.environ, GIT_OPTIONAL_LOCKS="0"),
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return sorted({p for p in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if p})


def _walk_files(root: Path, exclude: List[Path]) -> List[str]:
    out: List[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d not in SKIP_DIRS and not d.endswith(".egg-info") and (here / d) not in exclude
        )
        for name in sorted(filenames):
            if Path(name).suffix.lower() in SOURCE_SUFFIXES:
                out.append((here / name).relative_to(root).as_posix())
        if len(out) > MAX_FILES:  # enough to refuse; stop walking a huge tree
            break
    return out


def collect(root: Path, exclude: List[Path]) -> Tuple[str, List[Entry], List[str], bool]:
    """(how the files were chosen, entries to archive, names left out for their size, whether
    there were more than :data:`MAX_FILES` candidates -- then the entries are incomplete)."""
    names = _git_files(root)
    mode = "git"
    if names is None:
        names, mode = _walk_files(root, exclude), "walk"
    too_many = len(names) > MAX_FILES
    if too_many:  # refused anyway: do not stat a huge tree
        return mode, [], [], True
    entries: List[Entry] = []
    large: List[str] = []
    resolved_exclude = [e.resolve() for e in exclude]
    for rel in names:
        path = root / rel
        try:
            if any(path.resolve().is_relative_to(e) for e in resolved_exclude):
                continue
            st = path.stat()
        except (OSError, ValueError):
            continue  # deleted but still tracked, or a broken link
        if not os.path.isfile(path):
            continue
        if st.st_size > MAX_FILE_BYTES:
            large.append(rel)
            continue
        entries.append((rel, path, st.st_size, st.st_mtime_ns))
    return mode, entries, large, too_many


def snapshot(root: Any, media_root: Path, exclude: List[Path]) -> Tuple[Dict[str, Any], Optional[tuple]]:
    """(record, (media path, size, sha256) of the zip or None when refused)."""
    root = Path(os.fspath(root)).expanduser().absolute()
    record: Dict[str, Any] = {"root": str(root)}
    if not root.is_dir():
        record["refused"] = f"{root} is not a directory"
        return record, None
    mode, entries, large, too_many = collect(root, exclude)
    total = sum(e[2] for e in entries)
    record.update(mode=mode, files=len(entries), bytes=total)
    if large:
        record["left_out_large"] = large[:50]
    if too_many or len(entries) > MAX_FILES:
        record["refused"] = (
            f"more than {MAX_FILES} files below {root}; snapshot a smaller "
            "folder (snapshot_code='path/to/src') or add a .gitignore"
        )
        return record, None
    if total > MAX_BYTES:
        record["refused"] = (
            f"{total} bytes of source below {root} is more than {MAX_BYTES}; "
            "snapshot a smaller folder or add a .gitignore"
        )
        return record, None
    rel, size, digest, skipped = zip_into_store(media_root, entries)
    record.update(artifact="code.zip", zip_bytes=size, sha256=digest)
    if skipped:
        record["unreadable_files"] = skipped
    return record, (rel, size, digest)
