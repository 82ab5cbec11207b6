"""Images and artifacts as content-addressed files under the store's media root.

``media/<first two hex digits>/<sha256><suffix>``: the same image or checkpoint logged twice is
kept once, and no user-given name ever becomes part of a path, so nothing can escape the store.
Files are written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Tuple

from .store import media_path

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
_CHUNK = 1 << 20


def _sniff(data: bytes) -> str:
    if data.startswith(PNG_MAGIC):
        return ".png"
    if data.startswith(JPEG_MAGIC):
        return ".jpg"
    return ""


def _to_uint8(array: Any) -> Any:
    import numpy as np

    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        arr = np.transpose(arr, (1, 2, 0))  # CHW -> HWC
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
        raise ValueError(
            f"an image array must be HW, HWC or CHW with 1, 3 or 4 channels, got shape {arr.shape}"
        )
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        arr = np.nan_to_num(arr, nan=0.0, posinf=1.0, neginf=0.0)
        return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.clip(arr, 0, 255).astype(np.uint8)


def encode_image(image: Any) -> Tuple[bytes, str, int, int]:
    """(file bytes, suffix, width, height) for a PIL image, array, tensor, PNG/JPEG bytes or path.

    Arrays: HW, HWC or CHW; uint8 as is, floats taken as [0, 1] (clipped, NaN -> 0), bools as
    black/white. PNG and JPEG bytes and files are kept byte for byte; other image files are
    converted to PNG.
    """
    from PIL import Image as PILImage

    if isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
        suffix = _sniff(data)
        if not suffix:
            raise ValueError("image bytes must be PNG or JPEG")
        with PILImage.open(io.BytesIO(data)) as img:
            return data, suffix, img.width, img.height
    if isinstance(image, (str, os.PathLike)):
        with open(image, "rb") as fh:
            data = fh.read()
        if _sniff(data):
            return encode_image(data)
        with PILImage.open(io.BytesIO(data)) as img:
            image = img.copy()
    if not isinstance(image, PILImage.Image):
        if hasattr(image, "detach"):  # torch tensor
            image = image.detach().cpu().numpy()
        mode_array = _to_uint8(image)
        image = PILImage.fromarray(mode_array)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue(), ".png", image.width, image.height


def _relative(digest: str, suffix: str) -> str:
    return f"{digest[:2]}/{digest}{suffix}"


class AtomicFile:
    """A temporary file that becomes ``target`` whole, or not at all: ``with AtomicFile(directory)
    as f: f.file.write(...); f.publish(target)``. Created in ``directory`` (the same filesystem as
    the target, so the rename is atomic); removed if the block raises or never publishes."""

    def __init__(self, directory: Path):
        fd, self.path = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        self.file: BinaryIO = os.fdopen(fd, "wb")
        self._published = False

    def publish(self, target: Path) -> None:
        """Rename the written file to ``target``; if ``target`` exists (content-addressed: the
        same bytes) the temporary file is dropped instead."""
        self.file.close()
        if target.exists():
            _unlink(self.path)
        else:
            os.replace(self.path, target)
        self._published = True

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.file.close()
        if not self._published:  # the block raised, or never published
            _unlink(self.path)


def store_bytes(root: Path, data: bytes, suffix: str) -> str:
    """Write ``data`` content-addressed under ``root``; return the path relative to root."""
    digest = hashlib.sha256(data).hexdigest()
    rel = _relative(digest, suffix)
    target = media_path(root, rel)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with AtomicFile(target.parent) as out:
            out.file.write(data)
            out.publish(target)
    return rel


def store_file(root: Path, source: Path) -> Tuple[str, int, str]:
    """Copy ``source`` into the store content-addressed; (relative path, size, sha256)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with open(source, "rb") as src, AtomicFile(root) as out:
        while True:
            chunk = src.read(_CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            out.file.write(chunk)
            size += len(chunk)
        hexdigest = digest.hexdigest()
        suffix = "".join(Path(source).suffixes[-2:])[:16]
        suffix = suffix if all(c.isalnum() or c == "." for c in suffix) else ""
        rel = _relative(hexdigest, suffix)
        target = media_path(root, rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        out.publish(target)
    return rel, size, hexdigest


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


__all__ = ["AtomicFile", "encode_image", "store_bytes", "store_file"]
