"""`data.procedural.scenes`: composing a scene, its caption, its photo and a drawer's sketch of it."""

from __future__ import annotations

import numpy as np

from sbir_utils.data.procedural import render, scenes
from sbir_utils.data.procedural.drawers import drawer_style
from sbir_utils.data.procedural.geometry import bounds

CATEGORIES = ["mug", "chair", "lamp", "house", "tree"]


def _scene(seed: int, canvas: float = 200.0) -> scenes.Scene:
    return scenes.compose_scene(CATEGORIES, np.random.default_rng(seed), seed, canvas)


def test_scene_has_2_to_5_objects_inside_the_canvas_and_rooms_are_indoor():
    for seed in range(12):
        scene = _scene(seed)
        assert scene.background in scenes.SCENE_BACKGROUNDS and 2 <= len(scene.objects) <= 5
        for obj in scene.objects:
            lo, hi = bounds(obj.parts)
            assert lo[0] >= -1e-6 and hi[0] <= 200 + 1e-6
            if scene.background == "room":
                assert obj.category not in scenes.OUTDOOR_ONLY
        assert len(scene.caption.split()) >= 4


def test_same_seed_same_scene():
    a, b = _scene(4), _scene(4)
    assert a.caption == b.caption and [o.category for o in a.objects] == [o.category for o in b.objects]
    assert all(np.array_equal(p.points, q.points) for o, m in zip(a.objects, b.objects)
               for p, q in zip(o.parts, m.parts))


def test_caption_names_the_setting():
    settings = {"sky": ("under a blue sky", "on the grass", "outside"), "room": ("in a room", "indoors", "on the floor"),
                "ground": ("on the ground", "in a field", "on a sandy ground")}
    for seed in range(6):
        scene = _scene(seed)
        assert scene.caption.endswith(settings[scene.background])


def test_photo_canvas_and_sketch():
    scene = _scene(1, canvas=64 * render.SUPERSAMPLE)
    img = scenes.render_scene_photo(scene, 64, np.random.default_rng(0))
    assert img.shape == (128, 128, 3) and 0.0 <= img.min() and img.max() <= 1.0
    strokes, widths, drawn = scenes.sketch_scene(scene, drawer_style(0, 1, "scene"), np.random.default_rng(0),
                                                 photo_canvas=128)
    assert strokes.dtype == np.float32 and strokes.ndim == 2 and strokes.shape[1] == 3 and len(strokes) > 10
    assert len(drawn) == len(scene.objects) and any(drawn) and len(widths) >= 1
    assert set(np.unique(strokes[:, 2])) <= {0.0, 1.0}  # pen-lift flags
