"""The shoe builder (the study's fine-grained category): sole, heel, upper, stripes, toe cap, heel tab
and laces, in object units (length ~10, y up)."""

from __future__ import annotations

import numpy as np

from ..geometry import (
    Part,
    bezier,
    chain,
    clip_halfplane,
    lerp,
    line,
    rounded_rect,
    shape,
    tube,
)


def shoe(a: dict, rng: np.random.Generator) -> list[Part]:
    hh = lerp(0.0, 3.0, a["heel_height"])
    st = lerp(0.3, 1.1, a["sole_thickness"])
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
