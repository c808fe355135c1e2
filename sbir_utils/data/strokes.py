"""Stroke-3 sketches: ``(N, 3)`` float arrays of absolute ``x, y`` on a square canvas plus a pen-lift
flag (1 = the stroke ends after this point), the format of QMUL's ``*_Coordinate`` files and of the
embedded data set's ``strokes/*.npy``. Rasterise, simplify, measure."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

CANVAS = 256  # default canvas side of stroke coordinates (QMUL and the embedded set)


def split_strokes(points: np.ndarray) -> list[np.ndarray]:
    """``(N, 3)`` stroke-3 -> list of ``(n_i, 2)`` polylines (empty strokes dropped)."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] < 3:
        raise ValueError(f"stroke-3 array must have shape (N, 3), got {points.shape}")
    ends = np.flatnonzero(points[:, 2] > 0.5)
    bounds = np.concatenate([[-1], ends, [len(points) - 1]])
    strokes = []
    for start, stop in zip(bounds[:-1] + 1, bounds[1:] + 1):
        if stop > start:
            strokes.append(points[start:stop, :2])
    return strokes


def join_strokes(strokes: list[np.ndarray]) -> np.ndarray:
    """List of ``(n_i, 2)`` polylines -> ``(N, 3)`` stroke-3 with pen-lift at each stroke's last point."""
    parts = []
    for s in strokes:
        s = np.asarray(s, dtype=np.float64).reshape(-1, 2)
        if len(s) == 0:
            continue
        flag = np.zeros((len(s), 1))
        flag[-1] = 1.0
        parts.append(np.hstack([s, flag]))
    return np.vstack(parts) if parts else np.zeros((0, 3))


def rasterise(
    points: np.ndarray,
    size: int = 256,
    canvas: float = CANVAS,
    line_width: float = 2.0,
    widths: list[float] | None = None,
) -> Image.Image:
    """Draw a stroke-3 sketch as black lines on white. Returns a PIL ``L`` image of ``size x size``.

    Args:
        canvas: side of the coordinate square the points live in.
        line_width: stroke width in output pixels (per-stroke ``widths`` override it).
    """
    img = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(img)
    scale = size / float(canvas)
    for i, stroke in enumerate(split_strokes(points)):
        w = widths[i] if widths is not None and i < len(widths) else line_width
        w_px = max(1, int(round(w)))
        xy = [(float(x) * scale, float(y) * scale) for x, y in stroke]
        if len(xy) == 1:
            x, y = xy[0]
            r = w_px / 2
            draw.ellipse([x - r, y - r, x + r, y + r], fill=0)
        else:
            draw.line(xy, fill=0, width=w_px, joint="curve")
    return img


def rdp(polyline: np.ndarray, epsilon: float) -> np.ndarray:
    """Ramer-Douglas-Peucker simplification of one ``(n, 2)`` polyline."""
    polyline = np.asarray(polyline, dtype=np.float64)
    if len(polyline) < 3 or epsilon <= 0:
        return polyline
    keep = np.zeros(len(polyline), dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, len(polyline) - 1)]
    while stack:
        a, b = stack.pop()
        if b <= a + 1:
            continue
        seg = polyline[b] - polyline[a]
        rel = polyline[a + 1 : b] - polyline[a]
        norm = np.hypot(*seg)
        if norm == 0:
            dist = np.hypot(rel[:, 0], rel[:, 1])
        else:
            dist = np.abs(seg[0] * rel[:, 1] - seg[1] * rel[:, 0]) / norm
        k = int(np.argmax(dist))
        if dist[k] > epsilon:
            idx = a + 1 + k
            keep[idx] = True
            stack.extend([(a, idx), (idx, b)])
    return polyline[keep]


def stroke_statistics(points: np.ndarray, canvas: float = CANVAS) -> dict[str, float]:
    """Per-sketch statistics used to compare procedural and human sketches.

    Returns ``n_strokes``, ``n_points``, ``points_per_stroke`` (mean), ``stroke_length`` (mean, as a
    fraction of the canvas side) and ``total_length`` (same unit).
    """
    strokes = split_strokes(points)
    lengths = [float(np.hypot(*np.diff(s, axis=0).T).sum()) / canvas if len(s) > 1 else 0.0 for s in strokes]
    n_points = int(sum(len(s) for s in strokes))
    return {
        "n_strokes": float(len(strokes)),
        "n_points": float(n_points),
        "points_per_stroke": n_points / len(strokes) if strokes else 0.0,
        "stroke_length": float(np.mean(lengths)) if lengths else 0.0,
        "total_length": float(np.sum(lengths)),
    }
