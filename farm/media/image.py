"""Reference portraits: open, check and normalise to RGB."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from farm.errors import MediaError

MIN_PORTRAIT_SIDE = 64
MAX_PORTRAIT_PIXELS = 64_000_000


def probe_image(path: Path) -> tuple[int, int]:
    """``(width, height)`` of a readable image; MediaError saying why when it isn't one."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_PORTRAIT_PIXELS:
                raise MediaError(f"{path}: image is {width}x{height}, larger than {MAX_PORTRAIT_PIXELS} pixels")
            image.verify()
    except (UnidentifiedImageError, Image.DecompressionBombError, SyntaxError, OSError) as exc:
        raise MediaError(f"{path}: not a readable image ({exc})") from exc
    if min(width, height) < MIN_PORTRAIT_SIDE:
        raise MediaError(f"{path}: image is {width}x{height}, smaller than {MIN_PORTRAIT_SIDE} px on a side")
    return width, height


def load_rgb(path: Path) -> np.ndarray:
    """The image as an (H, W, 3) uint8 array, with its EXIF orientation applied."""
    try:
        with Image.open(path) as image:
            return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise MediaError(f"{path}: not a readable image ({exc})") from exc
