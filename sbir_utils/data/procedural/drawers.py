"""Sketches drawn from geometry (never from photo pixels) by "drawers" with their own style.

A drawer sees the object's parts, keeps the visible contours, drops small or unimportant details,
splits long contours into several strokes and joins nearby ones, and draws each stroke with wobble,
over-shoot, per-stroke and global deformation, RDP simplification and even resampling, like the
stroke-3 data of QMUL-Shoe/Chair-V2 (absolute ``x, y`` on a 256 canvas + pen-lift flag).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageDraw

from ..strokes import CANVAS, join_strokes, rasterise, rdp
from .geometry import Part, affine, bounds, length, place, resample
from .shapes import rng_for


@dataclass(frozen=True)
class DrawerStyle:
    """How one drawer sketches; lengths are pixels of the 256 canvas."""

    drawer_id: int
    line_width: float  # pen width
    width_jitter: float  # relative per-stroke width variation
    wobble: float  # amplitude of the slow sideways wobble along a stroke
    wobble_period: float  # arc length of one wobble cycle
    tremor: float  # small noise on every final point
    overshoot: float  # mean extension of stroke ends past corners
    omit_below: float  # parts less important than this ...
    omit_prob: float  # ... are dropped with this probability
    min_part: float  # parts whose bounding box is smaller than this are dropped
    rdp_eps: float  # Ramer-Douglas-Peucker tolerance
    step: float  # spacing of the final points
    max_stroke: float  # longer contours are split into several strokes
    merge_dist: float  # consecutive strokes this close are drawn without lifting the pen
    stroke_shift: float  # std of a per-stroke translation
    stroke_rot: float  # std of a per-stroke rotation (degrees)
    deform: float  # amplitude of a smooth global warp
    shear: float  # habitual shear of the whole drawing
    aspect: float  # habitual horizontal stretch (1 = none)
    retrace: float  # probability of drawing a long stroke twice
    fill: float  # longest side of the drawn object / canvas
    pose_rot: float  # std of the per-sketch rotation (degrees)
    sticks: float  # probability of drawing a thin part (leg, slat, stem) as one centre line

    def to_dict(self) -> dict:
        return asdict(self)


# Each style field's uniform range and the decimals it is rounded to, in the order they are drawn (the
# order is part of the seeded output). ``omit_below`` gets SCENE_OMIT_BELOW added for scene drawers and
# ``aspect`` is drawn as a log: exp(u).
STYLE_RANGES: tuple[tuple[str, float, float, int], ...] = (
    ("line_width", 1.6, 3.4, 2),
    ("width_jitter", 0.0, 0.25, 3),
    ("wobble", 0.4, 2.6, 2),
    ("wobble_period", 40.0, 120.0, 1),
    ("tremor", 0.0, 0.9, 2),
    ("overshoot", 0.0, 5.0, 2),
    ("omit_below", 0.4, 0.65, 3),
    ("omit_prob", 0.3, 0.8, 3),
    ("min_part", 4.0, 12.0, 1),
    ("rdp_eps", 0.6, 2.2, 2),
    ("step", 10.5, 14.5, 1),
    ("max_stroke", 160.0, 420.0, 1),
    ("merge_dist", 6.0, 22.0, 1),
    ("stroke_shift", 0.3, 2.2, 2),
    ("stroke_rot", 0.3, 2.5, 2),
    ("deform", 1.0, 7.0, 2),
    ("shear", -0.08, 0.08, 3),
    ("aspect", -0.08, 0.08, 3),
    ("retrace", 0.0, 0.25, 3),
    ("fill", 0.66, 0.8, 3),
    ("pose_rot", 1.0, 4.0, 2),
    ("sticks", 0.2, 0.95, 3),
)
SCENE_OMIT_BELOW = 0.15  # scene drawers leave out more detail


def drawer_style(seed: int, drawer_id: int, kind: str = "object") -> DrawerStyle:
    """The style of drawer ``drawer_id`` (deterministic in ``seed``); ``kind`` "scene" draws sparser."""
    r = rng_for(seed, "drawer", kind, drawer_id)
    values = {}
    for name, low, high, decimals in STYLE_RANGES:
        v = r.uniform(low, high)
        if name == "omit_below":
            v = v + (SCENE_OMIT_BELOW if kind == "scene" else 0.0)
        elif name == "aspect":
            v = float(np.exp(v))
        values[name] = round(v, decimals)
    return DrawerStyle(drawer_id=int(drawer_id), **values)


# ---------------------------------------------------------------------------------------------------
# visible contours

MIN_PEN_PX = 1.0  # narrowest pen in raster pixels
THIN_PX = 7.0  # closed parts thinner than this (canvas px) may be drawn as a single centre line


def _id_buffer(parts: list[Part], size: int) -> np.ndarray:
    """``(size, size)`` int array: 1 + index of the topmost filled part at each pixel (0 = none)."""
    buf = Image.new("I", (size, size), 0)
    draw = ImageDraw.Draw(buf)
    for i, p in enumerate(parts):
        if p.closed and p.fill is not None and len(p.points) >= 3:
            draw.polygon([(float(x), float(y)) for x, y in p.points], fill=i + 1)
    return np.asarray(buf, dtype=np.int64)


def thickness(points: np.ndarray) -> float:
    """About the width of a thin closed shape: 2 * area / perimeter."""
    x, y = points[:, 0], points[:, 1]
    area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    perimeter = length(np.vstack([points, points[:1]]))
    return 2 * area / perimeter if perimeter > 0 else 0.0


def centre_line(points: np.ndarray, n: int = 24) -> np.ndarray:
    """The medial line of a thin closed shape: the mean of its two sides between its farthest points."""
    dense = resample(points, max(length(points) / 200, 0.25), closed=True)[:-1]
    d = np.linalg.norm(dense[:, None] - dense[None], axis=2) if len(dense) <= 400 else None
    if d is None:
        return dense[[0, len(dense) // 2]]
    a, b = sorted(np.unravel_index(int(np.argmax(d)), d.shape))
    side1 = dense[a:b + 1]
    side2 = np.vstack([dense[b:], dense[:a + 1]])[::-1]
    s1 = resample(side1, max(length(side1) / (n - 1), 1e-6))
    s2 = resample(side2, max(length(side2) / (n - 1), 1e-6))
    m = min(len(s1), len(s2))
    return (s1[:m] + s2[:m]) / 2


def visible_runs(parts: list[Part], size: int = CANVAS, step: float = 1.5,
                 outlines: dict[int, tuple[np.ndarray, bool]] | None = None) -> list[tuple[int, list[np.ndarray]]]:
    """For each sketchable part: its visible pieces ``(n, 2)`` (hidden where a later filled part covers it).

    ``outlines`` replaces the drawn line of some parts (index -> (points, closed)), e.g. a leg's centre
    line; occlusion still uses the parts' own shapes.
    """
    outlines = outlines or {}
    buf = _id_buffer(parts, size)
    pad = np.pad(buf, 1, mode="edge")
    # the smallest id in each pixel's 3x3 neighbourhood: a contour point is visible if anything at or
    # below its own part shows next to it
    nb = np.min(np.stack([pad[dy:dy + size, dx:dx + size] for dy in range(3) for dx in range(3)]), axis=0)
    out = []
    for i, p in enumerate(parts):
        if not p.sketch or len(p.points) < 2:
            continue
        pts, closed = outlines.get(i, (p.points, p.closed))
        dense = resample(pts, step, closed=closed)
        ij = np.clip(np.rint(dense).astype(int), 0, size - 1)
        vis = nb[ij[:, 1], ij[:, 0]] <= i + 1
        inside = (dense >= 0).all(axis=1) & (dense < size).all(axis=1)
        vis |= ~inside
        runs = _runs(dense, vis, closed=closed)
        runs = [r for r in runs if length(r) >= 6.0]
        if runs:
            out.append((i, runs))
    return out


def _runs(points: np.ndarray, mask: np.ndarray, closed: bool) -> list[np.ndarray]:
    if mask.all():
        return [points]
    idx = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(int), [0]])))
    runs = [points[a:b] for a, b in zip(idx[::2], idx[1::2])]
    if closed and mask[0] and mask[-1] and len(runs) > 1:
        runs = [np.vstack([runs[-1], runs[0]])] + runs[1:-1]
    return runs


# ---------------------------------------------------------------------------------------------------
# stroke-level effects


def _split(poly: np.ndarray, max_len: float, rng: np.random.Generator) -> list[np.ndarray]:
    total = length(poly)
    n = int(math.ceil(total / max_len)) if total > max_len else 1
    if n == 1:
        return [poly]
    seg = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(poly, axis=0).T))])
    cuts = np.sort(np.clip(np.linspace(0, total, n + 1)[1:-1] + rng.normal(0, total / n * 0.15, n - 1), 1, total - 1))
    pieces, start = [], 0.0
    for c in list(cuts) + [total]:
        a = max(0.0, start - rng.uniform(-2.0, 3.0))
        sel = (seg >= a) & (seg <= c)
        if sel.sum() >= 2:
            pieces.append(poly[sel])
        start = c
    return pieces or [poly]


def _wobble(poly: np.ndarray, amp: float, period: float, rng: np.random.Generator) -> np.ndarray:
    if len(poly) < 3 or amp <= 0:
        return poly
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(poly, axis=0).T))])
    d = np.gradient(poly, axis=0)
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
    normal = np.stack([-d[:, 1], d[:, 0]], axis=1)
    off = np.zeros(len(poly))
    for k in (1.0, 2.3):
        off += amp / k * np.sin(2 * math.pi * s / (period / k) + rng.uniform(0, 2 * math.pi))
    return poly + normal * off[:, None]


def _overshoot(poly: np.ndarray, mean: float, rng: np.random.Generator) -> np.ndarray:
    if len(poly) < 2 or mean <= 0:
        return poly

    def tip(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d = a - b
        n = np.linalg.norm(d)
        return a + d / n * abs(rng.normal(mean, mean / 2)) if n > 1e-6 else a

    k = min(3, len(poly) - 1)
    return np.vstack([tip(poly[0], poly[k]), poly, tip(poly[-1], poly[-1 - k])])


def _stroke_transform(poly: np.ndarray, style: DrawerStyle, rng: np.random.Generator) -> np.ndarray:
    c = poly.mean(axis=0)
    a = math.radians(rng.normal(0.0, style.stroke_rot))
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return (poly - c) @ rot.T + c + rng.normal(0.0, style.stroke_shift, 2)


def _warp(points: np.ndarray, amp: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth global deformation: two low-frequency sine displacement fields."""
    if amp <= 0:
        return points
    out = points.copy()
    for axis in (0, 1):
        f = rng.uniform(0.5, 1.5, 2) * 2 * math.pi / CANVAS
        ph = rng.uniform(0, 2 * math.pi, 2)
        out[:, axis] += amp * np.sin(points[:, 0] * f[0] + ph[0]) * np.cos(points[:, 1] * f[1] + ph[1])
    return out


def _merge(strokes: list[np.ndarray], dist: float) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for s in strokes:
        if out:
            prev = out[-1]
            if np.linalg.norm(prev[-1] - s[0]) < dist:
                out[-1] = np.vstack([prev, s])
                continue
            if np.linalg.norm(prev[-1] - s[-1]) < dist:
                out[-1] = np.vstack([prev, s[::-1]])
                continue
        out.append(s)
    return out


# ---------------------------------------------------------------------------------------------------
# whole sketches


def sketch_pose(style: DrawerStyle, rng: np.random.Generator, flip: bool) -> np.ndarray:
    """2x2 matrix for unit-coordinate parts -> canvas pixels (before centring)."""
    rot = float(np.clip(rng.normal(0.0, style.pose_rot), -7, 7))
    s = style.fill * CANVAS * float(np.clip(rng.normal(1.0, 0.04), 0.9, 1.1))
    sx = s * style.aspect * float(np.exp(rng.normal(0.0, 0.03)))
    sy = s / style.aspect
    return affine(rot, (sx, sy), shear=style.shear + float(rng.normal(0.0, 0.03)), flip=flip)


def centre_on_canvas(parts: list[Part], rng: np.random.Generator, jitter: float = 4.0) -> list[Part]:
    lo, hi = bounds(parts)
    target = CANVAS / 2 + rng.normal(0.0, jitter, 2)
    return place(parts, np.eye(2), target - (lo + hi) / 2)


def draw_strokes(parts: list[Part], style: DrawerStyle, rng: np.random.Generator,
                 keep: float = 0.9) -> tuple[list[np.ndarray], list[float]]:
    """Sketch placed ``parts`` (canvas pixels). Parts with ``detail >= keep`` are never omitted.

    Returns the strokes, each ``(n, 2)``, in drawing order, and their pen widths.
    """
    outlines = {}
    for i, p in enumerate(parts):
        if p.closed and p.sketch and len(p.points) >= 3 and thickness(p.points) < THIN_PX and rng.random() < style.sticks:
            outlines[i] = (centre_line(p.points), False)
    runs = visible_runs(parts, outlines=outlines)
    groups: list[tuple[float, list[np.ndarray]]] = []
    for i, pieces in runs:
        part = parts[i]
        lo, hi = part.points.min(axis=0), part.points.max(axis=0)
        small = float(np.hypot(*(hi - lo))) < style.min_part
        if part.detail < keep and (small or (part.detail < style.omit_below and rng.random() < style.omit_prob)):
            continue
        groups.append((part.detail + rng.normal(0.0, 0.12), pieces))
    groups.sort(key=lambda g: -g[0])
    strokes: list[np.ndarray] = []
    for _, pieces in groups:
        part_strokes: list[np.ndarray] = []
        for piece in pieces:
            part_strokes.extend(_split(piece, style.max_stroke, rng))
        strokes.extend(_merge(part_strokes, style.merge_dist))
    strokes = _merge(strokes, style.merge_dist)
    out, widths = [], []
    for s in strokes:
        s = _stroke_transform(s, style, rng)
        s = _wobble(s, style.wobble, style.wobble_period, rng)
        s = _overshoot(s, style.overshoot, rng)
        copies = [s]
        if length(s) > 60 and rng.random() < style.retrace:
            copies.append(_wobble(s + rng.normal(0.0, 1.5, 2), style.wobble, style.wobble_period, rng))
        for c in copies:
            c = resample(rdp(c, style.rdp_eps), style.step)
            c = c + rng.normal(0.0, style.tremor, c.shape)
            out.append(np.clip(c, 0.0, CANVAS))
            widths.append(float(np.clip(style.line_width * (1 + rng.normal(0.0, style.width_jitter)), 1.0, 5.0)))
    if out:
        allpts = np.vstack(out)
        warped = _warp(allpts, style.deform, rng)
        splits = np.cumsum([len(s) for s in out])[:-1]
        out = [np.clip(s, 0.0, CANVAS) for s in np.split(warped, splits)]
    return out, widths


def sketch_object(parts_unit: list[Part], style: DrawerStyle, rng: np.random.Generator,
                  flip: bool = False) -> tuple[np.ndarray, list[float]]:
    """One object sketch: pose the unit geometry on the canvas and draw it. Returns stroke-3 ``(N, 3)``
    float32 (absolute x, y on the 256 canvas, pen-lift flag) and per-stroke widths."""
    placed = centre_on_canvas(place(parts_unit, sketch_pose(style, rng, flip), (0.0, 0.0)), rng)
    strokes, widths = draw_strokes(placed, style, rng)
    return join_strokes(strokes).astype(np.float32), widths


def raster(points: np.ndarray, widths: list[float], size: int) -> Image.Image:
    """Stroke-3 -> anti-aliased greyscale ``L`` image (drawn at 2x, box-downsampled); pens are at least
    ``MIN_PEN_PX`` output pixels wide so small rasters keep solid lines."""
    widths_out = [max(MIN_PEN_PX, w * size / CANVAS) for w in widths]
    img = rasterise(points, size=2 * size, line_width=2.0 * MIN_PEN_PX, widths=[2 * w for w in widths_out])
    return img.reduce(2)
