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
from typing import Any, Tuple

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
        raise ValueError(f"an image array must be HW, HWC or CHW with 1, 3 or 4 channels, "
                         f"got shape {arr.shape}")
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


def store_bytes(root: Path, data: bytes, suffix: str) -> str:
    """Write ``data`` content-addressed under ``root``; return the path relative to root."""
    digest = hashlib.sha256(data).hexdigest()
    rel = _relative(digest, suffix)
    target = media_path(root, rel)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        except BaseException:
            _unlink(tmp)
            raise
    return rel


def store_file(root: Path, source: Path) -> Tuple[str, int, str]:
    """Copy ``source`` into the store content-addressed; (relative path, size, sha256)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".tmp-")
    try:
        with open(source, "rb") as src, os.fdopen(fd, "wb") as dst:
            while True:
                chunk = src.read(_CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
                dst.write(chunk)
                size += len(chunk)
        hexdigest = digest.hexdigest()
        suffix = "".join(Path(source).suffixes[-2:])[:16]
        suffix = suffix if all(c.isalnum() or c == "." for c in suffix) else ""
        rel = _relative(hexdigest, suffix)
        target = media_path(root, rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            _unlink(tmp)
        else:
            os.replace(tmp, target)
    except BaseException:
        _unlink(tmp)
        raise
    return rel, size, hexdigest


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


__all__ = ["encode_image", "store_bytes", "store_file"]
