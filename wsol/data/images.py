"""Reading images and masks from disk, with errors that name the file and the annotation line."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from wsol.errors import UserError

__all__ = ["open_rgb", "read_gray", "image_size"]

_READ_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def _where(path: Path, source: str) -> str:
    return f"{path}" + (f" (referred to by {source})" if source else "")


def open_rgb(path: str | Path, source: str = "") -> Image.Image:
    """Open ``path`` fully decoded as an 8-bit RGB PIL image.

    Any mode works: greyscale, palette, RGBA/LA (alpha dropped, as PIL's ``convert("RGB")`` does),
    CMYK, 1-bit, and 16-bit greyscale PNG (scaled to 8 bits by ``/257``, not clipped). EXIF
    orientation is not applied: like wsolevaluation (``Image.open(path).convert("RGB")``, no
    ``ImageOps.exif_transpose``), the pixels are read as stored, which is the frame the annotations
    (sizes, boxes) refer to. A missing, corrupt or truncated file, or one above PIL's
    decompression-bomb limit, raises :class:`UserError` naming the file and ``source``
    (annotation file:line).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"image {_where(path, source)} does not exist")
    try:
        with Image.open(path) as im:
            im.load()
            return _to_rgb(im)
    except Image.DecompressionBombError as exc:
        raise UserError(_bomb_message(path, source, exc)) from None
    except _READ_ERRORS as exc:
        raise UserError(f"cannot read image {_where(path, source)}: {exc}") from None


def _bomb_message(path: Path, source: str, exc: Exception) -> str:
    """PIL refused to decode an image above its decompression-bomb limit (2 x
    ``Image.MAX_IMAGE_PIXELS``; checked from the header, before any pixel is decoded)."""
    found = re.search(r"\((\d+) pixels\) exceeds limit of (\d+)", str(exc))
    size = f"has {int(found[1]):,} pixels, more than" if found else "is larger than"
    limit = f"{int(found[2]):,} pixels" if found else "its limit"
    return (
        f"image {_where(path, source)} {size} PIL's decompression-bomb limit of {limit} "
        "(2 x PIL.Image.MAX_IMAGE_PIXELS); it is refused unread"
    )


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode == "RGB":
        return im.copy()
    if im.mode.startswith("I;16") or im.mode == "I":
        arr = np.asarray(im).astype(np.float64)
        if im.mode == "I" and arr.max(initial=0) <= 255 and arr.min(initial=0) >= 0:
            grey = arr.astype(np.uint8)
        else:
            grey = np.clip(np.rint(arr / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if im.mode == "F":
        grey = np.clip(np.rint(np.asarray(im, dtype=np.float64)), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if im.mode == "P" and "transparency" in im.info:
        return im.convert("RGBA").convert("RGB")
    return im.convert("RGB")


def image_size(path: str | Path, source: str = "") -> tuple[int, int]:
    """``(width, height)`` of an image after fully decoding it (so truncated files are caught)."""
    return open_rgb(path, source).size


def read_gray(path: str | Path, source: str = "") -> np.ndarray:
    """A mask file as a uint8 ``[H, W]`` array (cv2 ``IMREAD_GRAYSCALE``, as wsolevaluation reads
    masks; 16-bit files are reduced to 8 bits). Missing or unreadable files raise :class:`UserError`."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise UserError(f"mask {_where(path, source)} does not exist")
    arr = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if arr is None:
        raise UserError(f"cannot read mask {_where(path, source)}")
    return arr
