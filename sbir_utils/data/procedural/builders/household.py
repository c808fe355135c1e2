"""Builders of household objects: chair, mug, lamp and bottle."""

from __future__ import annotations

import math

import numpy as np

from ..geometry import (
    Part,
    bezier,
    chain,
    clip_halfplane,
    ellipse,
    lerp,
    line,
    mirror_x,
    rect,
    rounded_rect,
    shape,
    smooth,
    tube,
)

_SLENDER_LEGS = ("straight", "tapered", "splayed")  # four legs (the other styles: pedestal, sled)


def chair(a: dict, rng: np.random.Generator) -> list[Part]:
    w, dx, dz = 4.0, 0.5, 0.9
    sh = lerp(2.2, 3.8, a["leg_length"])
    st = lerp(0.15, 0.65, a["seat_thickness"])
    bh = lerp(2.2, 5.0, a["back_height"])
    leg_w = 0.32
    parts = _chair_back_legs(a["leg_style"], w, dx, dz, sh, leg_w)  # partly hidden by the seat
    parts += _chair_back(a, w, dx, dz, sh, bh)
    seat = np.array([[0, sh - st], [w, sh - st], [w, sh], [w - dx, sh + dz], [dx, sh + dz], [0, sh]])
    parts += _chair_base(a, w, sh, st, leg_w)
    parts.append(shape(seat, "second", texture=a.get("texture", "plain"), detail=1.0))
    parts.append(line([[0.05, sh], [w - 0.05, sh]], width=0.05, detail=0.55))
    parts += _chair_arms(a["armrests"], w, dx, dz, sh)
    return parts


def _chair_back_legs(style: str, w: float, dx: float, dz: float, sh: float, leg_w: float) -> list[Part]:
    parts: list[Part] = []
    if style in _SLENDER_LEGS:
        for x in (dx + 0.05, w - dx - 0.05 - leg_w * 0.8):
            spread = -0.35 if style == "splayed" and x < w / 2 else (0.35 if style == "splayed" else 0.0)
            parts.append(shape([[x, sh + dz - 0.1], [x + leg_w * 0.8, sh + dz - 0.1],
                                [x + leg_w * 0.8 + spread, 0.7], [x + spread, 0.7]], "wood", texture="wood", detail=0.5))
    return parts


def _chair_back(a: dict, w: float, dx: float, dz: float, sh: float, bh: float) -> list[Part]:
    """The back rest: its outline by ``back_shape``, solid or a top rail over ``slat_count`` slats."""
    parts: list[Part] = []
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
            cx = lerp(inner_x0, inner_x1, (k + 1) / (n_slats + 1))
            parts.append(shape(rect(cx - 0.12, y0, cx + 0.12, top - 0.7 - 0.1 * bh + 0.05), "main", detail=0.4))
    return parts


def _chair_base(a: dict, w: float, sh: float, st: float, leg_w: float) -> list[Part]:
    """What holds the seat up, by ``leg_style``: front legs and a ``stretcher``, a pedestal or a sled."""
    parts: list[Part] = []
    style = a["leg_style"]
    if style in _SLENDER_LEGS:
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
    return parts


def _chair_arms(arms: str, w: float, dx: float, dz: float, sh: float) -> list[Part]:
    parts: list[Part] = []
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
    radius, height = 1.6, lerp(2.6, 5.0, a["height"])
    t = np.linspace(0.0, 1.0, 14)
    r = _mug_profile(a["body_shape"], radius, t)
    ry = 0.32
    parts: list[Part] = []
    if a["saucer"] == "yes":
        parts.append(shape(ellipse(0.0, 0.05, radius * 1.9, 0.5, 32), "second", detail=0.6))
    # handle (its ends are hidden by the body drawn after it)
    ht = lerp(0.22, 0.6, a["handle_thickness"])
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
    stem_h = lerp(2.2, 5.0, a["stem_height"])
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
    sh_h = lerp(1.5, 3.4, a["shade_height"])
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
        y = lerp(y0, y1, f)
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
    height = lerp(4.5, 8.0, a["height"])
    neck = lerp(0.6, 2.4, a["neck_length"])
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
