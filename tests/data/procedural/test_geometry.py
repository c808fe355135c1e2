"""`data.procedural.geometry`: the vector helpers objects are built from."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sbir_utils.data.procedural.geometry import (
    Part,
    affine,
    bezier,
    bounds,
    chain,
    clip_halfplane,
    ellipse,
    length,
    lerp,
    line,
    mirror_x,
    normalise,
    place,
    rect,
    resample,
    rounded_rect,
    shape,
    shrink,
    smooth,
    tube,
)


def test_parts_closed_and_open():
    s, ln = shape(rect(0, 0, 1, 1)), line([[0, 0], [1, 0]])
    assert s.closed and s.fill == "main" and s.points.dtype == np.float64
    assert not ln.closed and ln.fill == "dark" and ln.width == 0.08
    assert np.array_equal(s.with_points([[1, 2]]).points, [[1.0, 2.0]]) and s.with_points([[1, 2]]).closed


def test_bezier_ellipse_and_rounded_rect():
    curve = bezier([0, 0], [1, 2], [2, 0], n=5)
    assert np.allclose(curve[0], [0, 0]) and np.allclose(curve[-1], [2, 0]) and np.allclose(curve[2], [1, 1])
    ring = ellipse(1, 2, 3, 1, n=8)
    assert len(ring) == 8 and np.allclose(((ring[:, 0] - 1) / 3) ** 2 + (ring[:, 1] - 2) ** 2, 1)
    arc = ellipse(0, 0, 1, 1, n=3, a0=0, a1=math.pi)
    assert np.allclose(arc, [[1, 0], [0, 1], [-1, 0]])  # an arc keeps both ends
    rr = rounded_rect(0, 0, 4, 2, r=5)  # radius capped at half the short side
    lo, hi = rr.min(axis=0), rr.max(axis=0)
    assert np.allclose(lo, [0, 0]) and np.allclose(hi, [4, 2])


def test_chain_drops_the_shared_vertex_and_tube_is_a_closed_band():
    assert chain([[0, 0], [1, 0]], [[1, 0], [2, 0]]).tolist() == [[0, 0], [1, 0], [2, 0]]
    band = tube([[0, 0], [1, 0], [2, 0]], width=0.5)
    assert band.shape == (6, 2) and np.allclose(sorted(set(band[:, 1].round(6))), [-0.25, 0.25])
    tapered = tube([[0, 0], [2, 0]], width=1.0, width_end=0.0)
    assert np.allclose(np.abs(tapered[:, 1]), [0.5, 0.0, 0.0, 0.5])


def test_mirror_lerp_bounds_and_normalise():
    assert mirror_x([[1, 5], [3, 6]], x=2).tolist() == [[3, 5], [1, 6]]
    assert lerp(2, 4, 0.25) == 2.5
    parts = [shape(rect(0, 0, 2, 4)), line([[1, 4], [1, 6]], width=0.6)]
    lo, hi = bounds(parts)
    assert lo.tolist() == [0, 0] and hi.tolist() == [2, 6]
    unit = normalise(parts)
    lo, hi = bounds(unit)
    assert np.allclose(lo, [-1 / 6, -0.5]) and np.allclose(hi, [1 / 6, 0.5])  # centred, longest side 1
    assert unit[1].points[1, 1] == pytest.approx(-0.5)  # y flipped: the top (y = 6) is now up on screen
    assert unit[1].width == pytest.approx(0.1)


def test_affine_and_place():
    assert np.allclose(affine(flip=True), [[-1, 0], [0, 1]])
    assert np.allclose(affine(90) @ [1, 0], [0, 1])
    assert np.allclose(affine(scale=(2, 3), shear=0.5) @ [0, 1], [1, 3])
    placed = place([line([[0, 0], [1, 0]], width=0.1)], affine(scale=4), offset=[10, 20])
    assert placed[0].points.tolist() == [[10, 20], [14, 20]] and placed[0].width == pytest.approx(0.4)


def test_resample_length_and_degenerate_lines():
    pts = resample(np.array([[0, 0], [10, 0]]), step=2.5)
    assert len(pts) == 5 and np.allclose(np.diff(pts[:, 0]), 2.5)
    square = rect(0, 0, 1, 1)
    closed = resample(square, 0.5, closed=True)
    assert np.allclose(closed[0], closed[-1]) and length(closed) == pytest.approx(4.0)
    assert length(np.array([[0, 0]])) == 0.0 and len(resample(np.array([[1, 1], [1, 1]]), 1.0)) == 1


def test_clip_smooth_and_shrink():
    half = clip_halfplane(rect(0, 0, 2, 2), point=[1, 0], normal=[1, 0])
    assert np.allclose(half.min(axis=0), [1, 0]) and np.allclose(half.max(axis=0), [2, 2])
    assert len(clip_halfplane(rect(0, 0, 1, 1), [5, 0], [1, 0])) == 0
    rounded = smooth(rect(0, 0, 1, 1), iterations=1)
    assert len(rounded) == 8 and not any(np.allclose(p, c) for p in rounded for c in rect(0, 0, 1, 1))
    open_line = smooth([[0, 0], [1, 1], [2, 0]], closed=False)
    assert np.allclose(open_line[0], [0, 0]) and np.allclose(open_line[-1], [2, 0])
    inset = shrink(rect(0, 0, 2, 2), 0.1)
    assert np.allclose(inset.mean(axis=0), [1, 1]) and (np.ptp(inset, axis=0) < 2).all()
    assert isinstance(shape(inset), Part)
