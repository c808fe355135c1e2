"""`app.screenshot`: the sketch it draws is the first stroke file of a gallery photo whose raster sketch finds
that photo first, scaled to [0, 1]; the strokes are drawn with the mouse inside the canvas, one press each."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from sbir_utils.app.screenshot import draw_strokes, drawn_sketch
from sbir_utils.data.strokes import CANVAS, join_strokes


class _Searcher:
    """Answers a query with the row its bytes name (b"row 1" -> row 1), as a gallery search would."""

    def search(self, data: bytes, k: int) -> dict:
        return {"results": [{"row": int(data.split()[1])}][:k]}


def _embedded(root, name: str, sketches: dict[int, int]) -> str:
    """photos/cup/NAME.png with one stroke file and raster sketch per {k: row the raster finds}."""
    for folder in ("photos", "strokes", "sketches"):
        (root / folder / "cup").mkdir(parents=True, exist_ok=True)
    for k, row in sketches.items():
        strokes = [np.array([[0.0, 0.0], [CANVAS, CANVAS / 2]]) + k, np.array([[10.0, 20.0], [30.0, 40.0]])]
        np.save(root / "strokes" / "cup" / f"{name}-{k}.npy", join_strokes(strokes))
        (root / "sketches" / "cup" / f"{name}-{k}.png").write_bytes(f"row {row}".encode())
    return str(root / "photos" / "cup" / f"{name}.png")


def test_drawn_sketch_is_the_first_one_that_finds_its_photo(tmp_path):
    photos = [_embedded(tmp_path, "a", {1: 1, 2: 1}), _embedded(tmp_path, "b", {1: 0, 2: 1, 3: 1})]
    strokes = drawn_sketch(_Searcher(), photos)  # photo a's sketches find row 1; b's second sketch finds b
    assert len(strokes) == 2
    np.testing.assert_allclose(strokes[0], (np.array([[0.0, 0.0], [CANVAS, CANVAS / 2]]) + 2) / CANVAS)
    np.testing.assert_allclose(strokes[1], np.array([[10.0, 20.0], [30.0, 40.0]]) / CANVAS)
    with pytest.raises(FileNotFoundError, match="finds its photo first"):
        drawn_sketch(_Searcher(), photos[:1])


def test_draw_strokes_presses_once_per_stroke_inside_the_canvas():
    calls = []
    mouse = SimpleNamespace(move=lambda x, y, steps=1: calls.append(("move", x, y, steps)),
                            down=lambda: calls.append(("down",)), up=lambda: calls.append(("up",)))
    page = SimpleNamespace(mouse=mouse, locator=lambda sel: SimpleNamespace(
        bounding_box=lambda: {"x": 10, "y": 20, "width": 200, "height": 100}))
    draw_strokes(page, [np.array([[0.0, 0.0], [0.5, 1.0], [1.0, 0.5]]), np.array([[0.25, 0.25], [0.75, 0.75]])],
                 steps=3)
    assert calls == [("move", 10.0, 20.0, 1), ("down",), ("move", 110.0, 120.0, 3), ("move", 210.0, 70.0, 3), ("up",),
                     ("move", 60.0, 45.0, 1), ("down",), ("move", 160.0, 95.0, 3), ("up",)]
