"""Decode any common image the same way for every dataset.

Photos become RGB (alpha composited on white, CMYK and 16-bit converted, EXIF rotation applied);
sketches become greyscale black strokes on white (inverted when they come as white on black).
Errors name the file; PIL's decompression-bomb guard stays on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


class ImageDecodeError(ValueError):
    """An image file could not be decoded; the message names the file and the reason."""


def _flatten_to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = arr.max() if arr.size and arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / max(top, 1.0) * 255.0, 0, 255).astype(np.uint8), "L")
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def load_image(path: str | Path, kind: str = "photo") -> Image.Image:
    """Open ``path`` as a normalised PIL image.

    Args:
        path: image file.
        kind: ``"photo"`` -> RGB; ``"sketch"`` -> mode ``L``, dark strokes on a light background.
    """
    path = Path(path)
    try:
        with Image.open(path) as raw:
            raw.load()
            img = ImageOps.exif_transpose(raw) or raw
            img = _flatten_to_rgb(img)
    except FileNotFoundError:
        raise ImageDecodeError(f"{path}: file not found") from None
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(f"{path}: refused as a decompression bomb ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(f"{path}: not a decodable image ({exc})") from None
    if kind == "sketch":
        grey = img.convert("L")
        arr = np.asarray(grey)
        # Sketches are dark ink on light paper; a mostly dark image is drawn the other way round.
        if arr.size and float(np.median(arr)) < 128:
            grey = ImageOps.invert(grey)
        return grey
    if kind != "photo":
        raise ValueError(f"kind must be 'photo' or 'sketch', got {kind!r}")
    return img


def ink_coverage(sketch: Image.Image, threshold: int = 128, size: int | None = None) -> float:
    """Fraction of pixels darker than ``threshold`` in a greyscale sketch.

    With ``size``, ink is found at the native resolution and then max-pooled onto a ``size x size`` grid
    (a cell is ink if any of its pixels is), so thin strokes of large sketches are not washed out by
    resampling and sketches of different resolutions compare.
    """
    arr = np.asarray(sketch.convert("L"))
    if not arr.size:
        return 0.0
    ink = arr < threshold
    if size is not None:
        pooled = Image.fromarray(ink.astype(np.uint8) * 255).resize((size, size), Image.Resampling.BOX)
        ink = np.asarray(pooled) > 0
    return float(ink.mean())
