"""Photos: filled, shaded, coloured and textured renders of placed geometry on varied backgrounds.

Everything is drawn at ``SUPERSAMPLE`` x the output size and box-downsampled (anti-aliasing). Images are
float ``(H, W, 3)`` arrays in ``[0, 1]`` until :func:`to_image`.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .geometry import Part, affine, bounds, place

SUPERSAMPLE = 2
BACKGROUNDS = ("plain", "gradient", "noise", "clutter", "floor")
BACKGROUND_WEIGHTS = (0.25, 0.2, 0.15, 0.2, 0.2)
PHOTO_ROTATION = 9.0  # degrees, uniform +-
PHOTO_SCALE = (0.6, 0.88)  # longest side of the object / image side


def smooth_noise(shape: tuple[int, int], cells: int, rng: np.random.Generator) -> np.ndarray:
    """Low-frequency noise in about ``[-1, 1]``: a ``cells x cells`` random grid, bicubic-upsampled."""
    grid = rng.uniform(0, 255, (cells, cells)).astype(np.uint8)
    up = Image.fromarray(grid, "L").resize((shape[1], shape[0]), Image.BICUBIC)
    return np.asarray(up, dtype=np.float32) / 127.5 - 1.0


def background(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``(size, size, 3)`` background: plain, gradient, noise, clutter (blurred shapes) or floor (wall/table)."""
    light = rng.uniform(0.78, 0.98, 3) * rng.uniform(0.92, 1.0)
    if kind == "plain":
        img = np.broadcast_to(light, (size, size, 3)).copy()
    elif kind in ("gradient", "clutter"):
        other = rng.uniform(0.6, 0.95, 3)
        angle = rng.uniform(0, 2 * math.pi)
        yy, xx = np.mgrid[0:size, 0:size] / size
        t = np.clip(0.5 + (xx - 0.5) * math.cos(angle) + (yy - 0.5) * math.sin(angle), 0, 1)[..., None]
        img = light * (1 - t) + other * t
    elif kind == "noise":
        n = smooth_noise((size, size), int(rng.integers(4, 10)), rng)[..., None]
        tint = rng.uniform(0.9, 1.05, 3)
        img = np.clip(light * tint * (1 + 0.12 * n), 0, 1)
    elif kind == "floor":
        wall = rng.uniform(0.75, 0.97, 3)
        floor = rng.uniform(0.45, 0.8, 3) * np.array([1.0, 0.92, 0.82])
        horizon = int(size * rng.uniform(0.55, 0.8))
        img = np.empty((size, size, 3))
        img[:horizon] = wall
        ramp = np.linspace(1.0, 0.85, size - horizon)[:, None, None]
        img[horizon:] = floor * ramp
    else:
        raise ValueError(f"unknown background {kind!r}; known: {BACKGROUNDS}")
    img = img.astype(np.float32)
    if kind == "clutter":
        layer = Image.fromarray((img * 255).astype(np.uint8), "RGB")
        draw = ImageDraw.Draw(layer)
        for _ in range(int(rng.integers(4, 9))):
            c = tuple(int(v) for v in rng.uniform(60, 230, 3))
            x, y = rng.uniform(-0.1, 1.0, 2) * size
            w, h = rng.uniform(0.1, 0.45, 2) * size
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x, y, x + w, y + h], fill=c)
        layer = layer.filter(ImageFilter.GaussianBlur(size / rng.uniform(25, 60)))
        img = np.asarray(layer, dtype=np.float32) / 255.0
    return img


def _texture(name: str, xx: np.ndarray, yy: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative brightness field for a texture over pixel grids ``xx, yy`` (object size ``scale`` px)."""
    u, v = xx / scale, yy / scale
    if name == "canvas" or name == "fabric":
        return 1.0 + 0.07 * np.sin(u * 140) * np.sin(v * 140)
    if name == "leather":
        return 1.0 + 0.05 * np.sin(u * 60 + 2 * np.sin(v * 23)) * np.cos(v * 47)
    if name == "wood":
        a = rng.uniform(0, math.pi)
        w = u * math.cos(a) + v * math.sin(a)
        return 1.0 + 0.13 * np.sin(w * 90 + 2.5 * np.sin(w * 7 + u * 11))
    if name == "metal" or name == "glaze":
        a = rng.uniform(0.2, 1.2)
        w = u * math.cos(a) + v * math.sin(a)
        c = rng.uniform(w.min(), w.max()) if w.size else 0.0
        return 1.0 + 0.35 * np.exp(-(((w - c) / 0.04) ** 2))
    if name == "glass":
        c = rng.uniform(u.min(), u.max()) if u.size else 0.0
        return 1.08 + 0.3 * np.exp(-(((u - c) / 0.025) ** 2))
    if name == "brick":
        row = np.floor(v * 28)
        shift = (row % 2) * 0.5
        mortar = (np.abs(np.sin(v * 28 * math.pi)) < 0.18) | (np.abs(np.sin((u * 14 + shift) * math.pi)) < 0.12)
        return np.where(mortar, 1.35, 1.0)
    if name == "tiles":
        return 1.0 - 0.18 * ((v * 22) % 1.0 < 0.22)
    if name == "leaves":
        return 1.0 + 0.18 * np.sin(u * 90 + 3 * np.sin(v * 41)) * np.sin(v * 83 + 2 * np.cos(u * 37))
    return np.ones_like(u)


def draw_parts(img: np.ndarray, parts: list[Part], colours: dict[str, tuple[int, int, int]],
               rng: np.random.Generator, light: float | None = None, object_px: float | None = None) -> None:
    """Paint placed ``parts`` (canvas pixels) onto ``img`` in place, back to front, shaded and textured."""
    h, w = img.shape[:2]
    if light is None:
        light = rng.uniform(0, 2 * math.pi)
    ldir = np.array([math.cos(light), math.sin(light)])
    if object_px is None:
        lo, hi = bounds(parts)
        object_px = float(max(hi - lo))
    outline_w = max(1, int(round(w / 160)))
    for part in parts:
        if not part.photo or part.fill is None or len(part.points) < 2:
            continue
        rgb = np.asarray(colours.get(part.fill, (128, 128, 128)), dtype=np.float32) / 255.0
        pts = [(float(x), float(y)) for x, y in part.points]
        if not part.closed:
            lw = max(1, int(round(part.width)))
            layer = Image.new("L", (w, h), 0)
            ImageDraw.Draw(layer).line(pts, fill=255, width=lw, joint="curve")
            m = np.asarray(layer, dtype=np.float32)[..., None] / 255.0
            img *= 1 - m
            img += m * rgb
            continue
        x0, y0 = np.floor(part.points.min(axis=0)).astype(int) - 2
        x1, y1 = np.ceil(part.points.max(axis=0)).astype(int) + 3
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 <= x0 or y1 <= y0:
            continue
        layer = Image.new("L", (x1 - x0, y1 - y0), 0)
        local = [(x - x0, y - y0) for x, y in pts]
        ImageDraw.Draw(layer).polygon(local, fill=255)
        m = np.asarray(layer, dtype=np.float32)[..., None] / 255.0
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        centre = part.points.mean(axis=0)
        radius = max(float(np.ptp(part.points, axis=0).max()) / 2, 1.0)
        shade = 1.0 + 0.22 * ((xx - centre[0]) * ldir[0] + (yy - centre[1]) * ldir[1]) / radius
        tex = _texture(part.texture, xx, yy, object_px, rng)
        col = np.clip(rgb * (shade * tex)[..., None], 0, 1)
        if part.texture == "glass":
            m = m * 0.85
        region = img[y0:y1, x0:x1]
        region *= 1 - m
        region += m * col
        edge = tuple(int(c * 255 * 0.55) for c in rgb)
        ImageDraw.Draw(edge_layer := Image.new("L", (x1 - x0, y1 - y0), 0)).line(
            local + local[:1], fill=255, width=outline_w)
        e = np.asarray(edge_layer, dtype=np.float32)[..., None] / 255.0 * 0.8
        region *= 1 - e
        region += e * np.asarray(edge, dtype=np.float32) / 255.0


def drop_shadow(img: np.ndarray, parts: list[Part], rng: np.random.Generator, strength: float = 0.35) -> None:
    """Darken a soft ellipse under the placed object (in place)."""
    h, w = img.shape[:2]
    lo, hi = bounds(parts)
    cx, width = (lo[0] + hi[0]) / 2 + rng.uniform(-0.1, 0.1) * (hi[0] - lo[0]), (hi[0] - lo[0]) * 0.55
    cy, height = hi[1], max((hi[1] - lo[1]) * 0.05, 2.0)
    layer = Image.new("L", (w, h), 0)
    ImageDraw.Draw(layer).ellipse([cx - width, cy - height, cx + width, cy + height], fill=255)
    layer = layer.filter(ImageFilter.GaussianBlur(max(w / 50, 1.0)))
    m = np.asarray(layer, dtype=np.float32)[..., None] / 255.0
    img *= 1 - strength * m


def to_image(img: np.ndarray, size: int) -> Image.Image:
    """Float canvas -> RGB PIL image of ``size x size`` (box-downsampled)."""
    pil = Image.fromarray(np.clip(np.rint(img * 255), 0, 255).astype(np.uint8), "RGB")
    return pil.reduce(pil.width // size) if pil.width != size and pil.width % size == 0 else pil.resize(
        (size, size), Image.LANCZOS)


def photo_pose(rng: np.random.Generator) -> dict:
    """Random pose of an object in a photo: flip, rotation (degrees), scale (of the image side), offset."""
    return {"flip": bool(rng.random() < 0.5), "rotation": float(rng.uniform(-PHOTO_ROTATION, PHOTO_ROTATION)),
            "scale": float(rng.uniform(*PHOTO_SCALE)), "offset": rng.uniform(-0.85, 0.85, 2).tolist()}


def place_in_frame(parts: list[Part], pose: dict, size: float, margin: float = 0.03) -> list[Part]:
    """Unit-coordinate parts -> pixels of a ``size`` square: rotate, flip and scale, then shift by
    ``pose["offset"]`` (in [-1, 1], a fraction of the free room) keeping the object inside the frame."""
    m = affine(pose["rotation"], pose["scale"] * size, flip=pose["flip"])
    placed = place(parts, m, (0.0, 0.0))
    lo, hi = bounds(placed)
    room = np.maximum(size * (1 - 2 * margin) - (hi - lo), 0.0)
    target_lo = size * margin + room * (np.asarray(pose["offset"]) + 1) / 2
    return place(placed, np.eye(2), target_lo - lo)


def render_photo(parts: list[Part], colours: dict, size: int, rng: np.random.Generator,
                 pose: dict | None = None, background_kind: str | None = None) -> Image.Image:
    """One object photo: background, shadow, shaded parts. ``parts`` are in unit coordinates."""
    big = size * SUPERSAMPLE
    pose = pose or photo_pose(rng)
    kind = background_kind or str(rng.choice(BACKGROUNDS, p=BACKGROUND_WEIGHTS))
    img = background(kind, big, rng)
    placed = place_in_frame(parts, pose, big)
    drop_shadow(img, placed, rng)
    draw_parts(img, placed, colours, rng)
    return to_image(img, size)
