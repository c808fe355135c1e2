"""Category + attributes -> geometry: one builder per object category.

Each builder takes the instance's attribute dict (see ``shapes.CATEGORY_SPECS``) and a numpy Generator
(for small placements such as fruit), and returns a list of :class:`~.geometry.Part` in object units,
y up, drawn back to front. Colour roles (``main``, ``second``, ``dark``, ...) are resolved by the renderer.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .geometry import (
    Part,
    bezier,
    chain,
    clip_halfplane,
    ellipse,
    line,
    mirror_x,
    rect,
    rounded_rect,
    shape,
    shrink,
    smooth,
    tube,
)

Builder = Callable[[dict, np.random.Generator], list[Part]]


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * float(t)


def shoe(a: dict, rng: np.random.Generator) -> list[Part]:
    hh = _lerp(0.0, 3.0, a["heel_height"])
    st = _lerp(0.3, 1.1, a["sole_thickness"])
    collar = {"low": 2.0, "mid": 3.0, "high": 4.8}[a["collar_height"]]
    toe_x = {"round": 10.2, "pointed": 11.2, "square": 10.0}[a["toe_shape"]]

    def ys(x):
        t = np.clip((np.asarray(x, dtype=np.float64) - 1.6) / 4.6, 0, 1)
        return st + hh * (1 - t * t * (3 - 2 * t))

    xs = np.linspace(0.0, toe_x - 0.15, 28)
    sole_top = np.stack([xs, ys(xs)], axis=1)
    parts: list[Part] = []
    if hh > 0.05:
        parts.append(shape([[0.1, hh], [1.8, hh], [1.55, 0.0], [0.5, 0.0]], "sole", detail=0.9))
    sole_bottom = sole_top - [0.0, st]
    toe_end = bezier(sole_top[-1], [toe_x + 0.2, sole_top[-1, 1]], [toe_x, sole_bottom[-1, 1]], n=6)
    parts.append(shape(chain(sole_top, toe_end, sole_bottom[::-1]), "sole", detail=1.0))

    y0 = float(ys(0.0))
    b1 = np.array([-0.15, y0 + collar])
    c = np.array([3.2, float(ys(3.2)) + collar * (0.95 if collar > 4 else 0.8)])
    v = np.array([6.3, float(ys(6.3)) + 1.9])
    t = np.array([toe_x, float(ys(toe_x)) + 0.3])
    back = bezier([0.05, y0], [-0.45, y0 + collar * 0.5], b1, n=8)
    collar_line = bezier(b1, [1.6, y0 + collar + 0.3], c, n=8)
    throat = bezier(c, [4.6, (c[1] + v[1]) / 2 + 0.2], v, n=8)
    if a["toe_shape"] == "round":
        toe = bezier(v, [toe_x - 0.3, v[1] + 0.1], [toe_x + 0.3, t[1] + 0.3], t, n=10)
    elif a["toe_shape"] == "pointed":
        toe = bezier(v, [8.8, v[1] - 0.3], t, n=10)
    else:
        toe = chain(bezier(v, [8.5, v[1] - 0.1], [toe_x - 0.4, v[1] - 0.3], n=6),
                    bezier([toe_x - 0.4, v[1] - 0.3], [toe_x, v[1] - 0.4], t, n=5))
    upper = chain(back, collar_line, throat, toe, sole_top[::-1])
    parts.append(shape(upper, "main", texture=a.get("texture", "plain"), detail=1.0))

    stripe = a["stripe_pattern"]
    thr_x, thr_y = throat[:, 0], throat[:, 1]
    if stripe in ("single", "double", "triple"):
        for k in range({"single": 1, "double": 2, "triple": 3}[stripe]):
            xb = 3.6 + 0.85 * k
            w = 0.4
            top = [float(np.interp(xb - 0.7, thr_x, thr_y)) - 0.35, float(np.interp(xb - 0.7 + w, thr_x, thr_y)) - 0.35]
            band = [[xb, float(ys(xb)) + 0.2], [xb + w, float(ys(xb + w)) + 0.2],
                    [xb - 0.7 + w, top[1]], [xb - 0.7, top[0]]]
            parts.append(shape(band, "second", detail=0.5))
    elif stripe == "swoosh":
        path = bezier([1.4, y0 + 0.9], [4.5, float(ys(4.5)) + 0.1], [7.6, float(ys(7.6)) + 1.3], n=14)
        parts.append(shape(tube(path, 0.55, 0.05), "second", detail=0.5))
    if a["toe_cap"] == "yes":
        cap = clip_halfplane(upper, [8.3, 0.0], [1.0, -0.35])
        if len(cap) >= 3:
            parts.append(shape(cap, "second", detail=0.45))
    if a["heel_tab"] == "yes":
        parts.append(shape(rounded_rect(-0.35, y0 + collar - 1.1, 0.45, y0 + collar + 0.35, 0.2), "second",
                           detail=0.4))
    n_laces = int(a["lace_count"])
    if n_laces:
        inner = throat + [0.35, -0.45]
        parts.append(line(inner[1:-1], width=0.08, detail=0.35))
        d = np.gradient(throat, axis=0)
        for f in np.linspace(0.15, 0.85, n_laces):
            i = f * (len(throat) - 1)
            p = np.array([np.interp(i, np.arange(len(throat)), throat[:, j]) for j in (0, 1)])
            dd = d[int(round(i))] / np.linalg.norm(d[int(round(i))])
            nrm = np.array([dd[1], -dd[0]])
            parts.append(line([p - nrm * 0.55 + dd * 0.2, p + nrm * 0.25 - dd * 0.2], width=0.12, fill="light",
                              detail=0.3))
    else:
        parts.append(line([c + [0.5, -0.05], c + [0.9, -0.9], c + [1.3, -0.05]], width=0.08, detail=0.3))
    return parts


def chair(a: dict, rng: np.random.Generator) -> list[Part]:
    w, dx, dz = 4.0, 0.5, 0.9
    sh = _lerp(2.2, 3.8, a["leg_length"])
    st = _lerp(0.15, 0.65, a["seat_thickness"])
    bh = _lerp(2.2, 5.0, a["back_height"])
    style = a["leg_style"]
    parts: list[Part] = []
    leg_w = 0.32
    # back legs (partly hidden by the seat)
    if style in ("straight", "tapered", "splayed"):
        for x in (dx + 0.05, w - dx - 0.05 - leg_w * 0.8):
            spread = -0.35 if style == "splayed" and x < w / 2 else (0.35 if style == "splayed" else 0.0)
            parts.append(shape([[x, sh + dz - 0.1], [x + leg_w * 0.8, sh + dz - 0.1],
                                [x + leg_w * 0.8 + spread, 0.7], [x + spread, 0.7]], "wood", texture="wood", detail=0.5))
    # back rest
    y0, y1, x0, x1 = sh + dz - 0.2, sh + dz + bh, dx, w - dx
    back_shape = a["back_shape"]
    if back_shape == "rectangle":
        outline = rect(x0, y0, x1, y1)
    elif back_shape == "rounded":
        outline = rounded_rect(x0, y0, x1, y1, 0.9)
    elif back_shape == "arched":
        outline = chain([[x1, y0]], ellipse((x0 + x1) / 2, y1 - 1.2, (x1 - x0) / 2, 1.2, 16, 0.0, math.pi), [[x0, y0]])
    elif back_shape == "trapezoid":
        outline = np.array([[x0 + 0.3, y0], [x1 - 0.3, y0], [x1 + 0.25, y1], [x0 - 0.25, y1]])
    else:  # oval
        outline = ellipse((x0 + x1) / 2, y0 + bh * 0.58, (x1 - x0) / 2 + 0.1, bh * 0.45, 32)
        for x in (x0 + 0.6, x1 - 0.9):
            parts.append(shape(rect(x, y0, x + 0.3, y0 + bh * 0.3), "wood", texture="wood", detail=0.5))
    n_slats = int(a["slat_count"])
    if n_slats == 0:
        parts.append(shape(outline, "main", texture=a.get("texture", "plain"), detail=1.0))
    else:
        top = float(outline[:, 1].max())
        rail = clip_halfplane(outline, [0.0, top - 0.7 - 0.1 * bh], [0.0, 1.0])
        parts.append(shape(rail, "main", texture=a.get("texture", "plain"), detail=1.0))
        inner_x0, inner_x1 = x0 + 0.35, x1 - 0.35
        for x in (x0, x1 - 0.35):
            parts.append(shape(rect(x, y0, x + 0.35, top - 0.7 - 0.1 * bh + 0.05), "main", detail=0.9))
        for k in range(n_slats):
            cx = _lerp(inner_x0, inner_x1, (k + 1) / (n_slats + 1))
            parts.append(shape(rect(cx - 0.12, y0, cx + 0.12, top - 0.7 - 0.1 * bh + 0.05), "main", detail=0.4))
    # seat
    seat = np.array([[0, sh - st], [w, sh - st], [w, sh], [w - dx, sh + dz], [dx, sh + dz], [0, sh]])
    # front legs
    if style in ("straight", "tapered", "splayed"):
        for left in (True, False):
            if style == "straight":
                leg = rect(0.1, 0.0, 0.1 + leg_w, sh - st + 0.05)
            elif style == "tapered":
                leg = np.array([[0.05, sh - st + 0.05], [0.5, sh - st + 0.05], [0.33, 0.0], [0.18, 0.0]])
            else:
                leg = np.array([[0.15, sh - st + 0.05], [0.15 + leg_w, sh - st + 0.05], [-0.25 + leg_w, 0.0], [-0.25, 0.0]])
            parts.append(shape(leg if left else mirror_x(leg, w / 2), "wood", texture="wood", detail=0.8))
        stretch = a["stretcher"]
        ys = sh * 0.35
        if stretch == "bar":
            parts.append(shape(rect(0.3, ys - 0.1, w - 0.3, ys + 0.1), "wood", texture="wood", detail=0.4))
        elif stretch == "cross":
            parts.append(line([[0.35, ys - 0.6], [w - 0.35, ys + 0.6]], width=0.15, fill="wood", detail=0.4))
            parts.append(line([[0.35, ys + 0.6], [w - 0.35, ys - 0.6]], width=0.15, fill="wood", detail=0.4))
    elif style == "pedestal":
        cx = w / 2
        feet = [(-0.4, 0.1), (w + 0.4, 0.1), (cx - 1.1, 0.45), (cx + 1.1, 0.45), (cx, 0.0)]
        for fx, fy in feet:
            parts.append(shape(tube([[cx, 0.6], [fx, fy + 0.15]], 0.26), "metal", texture="metal", detail=0.6))
            parts.append(shape(ellipse(fx, fy + 0.1, 0.2, 0.2, 10), "dark", detail=0.3))
        parts.append(shape(rect(cx - 0.2, 0.5, cx + 0.2, sh - st + 0.05), "metal", texture="metal", detail=0.8))
        if a["stretcher"] != "none":
            parts.append(shape(ellipse(cx, sh * 0.45, 1.1, 0.25, 20), "metal", texture="metal", detail=0.4))
    else:  # sled
        path = [[0.35, sh - st], [0.35, 0.2], [w - 0.35, 0.2], [w - 0.35, sh - st]]
        parts.append(shape(tube(smooth(path, 3, closed=False), 0.28), "metal", texture="metal", detail=0.8))
        if a["stretcher"] != "none":
            parts.append(shape(rect(0.4, sh * 0.5 - 0.1, w - 0.4, sh * 0.5 + 0.1), "metal", texture="metal", detail=0.4))
    parts.append(shape(seat, "second", texture=a.get("texture", "plain"), detail=1.0))
    parts.append(line([[0.05, sh], [w - 0.05, sh]], width=0.05, detail=0.55))
    # armrests
    arms = a["armrests"]
    if arms != "none":
        for left in (True, False):
            if arms == "straight":
                post = rect(-0.05, sh - 0.05, 0.25, sh + 1.3)
                pad = np.array([[-0.3, sh + 1.25], [0.45, sh + 1.25], [dx + 0.35, sh + dz + 1.1], [dx - 0.2, sh + dz + 1.25]])
            else:
                post = tube(bezier([0.15, sh - 0.05], [-0.45, sh + 0.5], [-0.15, sh + 1.3], n=10), 0.3)
                pad = tube(bezier([-0.35, sh + 1.3], [0.2, sh + 1.7], [dx + 0.1, sh + dz + 1.2], n=10), 0.35)
            for p in (post, pad):
                parts.append(shape(p if left else mirror_x(p, w / 2), "wood", texture="wood", detail=0.55))
    return parts


def _mug_profile(body: str, radius: float, t: np.ndarray) -> np.ndarray:
    """Half-width of a mug body at relative heights ``t`` in [0, 1]."""
    if body == "cylinder":
        r = np.full_like(t, radius)
    elif body == "tapered":
        r = radius * (0.78 + 0.22 * t)
    elif body == "conical":
        r = radius * (1.0 - 0.28 * t)
    elif body == "barrel":
        r = radius * (0.86 + 0.14 * np.sin(math.pi * t))
    else:  # bell
        r = radius * (0.72 + 0.28 * t**2)
    return r


def mug(a: dict, rng: np.random.Generator) -> list[Part]:
    radius, height = 1.6, _lerp(2.6, 5.0, a["height"])
    t = np.linspace(0.0, 1.0, 14)
    r = _mug_profile(a["body_shape"], radius, t)
    ry = 0.32
    parts: list[Part] = []
    if a["saucer"] == "yes":
        parts.append(shape(ellipse(0.0, 0.05, radius * 1.9, 0.5, 32), "second", detail=0.6))
    # handle (its ends are hidden by the body drawn after it)
    ht = _lerp(0.22, 0.6, a["handle_thickness"])
    rt, rb = float(np.interp(0.8, t, r)), float(np.interp(0.25, t, r))
    y1, y2 = 0.8 * height, 0.25 * height
    shape_h = a["handle_shape"]
    if shape_h == "round":
        path = bezier([rt - 0.3, y1], [rt + 1.9, y1 + 0.6], [rb + 1.9, y2 - 0.6], [rb - 0.3, y2], n=20)
    elif shape_h == "square":
        path = smooth([[rt - 0.3, y1], [rt + 1.3, y1], [rt + 1.3, y2], [rb - 0.3, y2]], 3, closed=False)
    elif shape_h == "D":
        y1, y2 = 0.93 * height, 0.1 * height
        path = bezier([rt - 0.3, y1], [rt + 1.5, y1], [rb + 1.5, y2], [rb - 0.3, y2], n=20)
    else:  # ear: small, high
        y1, y2 = 0.85 * height, 0.5 * height
        path = bezier([rt - 0.3, y1], [rt + 1.0, y1 + 0.2], [rt + 0.9, y2], [rb - 0.3, y2], n=16)
    parts.append(shape(tube(path, ht), "main", detail=0.9))
    left = np.stack([-r, t * height], axis=1)
    right = np.stack([r, t * height], axis=1)
    bottom = ellipse(0.0, 0.0, r[0], ry, 16, math.pi, 2 * math.pi)
    top_back = ellipse(0.0, height, r[-1], ry, 16, 0.0, math.pi)
    body = chain(bottom, right[1:-1], top_back, left[::-1][1:-1])
    parts.append(shape(body, "main", texture=a.get("texture", "plain"), detail=1.0))
    if a["rim"] == "lip":
        parts.append(shape(ellipse(0.0, height, r[-1] + 0.12, ry + 0.08, 28), "second", detail=0.5))
    parts.append(shape(ellipse(0.0, height, r[-1] - 0.1, ry - 0.06, 28), "dark", detail=0.8))
    deco = a["decoration"]

    def band(f0: float, f1: float) -> np.ndarray:
        ra, rb_ = float(np.interp(f0, t, r)), float(np.interp(f1, t, r))
        lo = ellipse(0.0, f0 * height, ra, ry, 12, math.pi, 2 * math.pi)
        hi = ellipse(0.0, f1 * height, rb_, ry, 12, math.pi, 2 * math.pi)[::-1]
        return chain(lo, hi)

    if deco == "band":
        parts.append(shape(band(0.4, 0.58), "second", detail=0.45))
    elif deco == "stripes":
        for f in (0.3, 0.5, 0.7):
            parts.append(shape(band(f, f + 0.07), "second", detail=0.35))
    elif deco == "dots":
        for k, (fx, fy) in enumerate([(-0.5, 0.3), (0.2, 0.42), (-0.15, 0.62), (0.55, 0.68), (-0.6, 0.78)]):
            parts.append(shape(ellipse(fx * radius * 0.9, fy * height, 0.2, 0.2, 10), "second", detail=0.25 + 0.01 * k))
    elif deco == "heart":
        cy, s = 0.5 * height, 0.55
        heart = chain(bezier([0, cy - s], [-1.3 * s, cy], [-0.9 * s, cy + 1.0 * s], [0, cy + 0.45 * s], n=10),
                      bezier([0, cy + 0.45 * s], [0.9 * s, cy + 1.0 * s], [1.3 * s, cy], [0, cy - s], n=10)[1:-1])
        parts.append(shape(heart, "second", detail=0.4))
    return parts


def lamp(a: dict, rng: np.random.Generator) -> list[Part]:
    parts: list[Part] = []
    base = a["base_shape"]
    if base == "disc":
        parts.append(shape(rounded_rect(-1.5, 0.0, 1.5, 0.4, 0.2), "metal", texture="metal", detail=0.9))
        base_top = 0.4
    elif base == "square":
        parts.append(shape(rect(-1.0, 0.0, 1.0, 0.9), "second", detail=0.9))
        base_top = 0.9
    elif base == "tripod":
        for fx in (-1.6, 0.0, 1.6):
            parts.append(shape(tube([[0.0, 1.2], [fx, 0.0]], 0.18), "wood", texture="wood", detail=0.7))
        base_top = 1.2
    else:  # dome
        parts.append(shape(ellipse(0.0, 0.0, 1.4, 0.9, 20, 0.0, math.pi), "second", detail=0.9))
        base_top = 0.85
    stem_h = _lerp(2.2, 5.0, a["stem_height"])
    top = base_top + stem_h
    stem = a["stem_style"]
    if stem == "straight":
        parts.append(shape(rect(-0.12, base_top - 0.05, 0.12, top + 0.1), "metal", texture="metal", detail=0.8))
    elif stem == "curved":
        path = bezier([0.0, base_top - 0.05], [1.6, base_top + stem_h * 0.4], [-1.2, base_top + stem_h * 0.7],
                      [0.0, top + 0.1], n=20)
        parts.append(shape(tube(path, 0.22), "metal", texture="metal", detail=0.8))
    elif stem == "double":
        for x in (-0.35, 0.25):
            parts.append(shape(rect(x, base_top - 0.05, x + 0.1, top + 0.1), "metal", texture="metal", detail=0.7))
    elif stem == "vase":
        tt = np.linspace(0.0, 1.0, 14)
        rr = 0.25 + 0.95 * np.sin(math.pi * np.clip(tt * 1.15, 0, 1)) ** 1.5
        yy = base_top - 0.05 + tt * (stem_h + 0.15)
        parts.append(shape(chain(np.stack([rr, yy], 1), np.stack([-rr, yy], 1)[::-1]), "second", detail=0.8))
    else:  # zigzag arm
        path = [[0.0, base_top - 0.05], [0.9, base_top + stem_h * 0.45], [-0.5, base_top + stem_h * 0.75], [0.0, top + 0.1]]
        parts.append(shape(tube(path, 0.2), "metal", texture="metal", detail=0.8))
    # shade
    sh_h = _lerp(1.5, 3.4, a["shade_height"])
    wb = 2.3
    kind = a["shade_shape"]
    y0, y1 = top, top + sh_h
    if kind == "cone":
        outline = np.array([[-wb, y0], [wb, y0], [0.9, y1], [-0.9, y1]])
    elif kind == "drum":
        outline = rect(-1.8, y0, 1.8, y1)
    elif kind == "empire":
        outline = np.array([[-wb, y0], [wb, y0], [0.55, y1], [-0.55, y1]])
    elif kind == "bell":
        side = bezier([wb + 0.2, y0], [1.3, y0 + 0.3], [1.3, y1 - 0.8], [0.8, y1], n=12)
        outline = chain(side, mirror_x(side)[::-1])
    else:  # dome
        outline = ellipse(0.0, y0, wb, sh_h, 24, 0.0, math.pi)
    parts.append(shape(outline, "main", texture=a.get("texture", "plain"), detail=1.0))
    bands = int(a["shade_bands"])
    right = outline[outline[:, 0] >= 0]
    right = right[np.argsort(right[:, 1])]  # the shade's right edge, bottom to top
    for k in range(bands):
        f = 0.12 + 0.76 * (k + 0.5) / bands if bands > 1 else 0.5
        y = _lerp(y0, y1, f)
        half = float(np.interp(y, right[:, 1], right[:, 0]))
        parts.append(line([[-half + 0.1, y], [half - 0.1, y]], width=0.12, fill="second", detail=0.35))
    pull = a["pull"]
    if pull == "chain":
        parts.append(line([[0.9, y0], [0.9, y0 - 1.3]], width=0.06, fill="metal", detail=0.3))
        parts.append(shape(ellipse(0.9, y0 - 1.4, 0.14, 0.14, 8), "metal", detail=0.3))
    elif pull == "knob":
        parts.append(shape(ellipse(0.0, y1 + 0.3, 0.3, 0.3, 12), "metal", texture="metal", detail=0.35))
    return parts


def bottle(a: dict, rng: np.random.Generator) -> list[Part]:
    radius = 1.3
    height = _lerp(4.5, 8.0, a["height"])
    neck = _lerp(0.6, 2.4, a["neck_length"])
    rn = 0.42
    hb = height - neck
    t = np.linspace(0.0, 1.0, 30)
    body = a["body_shape"]
    if body == "straight":
        r = np.where(t < 0.85, radius, rn + (radius - rn) * np.cos((t - 0.85) / 0.15 * math.pi / 2))
    elif body == "shouldered":
        s = np.clip((t - 0.65) / 0.35, 0, 1)
        r = rn + (radius - rn) * np.sqrt(1 - s**2)
    elif body == "flask":
        r = np.where(t < 0.8, radius * 1.25, rn + (radius * 1.25 - rn) * (1 - (t - 0.8) / 0.2) ** 0.6)
    elif body == "waisted":
        base = radius * (1 - 0.25 * np.sin(math.pi * np.clip(t / 0.8, 0, 1)))
        r = np.where(t < 0.8, base, rn + (radius - rn) * np.cos((t - 0.8) / 0.2 * math.pi / 2))
    else:  # round
        r = np.maximum(rn, radius * 1.35 * np.sqrt(np.clip(1 - (2 * t - 0.9) ** 2, 0, 1)))
        r[0] = radius * 0.7
    r = np.maximum(r, rn)
    y = t * hb
    right = chain(np.stack([r, y], 1), [[rn, height]])
    outline = chain(right, mirror_x(right)[::-1])
    parts = [shape(outline, "main", texture="glass", detail=1.0)]
    parts.append(shape(rect(-rn - 0.1, height - 0.25, rn + 0.1, height), "main", texture="glass", detail=0.5))
    ribs = int(a["ribs"])
    for k in range(ribs):
        yy = 0.35 + 0.35 * k
        rr = float(np.interp(yy / hb, t, r))
        parts.append(line([[-rr + 0.1, yy], [rr - 0.1, yy]], width=0.07, fill="dark", detail=0.3))
    label = a["label"]
    yl = hb * 0.45
    rl = float(np.interp(0.45, t, r))
    if label == "rect":
        parts.append(shape(rect(-rl * 0.75, yl - 0.9, rl * 0.75, yl + 0.9), "light", detail=0.55))
    elif label == "oval":
        parts.append(shape(ellipse(0.0, yl, rl * 0.75, 0.95, 24), "light", detail=0.55))
    elif label == "band":
        lo, hi = yl - 0.7, yl + 0.7
        rlo, rhi = float(np.interp(lo / hb, t, r)), float(np.interp(hi / hb, t, r))
        parts.append(shape([[-rlo, lo], [rlo, lo], [rhi, hi], [-rhi, hi]], "light", detail=0.55))
    elif label == "diamond":
        parts.append(shape([[0.0, yl - 1.0], [rl * 0.8, yl], [0.0, yl + 1.0], [-rl * 0.8, yl]], "light", detail=0.55))
    if label != "none":
        for dy in (0.2, -0.2):
            parts.append(line([[-rl * 0.4, yl + dy], [rl * 0.4, yl + dy]], width=0.08, fill="dark", detail=0.2))
    cap = a["cap_type"]
    if cap == "screw":
        parts.append(shape(rect(-rn - 0.12, height - 0.1, rn + 0.12, height + 0.8), "second", detail=0.8))
        for x in (-0.25, 0.0, 0.25):
            parts.append(line([[x, height], [x, height + 0.7]], width=0.05, fill="dark", detail=0.2))
    elif cap == "cork":
        parts.append(shape([[-rn + 0.03, height - 0.3], [rn - 0.03, height - 0.3], [rn + 0.1, height + 0.7],
                            [-rn - 0.1, height + 0.7]], "wood", texture="wood", detail=0.8))
    elif cap == "dropper":
        parts.append(shape(rect(-rn - 0.1, height - 0.1, rn + 0.1, height + 0.5), "dark", detail=0.7))
        parts.append(shape(ellipse(0.0, height + 1.1, 0.4, 0.75, 18), "second", detail=0.7))
    elif cap == "pump":
        parts.append(shape(rect(-rn - 0.1, height - 0.1, rn + 0.1, height + 0.6), "second", detail=0.8))
        parts.append(shape(rect(-0.12, height + 0.6, 0.12, height + 1.3), "second", detail=0.6))
        parts.append(shape(rect(-0.3, height + 1.2, 1.1, height + 1.5), "second", detail=0.6))
    return parts


def house(a: dict, rng: np.random.Generator) -> list[Part]:
    w = _lerp(5.0, 8.5, a["width"])
    fh = 2.3
    floors = int(a["floors"])
    h = floors * fh
    roof = a["roof_type"]
    over = 0.35
    parts: list[Part] = []
    chim = a["chimney"]
    if chim != "none":
        cx = w * (0.22 if chim == "left" else 0.72)
        parts.append(shape(rect(cx, h + 0.3, cx + 0.6, h + 2.4), "brick", texture="brick", detail=0.6))
    if roof == "gable":
        roof_pts = [[-over, h], [w + over, h], [w / 2, h + 2.4]]
    elif roof == "hip":
        roof_pts = [[-over, h], [w + over, h], [w * 0.72, h + 1.8], [w * 0.28, h + 1.8]]
    elif roof == "flat":
        roof_pts = rect(-0.2, h - 0.05, w + 0.2, h + 0.55)
    elif roof == "gambrel":
        roof_pts = [[-over, h], [w + over, h], [w * 0.85, h + 1.4], [w / 2, h + 2.3], [w * 0.15, h + 1.4]]
    else:  # saltbox
        roof_pts = [[-over, h], [w + over, h], [w * 0.35, h + 2.5], [w * 0.2, h + 2.2]]
    parts.append(shape(rect(0.0, 0.0, w, h), "main", texture="brick" if a.get("texture") == "brick" else "plain",
                       detail=1.0))
    parts.append(shape(roof_pts, "roof", texture="tiles", detail=1.0))
    door_pos = a["door_position"]
    dw = 0.95
    dxs = {"left": w * 0.18, "center": w / 2 - dw / 2, "right": w * 0.82 - dw}[door_pos]
    parts.append(shape(rect(dxs, 0.0, dxs + dw, 1.75), "wood", texture="wood", detail=0.8))
    parts.append(shape(ellipse(dxs + dw * 0.78, 0.9, 0.07, 0.07, 8), "metal", detail=0.15))
    blocked = [(dxs - 0.3, dxs + dw + 0.3)]
    if a["garage"] == "yes":
        gw = 2.0
        gx = w * 0.82 - gw if door_pos != "right" else w * 0.1
        if door_pos == "center":
            gx = w - gw - 0.25
        parts.append(shape(rect(gx, 0.0, gx + gw, 1.6), "light", detail=0.7))
        for k in range(1, 4):
            parts.append(line([[gx + 0.1, 0.4 * k], [gx + gw - 0.1, 0.4 * k]], width=0.05, detail=0.25))
        blocked.append((gx - 0.3, gx + gw + 0.3))
    n_win = int(a["windows_per_floor"])
    style = a["window_style"]
    ww, wh = 0.85, 0.95
    for f in range(floors):
        ybase = f * fh + 0.75
        for k in range(n_win):
            cx = w * (k + 0.5) / n_win
            if f == 0 and any(lo < cx + ww / 2 and cx - ww / 2 < hi for lo, hi in blocked):
                continue
            x0, x1, y0, y1 = cx - ww / 2, cx + ww / 2, ybase, ybase + wh
            if style == "round":
                win = ellipse(cx, (y0 + y1) / 2, 0.48, 0.48, 18)
            elif style == "arched":
                win = chain([[x1, y0]], ellipse(cx, y1 - 0.2, ww / 2, 0.45, 10, 0.0, math.pi), [[x0, y0]])
            else:
                win = rect(x0, y0, x1, y1)
            parts.append(shape(win, "window", texture="glass", detail=0.6))
            if style == "cross":
                parts.append(line([[cx, y0], [cx, y1]], width=0.07, fill="light", detail=0.25))
                parts.append(line([[x0, (y0 + y1) / 2], [x1, (y0 + y1) / 2]], width=0.07, fill="light", detail=0.25))
    return parts


def tree(a: dict, rng: np.random.Generator) -> list[Part]:
    th = _lerp(1.5, 4.0, a["trunk_height"])
    tw = _lerp(0.35, 1.1, a["trunk_width"])
    cs = _lerp(2.6, 5.0, a["crown_size"])
    crown = a["crown_shape"]
    parts: list[Part] = []
    top = th + (0.3 if crown != "palm" else 0.0)
    if crown == "palm":
        spine = bezier([0.0, 0.0], [0.3, th * 1.0], [-0.6, th * 1.6 + 1.0], n=12)
        trunk = tube(spine, tw, tw * 0.55)
        top_pt = spine[-1]
    else:
        trunk = np.array([[-tw / 2 - 0.15, 0.0], [tw / 2 + 0.15, 0.0], [tw / 2 * 0.8, top + 0.6], [-tw / 2 * 0.8, top + 0.6]])
        top_pt = np.array([0.0, top])
    parts.append(shape(trunk, "bark", texture="wood", detail=1.0))
    if a["roots"] == "yes":
        for sgn in (-1, 1):
            parts.append(shape([[sgn * tw * 0.3, 0.5], [sgn * (tw / 2 + 0.9), 0.0], [sgn * tw * 0.2, 0.0]], "bark",
                               texture="wood", detail=0.4))
    n_br = int(a["branches"])
    fruit_box = None
    if crown == "palm":
        n_fronds = 4 + n_br
        for k in range(n_fronds):
            ang = math.pi * (0.05 + 0.9 * k / (n_fronds - 1))
            tip = top_pt + cs * 0.75 * np.array([math.cos(ang), 0.35 * math.sin(ang) - 0.25])
            mid = top_pt + cs * 0.45 * np.array([math.cos(ang), 0.55 * math.sin(ang) + 0.1])
            parts.append(shape(tube(bezier(top_pt, mid, tip, n=12), 0.7, 0.05), "leaf", texture="leaves",
                               detail=0.9 if k in (0, n_fronds - 1) else 0.7))
        fruit_box = (top_pt[0] - 0.5, top_pt[1] - 0.6, top_pt[0] + 0.5, top_pt[1] - 0.1)
    else:
        cy = top + cs * 0.42
        if crown == "round":
            outline = ellipse(0.0, cy, cs * 0.5, cs * 0.47, 36)
        elif crown == "oval":
            outline = ellipse(0.0, cy + cs * 0.18, cs * 0.34, cs * 0.62, 36)
        elif crown == "cloud":
            ang = np.linspace(0.0, 2 * math.pi, 90, endpoint=False)
            rad = cs * 0.5 * (0.84 + 0.16 * np.abs(np.cos(3.5 * ang)))
            outline = np.stack([rad * np.cos(ang), cy + 0.9 * rad * np.sin(ang)], 1)
        elif crown == "conical":
            outline = np.array([[-cs * 0.5, top - 0.2], [cs * 0.5, top - 0.2], [0.0, top + cs * 1.45]])
        else:  # tiered
            for k in range(3):
                base_y = top - 0.2 + k * cs * 0.42
                half = cs * 0.5 * (1 - 0.22 * k)
                parts.append(shape([[-half, base_y], [half, base_y], [0.0, base_y + cs * 0.62]], "leaf",
                                   texture="leaves", detail=1.0 if k == 0 else 0.85))
            outline = None
        if outline is not None:
            parts.append(shape(outline, "leaf", texture="leaves", detail=1.0))
        for k in range(n_br):
            sgn = -1 if k % 2 == 0 else 1
            y0 = top + 0.2 + 0.45 * k
            parts.append(line([[0.0, y0], [sgn * cs * 0.16, y0 + cs * 0.14], [sgn * cs * 0.28, y0 + cs * 0.26]],
                              width=0.16, fill="bark", detail=0.4))
        fruit_box = (-cs * 0.3, top + cs * 0.15, cs * 0.3, top + cs * 0.7)
    n_fruit = int(a["fruit"])
    if n_fruit and fruit_box:
        x0, y0, x1, y1 = fruit_box
        for _ in range(n_fruit):
            fx, fy = rng.uniform(x0, x1), rng.uniform(y0, y1)
            parts.append(shape(ellipse(fx, fy, 0.22, 0.22, 10), "fruit", detail=0.3))
    if a["knot"] == "yes" and crown != "palm":
        parts.append(shape(ellipse(0.05, th * 0.45, tw * 0.18, 0.25, 12), "dark", detail=0.25))
    return parts


_CAR_PROFILES = {
    # (x, y) silhouette from the rear bumper over the roof to the front bumper, length 10
    "sedan": [(0.0, 0.9), (0.05, 1.95), (2.3, 2.15), (3.3, 3.3), (6.3, 3.3), (7.7, 2.2), (9.9, 1.9), (10.0, 0.9)],
    "hatchback": [(0.3, 0.9), (0.25, 2.5), (1.0, 3.35), (5.8, 3.4), (7.3, 2.2), (9.7, 1.9), (9.8, 0.9)],
    "coupe": [(0.0, 0.9), (0.05, 1.8), (1.8, 2.05), (4.0, 3.0), (5.9, 3.0), (7.7, 2.0), (9.9, 1.75), (10.0, 0.9)],
    "pickup": [(0.0, 0.9), (0.0, 2.2), (4.3, 2.2), (4.4, 3.5), (6.8, 3.5), (7.6, 2.3), (9.9, 2.1), (10.0, 0.9)],
    "van": [(0.1, 0.9), (0.15, 3.9), (7.2, 3.95), (9.0, 2.5), (9.9, 2.2), (10.0, 0.9)],
    "suv": [(0.0, 0.95), (0.0, 3.5), (6.7, 3.6), (7.9, 2.4), (9.9, 2.1), (10.0, 0.95)],
}


def car(a: dict, rng: np.random.Generator) -> list[Part]:
    body_type = a["body_type"]
    prof = np.array(_CAR_PROFILES[body_type], dtype=np.float64)
    wr = _lerp(0.75, 1.2, a["wheel_size"])
    wheels = (2.1, 7.9)
    bottom = [[10.0, 0.9]]
    for wx in wheels[::-1]:
        bottom.append(ellipse(wx, 0.9, wr + 0.15, wr * 0.9, 12, 0.0, math.pi))
    bottom.append([[0.0, 0.9]])
    outline = smooth(chain(prof[:-1], *bottom[1:]), 2, closed=True)
    parts = [shape(outline, "main", texture="metal", detail=1.0)]
    belt = float(np.interp(7.0, prof[:, 0], prof[:, 1])) if body_type != "van" else 2.5
    belt = min(belt, 2.4)
    glass = clip_halfplane(outline, [0.0, belt + 0.12], [0.0, 1.0])
    if body_type == "pickup":
        glass = clip_halfplane(glass, [4.6, 0.0], [1.0, 0.0])
    glass = shrink(glass, 0.22)
    n_win = int(a["window_count"])
    gx0, gx1 = float(glass[:, 0].min()), float(glass[:, 0].max())
    cuts = np.linspace(gx0, gx1, n_win + 1)
    for k in range(n_win):
        piece = clip_halfplane(glass, [cuts[k] + (0.12 if k else 0.0), 0.0], [1.0, 0.0])
        piece = clip_halfplane(piece, [cuts[k + 1] - (0.12 if k < n_win - 1 else 0.0), 0.0], [-1.0, 0.0])
        if len(piece) >= 3:
            parts.append(shape(piece, "window", texture="glass", detail=0.8))
    n_doors = 2 if a["door_count"] == 2 else 4
    door_xs = [gx1 - 0.1] + ([(gx0 + gx1) / 2] if n_doors == 4 else []) + [max(gx0 + 0.2, gx1 - 3.4)]
    for x in door_xs:
        parts.append(line([[x, belt + 0.1], [x - 0.05, 1.1]], width=0.05, detail=0.3))
    for x in door_xs[:-1]:
        parts.append(shape(rect(x - 0.7, belt - 0.35, x - 0.3, belt - 0.22), "dark", detail=0.15))
    stripe = a["stripe"]
    if stripe == "side":
        parts.append(shape(rect(0.4, 1.45, 9.5, 1.65), "second", detail=0.4))
    elif stripe == "racing":
        for y in (1.3, 1.7):
            parts.append(shape(rect(0.4, y, 9.5, y + 0.15), "second", detail=0.4))
    top_y = float(prof[:, 1].max())
    if a["spoiler"] == "yes":
        sy = float(prof[1, 1])
        parts.append(shape([[-0.2, sy + 0.55], [1.3, sy + 0.55], [1.2, sy + 0.75], [-0.3, sy + 0.8]], "dark", detail=0.45))
        parts.append(shape(rect(0.5, sy - 0.05, 0.7, sy + 0.6), "dark", detail=0.3))
    if a["roof_rack"] == "yes":
        roof = prof[np.isclose(prof[:, 1], top_y, atol=0.11)]
        rx0, rx1 = float(roof[:, 0].min()) + 0.3, float(roof[:, 0].max()) - 0.3
        parts.append(shape(rect(rx0, top_y + 0.3, rx1, top_y + 0.45), "dark", detail=0.45))
        for x in (rx0 + 0.3, rx1 - 0.5):
            parts.append(shape(rect(x, top_y - 0.05, x + 0.2, top_y + 0.35), "dark", detail=0.3))
    front_y = float(prof[-2, 1])
    parts.append(shape(ellipse(9.7, front_y - 0.3, 0.25, 0.17, 10), "light", detail=0.3))
    parts.append(shape(rect(0.0, 1.6, 0.25, 1.95), "fruit", detail=0.2))
    hub = a["hubcap_style"]
    for wx in wheels:
        parts.append(shape(ellipse(wx, 0.9, wr, wr, 28), "tyre", detail=0.95))
        parts.append(shape(ellipse(wx, 0.9, wr * 0.55, wr * 0.55, 20), "metal", texture="metal", detail=0.6))
        if hub == "spokes":
            for k in range(5):
                ang = 2 * math.pi * k / 5 + 0.3
                parts.append(line([[wx, 0.9], [wx + wr * 0.5 * math.cos(ang), 0.9 + wr * 0.5 * math.sin(ang)]],
                                  width=0.07, fill="dark", detail=0.2))
        elif hub == "rings":
            parts.append(shape(ellipse(wx, 0.9, wr * 0.3, wr * 0.3, 14), "dark", detail=0.25))
    return parts


BUILDERS: dict[str, Builder] = {
    "shoe": shoe, "chair": chair, "mug": mug, "lamp": lamp,
    "bottle": bottle, "house": house, "tree": tree, "car": car,
}
