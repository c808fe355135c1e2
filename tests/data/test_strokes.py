"""`data.strokes`: stroke-3 arrays joined and split, their statistics, rasterising, RDP simplification."""

import numpy as np
import pytest

from sbir_utils.data.images import ink_coverage
from sbir_utils.data.strokes import join_strokes, rasterise, rdp, split_strokes, stroke_statistics


def test_stroke_round_trip_and_stats():
    a = np.array([[0, 0], [10, 0], [10, 10]], float)
    b = np.array([[50, 50], [80, 50]], float)
    pts = join_strokes([a, b])
    assert pts.shape == (5, 3) and pts[2, 2] == 1 and pts[4, 2] == 1
    back = split_strokes(pts)
    assert len(back) == 2 and np.allclose(back[0], a) and np.allclose(back[1], b)
    st = stroke_statistics(pts, canvas=100)
    assert st["n_strokes"] == 2 and st["n_points"] == 5
    assert st["total_length"] == pytest.approx((20 + 30) / 100)
    assert st["stroke_length"] == pytest.approx(0.25)


def test_rasterise_draws_black_on_white():
    pts = join_strokes([np.array([[10, 128], [246, 128]], float)])
    img = rasterise(pts, size=64, line_width=2)
    assert img.mode == "L" and img.size == (64, 64)
    arr = np.asarray(img)
    assert arr[32, 32] < 128 and arr[5, 5] == 255
    assert 0 < ink_coverage(img) < 0.1


def test_rdp_keeps_corners_drops_collinear_points():
    line = np.array([[0, 0], [1, 0.01], [2, 0], [3, 0], [3, 3]], float)
    out = rdp(line, epsilon=0.1)
    assert out.tolist() == [[0, 0], [3, 0], [3, 3]]


def test_bad_stroke_array_shape():
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        split_strokes(np.zeros((4, 2)))
