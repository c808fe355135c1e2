"""`data.procedural.render`: backgrounds, an object's pose in the frame, and the rendered photo."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sbir_utils.data.procedural import render
from sbir_utils.data.procedural.geometry import bounds
from sbir_utils.data.procedural.shapes import build_geometry, colour_roles, complete_attributes, rng_for


@pytest.mark.parametrize("kind", render.BACKGROUNDS)
def test_every_background_is_a_float_canvas_in_0_1(kind):
    img = render.background(kind, 40, np.random.default_rng(0))
    assert img.shape == (40, 40, 3) and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0
    assert np.array_equal(img, render.background(kind, 40, np.random.default_rng(0)))


def test_unknown_background_is_named():
    with pytest.raises(ValueError, match="unknown background 'space'; known: "):
        render.background("space", 8, np.random.default_rng(0))


def test_photo_pose_is_within_its_ranges_and_place_in_frame_keeps_the_object_inside():
    parts = build_geometry("mug", complete_attributes("mug", None, 0))
    for seed in range(20):
        pose = render.photo_pose(np.random.default_rng(seed))
        assert abs(pose["rotation"]) <= render.PHOTO_ROTATION
        assert render.PHOTO_SCALE[0] <= pose["scale"] <= render.PHOTO_SCALE[1]
        lo, hi = bounds(render.place_in_frame(parts, pose, 100.0))
        assert (lo >= 3.0 - 1e-9).all() and (hi <= 97.0 + 1e-9).all()  # the 3 % margin


def test_render_photo_is_deterministic_and_draws_the_object():
    attrs = complete_attributes("chair", None, 2)
    parts = build_geometry("chair", attrs)

    def photo(seed: int, kind: str = "plain") -> Image.Image:
        rng = rng_for(seed, "photo")
        return render.render_photo(parts, colour_roles("chair", attrs, rng), 48, rng, background_kind=kind)

    a = photo(1)
    assert a.size == (48, 48) and a.mode == "RGB"
    assert np.array_equal(np.asarray(a), np.asarray(photo(1)))
    assert not np.array_equal(np.asarray(a), np.asarray(photo(2)))
    plain = render.to_image(render.background("plain", 96, rng_for(1, "photo")), 48)
    assert np.abs(np.asarray(a, dtype=int) - np.asarray(plain, dtype=int)).max() > 50  # something was drawn


def test_to_image_downsamples_by_an_integer_factor_or_resizes():
    canvas = np.zeros((30, 30, 3), dtype=np.float32)
    canvas[:, 15:] = 1.0
    img = render.to_image(canvas, 15)
    assert img.size == (15, 15) and np.asarray(img)[0, 0].tolist() == [0, 0, 0]
    assert np.asarray(img)[0, -1].tolist() == [255, 255, 255]
    assert render.to_image(canvas, 20).size == (20, 20)
