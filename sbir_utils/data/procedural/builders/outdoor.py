"""Builders of outdoor objects: house, tree and car."""

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
    rect,
    shape,
    shrink,
    smooth,
    tube,
)


def house(a: dict, rng: np.random.Generator) -> list[Part]:
    w = lerp(5.0, 8.5, a["width"])
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
    th = lerp(1.5, 4.0, a["trunk_height"])
    tw = lerp(0.35, 1.1, a["trunk_width"])
    cs = lerp(2.6, 5.0, a["crown_size"])
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
    wr = lerp(0.75, 1.2, a["wheel_size"])
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
