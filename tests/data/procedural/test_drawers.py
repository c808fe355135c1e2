"""`data.procedural.drawers`: a drawer's style is seeded and within its ranges; an object sketch is stroke-3 on
the 256 canvas with one pen width per stroke, the same for the same seed, and rasterises to a sketch."""

from __future__ import annotations

import math

import numpy as np

from sbir_utils.data.images import ink_coverage
from sbir_utils.data.procedural.drawers import (
    SCENE_OMIT_BELOW,
    STYLE_RANGES,
    drawer_style,
    raster,
    sketch_object,
)
from sbir_utils.data.procedural.shapes import build_geometry, instance_attributes, rng_for
from sbir_utils.data.strokes import CANVAS, split_strokes


def test_drawer_style_is_seeded_and_within_its_ranges():
    assert drawer_style(0, 3) == drawer_style(0, 3)
    assert drawer_style(1, 3) != drawer_style(0, 3) != drawer_style(0, 4)
    for kind, extra in (("object", 0.0), ("scene", SCENE_OMIT_BELOW)):
        for drawer in range(12):
            style = drawer_style(0, drawer, kind).to_dict()
            assert style["drawer_id"] == drawer
            for name, low, high, decimals in STYLE_RANGES:
                if name == "aspect":
                    low, high = math.exp(low), math.exp(high)
                elif name == "omit_below":
                    low, high = low + extra, high + extra
                assert low - 10 ** -decimals <= style[name] <= high + 10 ** -decimals, (kind, drawer, name)


def test_object_sketch_is_stroke3_on_the_canvas_and_seeded():
    parts = build_geometry("mug", instance_attributes("mug", 0, 10, 0))
    points, widths = sketch_object(parts, drawer_style(0, 1), rng_for(0, "test", 1))
    again, _ = sketch_object(parts, drawer_style(0, 1), rng_for(0, "test", 1))
    other, _ = sketch_object(parts, drawer_style(0, 2), rng_for(0, "test", 1))
    assert points.dtype == np.float32 and points.shape[1] == 3 and np.array_equal(points, again)
    assert not np.array_equal(points, other)
    assert len(split_strokes(points)) == len(widths) >= 2 and all(1.0 <= w <= 5.0 for w in widths)
    assert points[:, :2].min() >= 0 and points[:, :2].max() <= CANVAS
    img = raster(points, widths, 64)
    assert img.mode == "L" and img.size == (64, 64) and 0.01 < ink_coverage(img) < 0.5
