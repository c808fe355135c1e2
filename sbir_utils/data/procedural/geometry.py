"""Vector geometry of procedural objects: a :class:`Part` is one polyline (closed outline or open line)
with the look it gets in a photo, plus small helpers to build parts and to place them on a canvas.

Builders work in "object units" with y pointing up (ground at y = 0); :func:`normalise` turns a part list
into unit coordinates (y down, centred, longest side 1) and :func:`place` maps those to canvas pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class Part:
    """One drawable piece of an object.

    Attributes:
        points: ``(n, 2)`` polyline vertices.
        closed: an outline (filled in photos) or an open line.
        fill: colour role of a closed part (``"main"``, ``"second"``, ``"dark"``, ...), None = not filled.
        texture: photo texture name (see ``render.TEXTURES``).
        width: line width of an open part in photos, in object units.
        detail: importance in ``[0, 1]``; drawers omit low-detail parts first.
        sketch: drawn in sketches; photo: drawn in photos.
    """

    points: np.ndarray
    closed: bool = True
    fill: str | None = "main"
    texture: str = "plain"
    width: float = 0.0
    detail: float = 1.0
    sketch: bool = True
    photo: bool = True

    def with_points(self, points: np.ndarray) -> Part:
        return replace(self, points=np.asarray(points, dtype=np.float64))


def shape(points, fill: str | None = "main", **kw) -> Part:
    """A closed, filled part."""
    return Part(np.asarray(points, dtype=np.float64), closed=True, fill=fill, **kw)


def line(points, width: float = 0.08, fill: str | None = "dark", **kw) -> Part:
    """An open line; ``fill`` is its colour role in photos."""
    return Part(np.asarray(points, dtype=np.float64), closed=False, fill=fill, width=width, **kw)


def bezier(*ctrl, n: int = 16) -> np.ndarray:
    """Points of a Bezier curve of any degree through control points ``ctrl``; ``(n, 2)``."""
    c = np.asarray(ctrl, dtype=np.float64)
    t = np.linspace(0.0, 1.0, n)[:, None]
    deg = len(c) - 1
    out = np.zeros((n, 2))
    for i, p in enumerate(c):
        out += math.comb(deg, i) * (1 - t) ** (deg - i) * t**i * p
    return out


def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 32, a0: float = 0.0,
            a1: float = 2 * math.pi) -> np.ndarray:
    """Points on an ellipse (or an arc from angle ``a0`` to ``a1``, radians, counter-clockwise)."""
    full = abs(a1 - a0 - 2 * math.pi) < 1e-9
    a = np.linspace(a0, a1, n, endpoint=not full)
    return np.stack([cx + rx * np.cos(a), cy + ry * np.sin(a)], axis=1)


def rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def rounded_rect(x0: float, y0: float, x1: float, y1: float, r: float, n: int = 6) -> np.ndarray:
    r = min(r, abs(x1 - x0) / 2, abs(y1 - y0) / 2)
    corners = [(x1 - r, y0 + r, -math.pi / 2), (x1 - r, y1 - r, 0.0), (x0 + r, y1 - r, math.pi / 2),
               (x0 + r, y0 + r, math.pi)]
    return np.vstack([ellipse(cx, cy, r, r, n, a, a + math.pi / 2) for cx, cy, a in corners])


def chain(*pieces) -> np.ndarray:
    """Concatenate polylines, dropping a repeated vertex where one piece ends and the next starts."""
    out: list[np.ndarray] = []
    for p in pieces:
        p = np.asarray(p, dtype=np.float64).reshape(-1, 2)
        if out and len(p) and np.allclose(out[-1][-1], p[0]):
            p = p[1:]
        out.append(p)
    return np.vstack(out)


def tube(path, width: float, width_end: float | None = None) -> np.ndarray:
    """Closed outline of a band of ``width`` (tapering to ``width_end``) around polyline ``path``."""
    path = np.asarray(path, dtype=np.float64)
    d = np.gradient(path, axis=0)
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
    normal = np.stack([-d[:, 1], d[:, 0]], axis=1)
    w = np.linspace(width, width if width_end is None else width_end, len(path))[:, None] / 2
    return np.vstack([path + normal * w, (path - normal * w)[::-1]])


def mirror_x(points, x: float = 0.0) -> np.ndarray:
    p = np.array(points, dtype=np.float64)
    p[:, 0] = 2 * x - p[:, 0]
    return p


def lerp(a: float, b: float, t: float) -> float:
    """``a + (b - a) * t``: a continuous attribute ``t`` in ``[0, 1]`` mapped to ``[a, b]``."""
    return a + (b - a) * float(t)


def bounds(parts: list[Part]) -> tuple[np.ndarray, np.ndarray]:
    """``(min_xy, max_xy)`` over all parts' points."""
    pts = np.vstack([p.points for p in parts])
    return pts.min(axis=0), pts.max(axis=0)


def normalise(parts: list[Part]) -> list[Part]:
    """Object units (y up) -> unit coordinates: y down, bounding box centred at 0, longest side 1."""
    lo, hi = bounds(parts)
    centre = (lo + hi) / 2
    side = float(max(hi - lo))
    flip = np.array([1.0, -1.0])
    return [replace(p, points=(p.points - centre) * flip / side, width=p.width / side) for p in parts]


def affine(rotation_deg: float = 0.0, scale: float | tuple[float, float] = 1.0, shear: float = 0.0,
           flip: bool = False) -> np.ndarray:
    """A 2x2 matrix: horizontal flip, then shear, scale and rotation (degrees, clockwise on screen)."""
    sx, sy = (scale, scale) if np.isscalar(scale) else scale
    m = np.diag([-1.0 if flip else 1.0, 1.0])
    m = np.array([[1.0, shear], [0.0, 1.0]]) @ m
    m = np.diag([sx, sy]) @ m
    a = math.radians(rotation_deg)
    r = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return r @ m


def place(parts: list[Part], matrix: np.ndarray, offset) -> list[Part]:
    """Apply ``x -> matrix @ x + offset`` to every part (unit coordinates -> canvas pixels)."""
    off = np.asarray(offset, dtype=np.float64)
    gain = math.sqrt(abs(float(np.linalg.det(matrix))))
    return [replace(p, points=p.points @ matrix.T + off, width=p.width * gain) for p in parts]


def resample(polyline: np.ndarray, step: float, closed: bool = False) -> np.ndarray:
    """Points every ``step`` units of arc length along a polyline (ends kept); ``(m, 2)``."""
    p = np.asarray(polyline, dtype=np.float64)
    if closed and len(p) > 1:
        p = np.vstack([p, p[:1]])
    if len(p) < 2:
        return p
    seg = np.hypot(*np.diff(p, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    total = s[-1]
    if total <= 0:
        return p[:1]
    n = max(2, int(math.ceil(total / step)) + 1)
    t = np.linspace(0.0, total, n)
    return np.stack([np.interp(t, s, p[:, 0]), np.interp(t, s, p[:, 1])], axis=1)


def length(polyline: np.ndarray) -> float:
    p = np.asarray(polyline, dtype=np.float64)
    return float(np.hypot(*np.diff(p, axis=0).T).sum()) if len(p) > 1 else 0.0


def clip_halfplane(polygon, point, normal) -> np.ndarray:
    """Part of a closed polygon on the side of the line through ``point`` that ``normal`` points to."""
    poly = np.asarray(polygon, dtype=np.float64)
    p0, n = np.asarray(point, dtype=np.float64), np.asarray(normal, dtype=np.float64)
    side = (poly - p0) @ n
    out = []
    for i in range(len(poly)):
        a, b, sa, sb = poly[i - 1], poly[i], side[i - 1], side[i]
        if sb >= 0:
            if sa < 0:
                out.append(a + (b - a) * (sa / (sa - sb)))
            out.append(b)
        elif sa >= 0:
            out.append(a + (b - a) * (sa / (sa - sb)))
    return np.array(out).reshape(-1, 2)


def smooth(points, iterations: int = 2, closed: bool = True) -> np.ndarray:
    """Chaikin corner cutting: rounds the corners of a polygon or polyline."""
    p = np.asarray(points, dtype=np.float64)
    for _ in range(iterations):
        if len(p) < 3:
            break
        q = np.roll(p, -1, axis=0) if closed else p[1:]
        a = p if closed else p[:-1]
        cut = np.empty((2 * len(a), 2))
        cut[0::2] = 0.75 * a + 0.25 * q
        cut[1::2] = 0.25 * a + 0.75 * q
        p = cut if closed else np.vstack([p[:1], cut, p[-1:]])
    return p


def shrink(polygon, amount: float) -> np.ndarray:
    """Move every vertex ``amount`` towards the centroid (a cheap inset for convex-ish shapes)."""
    p = np.asarray(polygon, dtype=np.float64)
    c = p.mean(axis=0)
    d = c - p
    dist = np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
    return p + d / dist * np.minimum(amount, dist * 0.9)
