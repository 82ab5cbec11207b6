"""One run as one zip, and back: ``run.export(path)`` / ``store.import_run(zip, new_id=False)``.

The archive (format version :data:`FORMAT_VERSION`)::

    manifest.json         {"format": "epochline-run", "format_version", "run_id", "created",
                           "epochline_version", "members": {name: {"size", "sha256"}}}
    run.json              every stored row of the run but its points (store.admin.dump_run),
                          each series with its member name and point count
    series/<n>.bin        the points of one series, in chunks (see _encode_chunk)
    media/<aa>/<sha256>   images and artifacts, byte for byte, under their content address

Points are binary (int64 steps, float64 wall times and values, one type byte each) because JSON
has no NaN or infinity and would cost several times the bytes and time. Import checks the whole
archive before it writes anything: member names (no ``..``, absolute, drive-letter or backslash
names, no duplicates, nothing unlisted), no symlinks, size limits and compression ratio (zip
bombs), the manifest's format and version, and every member's SHA-256. Then media files are
written (content-addressed, removed again if the database insert fails) and the run is inserted
in one transaction.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import stat
import struct
import tempfile
import time
import zipfile
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

from ..store import media_path
from ..store.admin import RUN_COLUMNS, TABLES, dump_run, insert_run, run_exists

if TYPE_CHECKING:
    from ..store.reader import RunView, Store

FORMAT = "epochline-run"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
RECORD = "run.json"
_MEDIA_NAME = re.compile(r"^[0-9a-f]{2}/([0-9a-f]{64})[A-Za-z0-9.]{0,16}$")
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")
_HEADER = struct.Struct("<II")  # points in the chunk, bytes of its JSON side list
_EXACT_INT = 2**53
_COPY = 1 << 20

Progress = Optional[Callable[[int, int], None]]
"""Called as ``progress(done, total)`` (points on export, bytes on import) now and then."""


class ArchiveError(ValueError):
    """The zip is not an archive this epochline can import safely; nothing was written."""


@dataclass(frozen=True)
class Limits:
    """What :func:`import_run` accepts. Sizes are uncompressed bytes."""

    member_bytes: int = 8 << 30
    total_bytes: int = 32 << 30
    json_bytes: int = 256 << 20
    ratio: float = 200.0
    """Largest uncompressed/compressed ratio of a member over 1 MiB: deflate rarely passes 100:1 on
    real data, a zip bomb reaches 1000:1."""


# -- points: binary chunks ---------------------------------------------------------------------
def _encode_chunk(rows: List[Tuple[int, float, Any]]) -> bytes:
    """``<n, side bytes>`` + n int64 steps + n float64 wall times + n float64 values + n type
    bytes + side JSON. Type 0: the float value (NaN = not a number); 1: an integer exact in a
    float64; 2: the value is in the side JSON list ``[[index, value], ...]`` (text, big ints)."""
    n = len(rows)
    steps = array("q", [r[0] for r in rows])
    walls = array("d", [r[1] for r in rows])
    raw = [r[2] for r in rows]
    side: List[list] = []
    if all(type(v) is float for v in raw):
        values = array("d", raw)
        types = bytes(n)
    else:
        values = array("d", bytes(8 * n))
        kinds = bytearray(n)
        for i, v in enumerate(raw):
            t = type(v)
            if t is float:
                values[i] = v
            elif v is None:
                values[i] = math.nan
            elif (t is int or t is bool) and -_EXACT_INT < v < _EXACT_INT:
                values[i] = float(v)
                kinds[i] = 1
            else:
                kinds[i] = 2
                side.append([i, v])
        types = bytes(kinds)
    extra = json.dumps(side).encode() if side else b""
    parts: List[array] = [steps, walls, values]
    if _BIG_ENDIAN:
        for part in parts:
            part.byteswap()
    return _HEADER.pack(n, len(extra)) + b"".join(p.tobytes() for p in parts) + types + extra


_BIG_ENDIAN = array("h", [1]).tobytes() == b"\x00\x01"


def _decode_chunks(stream: Any) -> Iterator[List[Tuple[int, float, Any]]]:
    while True:
        head = stream.read(_HEADER.size)
        if not head:
            return
        if len(head) != _HEADER.size:
            raise ArchiveError("a series member ends in the middle of a chunk")
        n, extra = _HEADER.unpack(head)
        body = stream.read(25 * n + extra)
        if len(body) != 25 * n + extra:
            raise ArchiveError("a series member ends in the middle of a chunk")
        steps, walls, values = array("q"), array("d"), array("d")
        steps.frombytes(body[: 8 * n])
        walls.frombytes(body[8 * n : 16 * n])
        values.frombytes(body[16 * n : 24 * n])
        if _BIG_ENDIAN:
            for part in (steps, walls, values):
                part.byteswap()
        types = body[24 * n : 25 * n]
        out: List[Any] = list(values)
        if any(types):
            side = dict(json.loads(body[25 * n :])) if extra else {}
            for i, t in enumerate(types):
                if t == 1:
                    out[i] = int(out[i])
                elif t == 2:
                    out[i] = side[i]
        yield [(s, t, None if v != v else v) for s, t, v in zip(steps, walls, out)]


# -- export ------------------------------------------------------------------------------------
class _HashingWriter(io.RawIOBase):
    """Writes through to a zip member while hashing and counting what passes."""

    def __init__(self, target: Any) -> None:
        self.target, self.sha, self.size = target, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.sha.update(data)
        self.size += len(data)
        self.target.write(data)
        return len(data)


def export_run(run: RunView, path: Union[str, os.PathLike], progress: Progress = None) -> Path:
    """Write ``run`` as one zip at ``path`` (parent directories created; written to a temporary
    name and renamed, so a failed export leaves no half archive). Memory is bounded by one chunk
    of points. Media files missing from the store are listed in the manifest as ``missing``."""
    from .. import __version__

    backend = run._store.backend
    record = dump_run(backend, run.id)
    stats = run.metric_stats()
    total = sum(s["count"] for s in stats.values())
    members: Dict[str, Dict[str, Any]] = {}
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".zip")
    os.close(fd)
    done = 0
    try:
        with zipfile.ZipFile(
            tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1, allowZip64=True
        ) as zf:

            def member(name: str) -> Any:
                return zf.open(zipfile.ZipInfo(name, date_time=time.localtime()[:6]), "w", force_zip64=True)

            for index, series in enumerate(record["series"]):
                name = f"series/{index:05d}.bin"
                series["member"] = name
                series["count"] = 0
                with member(name) as raw:
                    out = _HashingWriter(raw)
                    for chunk in run.iter_raw(series["key"]):
                        out.write(_encode_chunk(chunk))
                        series["count"] += len(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, total)
                members[name] = {"size": out.size, "sha256": out.sha.hexdigest()}
            missing = []
            for rel in sorted({row[4] for row in record["media"]}):
                source = media_path(backend.media_root, rel)
                if not source.exists():
                    missing.append(rel)
                    continue
                name = f"media/{rel}"
                info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
                info.compress_type = (
                    zipfile.ZIP_STORED if rel.endswith((".png", ".jpg")) else zipfile.ZIP_DEFLATED
                )
                with zf.open(info, "w", force_zip64=True) as raw, open(source, "rb") as src:
                    out = _HashingWriter(raw)
                    while True:
                        block = src.read(_COPY)
                        if not block:
                            break
                        out.write(block)
                members[name] = {"size": out.size, "sha256": out.sha.hexdigest()}
            data = json.dumps(record, allow_nan=False).encode()
            zf.writestr(RECORD, data)
            members[RECORD] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "run_id": run.id,
                "created": time.time(),
                "epochline_version": __version__,
                "points": total,
                "missing": missing,
                "members": members,
            }
            zf.writestr(MANIFEST, json.dumps(manifest, indent=1))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 is for the half-written file only
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return target


# -- import ------------------------------------------------------------------------------------
def _refuse(message: str) -> ArchiveError:
    return ArchiveError(f"refusing to import: {message} (nothing was written)")


def _check_name(name: str) -> None:
    if not name or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or "\\" in name:
        raise _refuse(f"member name {name!r} is absolute or not a plain relative path")
    if any(part in ("..", ".", "") for part in name.split("/")):
        raise _refuse(f"member name {name!r} would escape the target directory")


def _read_json(zf: zipfile.ZipFile, name: str, limits: Limits) -> Any:
    info = zf.getinfo(name)
    if info.file_size > limits.json_bytes:
        raise _refuse(f"{name} is {info.file_size} bytes, over the limit of {limits.json_bytes}")
    try:
        return json.loads(zf.read(name))
    except ValueError as exc:
        raise _refuse(f"{name} is not valid JSON ({exc})") from None


def check_archive(
    zf: zipfile.ZipFile, limits: Limits, progress: Progress = None
) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(manifest, run record) of a safe, intact archive; else :class:`ArchiveError`."""
    infos = zf.infolist()
    names = [i.filename for i in infos]
    total = _check_members(infos, names, limits)
    manifest = _check_manifest(zf, names, limits)
    _check_hashes(zf, infos, manifest["members"], total, progress)
    if RECORD not in names:
        raise _refuse(f"no {RECORD} in the archive")
    record = _read_json(zf, RECORD, limits)
    _check_record(record, names)
    return manifest, record


def _check_members(infos: List[zipfile.ZipInfo], names: List[str], limits: Limits) -> int:
    """Names, kinds and sizes of the members; their total uncompressed size."""
    if len(set(names)) != len(names):
        raise _refuse("the zip has duplicate member names")
    total = 0
    for info in infos:
        _check_name(info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise _refuse(f"member {info.filename!r} is a symbolic link")
        if info.is_dir():
            raise _refuse(f"member {info.filename!r} is a directory entry")
        if info.file_size > limits.member_bytes:
            raise _refuse(
                f"member {info.filename!r} is {info.file_size} bytes uncompressed, over "
                f"the limit of {limits.member_bytes}"
            )
        if info.file_size > (1 << 20) and info.file_size > limits.ratio * max(info.compress_size, 1):
            raise _refuse(
                f"member {info.filename!r} expands {info.file_size / max(info.compress_size, 1):.0f}"
                f" times (limit {limits.ratio:.0f}): a zip bomb?"
            )
        total += info.file_size
    if total > limits.total_bytes:
        raise _refuse(f"the archive expands to {total} bytes, over the limit of {limits.total_bytes}")
    return total


def _check_manifest(zf: zipfile.ZipFile, names: List[str], limits: Limits) -> Dict[str, Any]:
    if MANIFEST not in names:
        raise _refuse(f"no {MANIFEST}: not an epochline run archive")
    manifest = _read_json(zf, MANIFEST, limits)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _refuse(f"{MANIFEST} does not describe an epochline run archive")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise _refuse(f"unknown archive format version {version!r}")
    if version > FORMAT_VERSION:
        raise _refuse(
            f"the archive has format version {version}, newer than this epochline reads "
            f"({FORMAT_VERSION}); upgrade epochline to import it"
        )
    listed = manifest.get("members")
    if not isinstance(listed, dict) or set(listed) != set(names) - {MANIFEST}:
        extra = sorted(set(names) - {MANIFEST} - set(listed or {}))
        absent = sorted(set(listed or {}) - set(names))
        raise _refuse(
            f"the zip's members and the manifest differ (unlisted: {extra[:5]}, absent: {absent[:5]})"
        )
    return manifest


def _check_hashes(
    zf: zipfile.ZipFile, infos: List[zipfile.ZipInfo], listed: Dict[str, Any], total: int, progress: Progress
) -> None:
    """Every member's bytes against its SHA-256 and size in the manifest (read in 1 MiB blocks)."""
    done = 0
    for info in infos:
        if info.filename == MANIFEST:
            continue
        expected = listed[info.filename]
        sha, size = hashlib.sha256(), 0
        with zf.open(info) as src:
            while True:
                block = src.read(_COPY)
                if not block:
                    break
                size += len(block)
                if size > info.file_size:
                    raise _refuse(f"member {info.filename!r} is longer than its header says")
                sha.update(block)
                done += len(block)
                if progress:
                    progress(done, total)
        if (
            not isinstance(expected, dict)
            or sha.hexdigest() != expected.get("sha256")
            or size != expected.get("size")
        ):
            raise _refuse(f"member {info.filename!r} does not match its SHA-256 in the manifest")


_SCALARS = (str, int, float, bool, type(None))


def _check_record(record: Any, names: List[str]) -> None:
    """The shape of run.json: what the hashes cannot vouch for when the whole archive was crafted."""
    if not isinstance(record, dict) or not isinstance(record.get("run"), dict):
        raise _refuse(f"{RECORD} has no run record")
    run = record["run"]
    if not set(run) <= set(RUN_COLUMNS) or not all(isinstance(v, _SCALARS) for v in run.values()):
        raise _refuse(f"the run record of {RECORD} has unknown fields or non-scalar values")
    for column in ("name", "path", "status"):
        if not isinstance(run.get(column), str):
            raise _refuse(f"the run record of {RECORD} has no {column}")
    run_id = run.get("id")
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise _refuse(f"run id {run_id!r} is not a valid run id")
    for table, columns in TABLES.items():
        rows = record.get(table, [])
        if not isinstance(rows, list) or not all(
            isinstance(r, list) and len(r) == len(columns) and all(isinstance(v, _SCALARS) for v in r)
            for r in rows
        ):
            raise _refuse(f"{RECORD}: the {table} rows do not have the {len(columns)} plain values expected")
    for row in record.get("media", []):
        rel = row[4]
        if not (isinstance(rel, str) and _MEDIA_NAME.match(rel)):
            raise _refuse(f"media path {rel!r} is not a content address")
    series = record.get("series", [])
    if not isinstance(series, list):
        raise _refuse(f"{RECORD}: series is not a list")
    for entry in series:
        if (
            not isinstance(entry, dict)
            or entry.get("member") not in names
            or not isinstance(entry.get("key"), str)
            or entry.get("kind") not in (0, 1)
        ):
            raise _refuse(f"{RECORD}: a series names no member of the archive, or has no key or kind")
    if len({s["key"] for s in series}) != len(series):
        raise _refuse(f"{RECORD}: two series have the same key")


def import_run(
    store: Store,
    archive: Union[str, os.PathLike],
    new_id: bool = False,
    progress: Progress = None,
    limits: Optional[Limits] = None,
) -> RunView:
    """Restore a run exported by :func:`export_run` into ``store`` (any backend).

    Refuses (:class:`ArchiveError`, nothing written) hostile or damaged archives, and
    (:class:`FileExistsError`) a run id that exists already unless ``new_id=True``, which gives the
    imported run a fresh id. Media files keep their bytes and content address. Returns the run.
    """
    from ..lifecycle import new_run_id

    limits = limits or Limits()
    backend = store.backend
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise _refuse(f"{archive} is not a readable zip ({exc})") from None
    with zf:
        infos = zf.infolist()
        checked = sum(i.file_size for i in infos if i.filename != MANIFEST)
        series_names = {i.filename for i in infos if i.filename.startswith("series/")}
        grand = checked + sum(i.file_size for i in infos if i.filename in series_names)
        # progress in bytes read: every member once to check it, the series once more to insert
        check_progress = (lambda d, _t: progress(d, grand)) if progress else None
        manifest, record = check_archive(zf, limits, check_progress)
        run_id = record["run"]["id"]
        if new_id:
            record["run"]["id"] = run_id = new_run_id()
        elif run_exists(backend, run_id):
            raise FileExistsError(
                f"a run {run_id!r} exists already in {store.uri}; import with "
                "new_id=True (--new-id) to add it as a new run"
            )
        created: List[Path] = []
        try:
            for rel in sorted({row[4] for row in record.get("media", [])} - set(manifest.get("missing", []))):
                target = media_path(backend.media_root, rel)
                if target.exists():
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
                with os.fdopen(fd, "wb") as dst, zf.open(f"media/{rel}") as src:
                    while True:
                        block = src.read(_COPY)
                        if not block:
                            break
                        dst.write(block)
                os.replace(tmp, target)
                created.append(target)
            members = {s["key"]: s["member"] for s in record.get("series", [])}
            done = [checked]

            def points(key: str) -> Iterator[List[Tuple[int, float, Any]]]:
                with zf.open(members[key]) as src:
                    for chunk in _decode_chunks(src):
                        yield chunk
                        if progress:
                            progress(min(done[0] + src.tell(), grand), grand)
                done[0] += zf.getinfo(members[key]).file_size

            insert_run(backend, record, points)
            if progress:
                progress(grand, grand)
        except BaseException:
            for path in created:
                try:
                    path.unlink()
                except OSError:
                    pass
            raise
    return store.run(run_id)


__all__ = ["export_run", "import_run", "check_archive", "ArchiveError", "Limits", "FORMAT_VERSION"]
