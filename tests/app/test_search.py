"""`app.search`: the search behind the page equals the library's top-k and finds the copied photo; an embed
folder is reused and checked against its checkpoint; bad queries are refused with a clear message and status."""

from __future__ import annotations

import pytest
from PIL import Image

from sbir_utils.app import search
from tests.helpers import APP_LINE, APP_PHOTOS, library_topk, png_bytes, render_drawing


@pytest.mark.parametrize("design", [0, 1], ids=["convnext", "aafg"])
def test_search_equals_the_library_and_finds_the_copied_photo(gallery, tmp_path, design):
    searcher = gallery["searchers"][design]
    assert searcher.paths == sorted(str(p) for p in (gallery["root"] / "photos").glob("*.png"))
    for j in (0, 5):
        data = png_bytes(render_drawing(gallery["strokes"][j], 512, 2 * APP_LINE))  # as the page's canvas would send it
        got = searcher.search(data, k=APP_PHOTOS)["results"]
        rows, scores = library_topk(searcher, data, tmp_path)
        assert [r["row"] for r in got] == rows
        assert [r["score"] for r in got] == pytest.approx(scores, abs=1e-4)
        assert got[0]["name"] == f"shape_{j}.png"


def test_embed_folder_reused_and_checked(gallery):
    root = gallery["root"]
    again = search.open_searcher("again", gallery["ckpts"][0], root / "embed0", no_cuda=True)  # an embed folder
    assert again.paths == gallery["searchers"][0].paths
    with pytest.raises(ValueError, match="another checkpoint"):
        search.open_searcher("wrong", gallery["ckpts"][1], root / "embed0", no_cuda=True)
    flat = search.open_searcher("flat", gallery["ckpts"][0], root / "embed0", index="flat", no_cuda=True)
    assert (root / "embed0" / "index_flat.faiss").is_file() and len(flat.index) == APP_PHOTOS


@pytest.mark.parametrize("data, status, words", [
    (b"", 400, "empty"),
    (b"not an image at all", 415, "not an image"),
    (b"\x89PNG" + b"0" * (search.MAX_UPLOAD_BYTES), 413, "limit is 10.0 MB"),
    (png_bytes(Image.new("L", (5000, 4000), 255)), 413, "5000 x 4000 pixels"),
    (png_bytes(Image.new("L", (300, 200), 255)), 422, "blank"),
])
def test_bad_queries_are_refused_with_a_clear_message(gallery, data, status, words):
    with pytest.raises(search.QueryError, match=words) as info:
        gallery["searchers"][0].search(data)
    assert info.value.status == status
