"""``sbir app`` (the package): the command's argument checks, and the page itself in headless Chromium (strokes
drawn with the mouse through the browser, uploads of bad files). The search, the HTTP API and the defaults have
their own files (test_search.py, test_server.py, test_defaults.py); the gallery is built once in conftest.py.

The gallery: eight line drawings ("photos"), one checkpoint per design with a random-initialised tiny ConvNeXt
trunk. Such a model maps an image and a near copy of it close together, so a drawn copy of photo j must find
photo j first: an honest check of the whole path (canvas coordinates, PNG upload, preprocessing, the embedded
gallery's row order), which fails when any of them is wrong. The app's top-k must also equal what
``sbir_utils`` itself gives for the same PNG (``engine.encode`` + exact top-k), scores included.
"""

from __future__ import annotations

import base64
import shutil

import numpy as np
import pytest
from PIL import Image

from sbir_utils import cli
from sbir_utils.app import search
from sbir_utils.app.screenshot import draw_strokes
from sbir_utils.app.server import BackgroundServer, create_app
from tests.helpers import APP_PHOTOS, library_topk, png_bytes, render_drawing


@pytest.fixture(scope="module")
def url(gallery) -> str:
    with BackgroundServer(create_app(gallery["searchers"], "test notice")) as address:
        yield address


def test_no_reproduce_says_to_run_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SBIR_REPORTS_DIR", str(tmp_path / "reports"))
    assert cli.main(["app"]) == 2
    assert "run 'make reproduce' first" in capsys.readouterr().err
    assert cli.main(["app", "--ckpt", "a.pt"]) == 2
    assert "one --gallery per --ckpt" in capsys.readouterr().err


# ---- the page in headless Chromium -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def page(url):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("no chromium binary (apt-get install chromium)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        pg = browser.new_page(viewport={"width": 1100, "height": 760})
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.goto(url)
        pg.wait_for_selector("body[data-state=ready]")
        pg.errors = errors
        yield pg
        browser.close()


def _answered(pg, action) -> None:
    """Do ``action`` and wait until the page has shown the answer to the query it sent."""
    before = int(pg.evaluate("document.body.dataset.answers || 0"))
    action()
    pg.wait_for_function(f"Number(document.body.dataset.answers || 0) > {before}", timeout=20_000)


def _shown(pg) -> tuple[list[int], list[float]]:
    items = pg.locator("#results li")
    return ([int(items.nth(i).get_attribute("data-row")) for i in range(items.count())],
            [float(items.nth(i).get_attribute("data-score")) for i in range(items.count())])


def test_page_draw_search_undo_clear(page, gallery, tmp_path):
    page.uncheck("#live")
    j = 2
    draw_strokes(page, gallery["strokes"][j], steps=8)
    _answered(page, lambda: page.click("#search"))
    rows, scores = _shown(page)
    assert len(rows) == APP_PHOTOS and rows[0] == j  # the drawn copy of shape j finds photo j first
    assert page.locator("#results li img").first.evaluate("img => img.complete && img.naturalWidth > 0")
    drawn = base64.b64decode(page.evaluate("document.getElementById('pad').toDataURL('image/png')").split(",")[1])
    expected_rows, expected_scores = library_topk(gallery["searchers"][0], drawn, tmp_path)
    assert rows == expected_rows and scores == pytest.approx(expected_scores, abs=1e-4)
    page.screenshot(path=str(tmp_path / "app.png"))

    draw_strokes(page, [np.array([[0.05, 0.95], [0.95, 0.95]])])  # one more stroke, then undo it
    page.click("#undo")
    _answered(page, lambda: page.click("#search"))
    assert _shown(page) == (rows, scores)

    _answered(page, lambda: page.select_option("#model", "1"))  # the AAFG checkpoint, same drawing
    assert _shown(page)[0] == library_topk(gallery["searchers"][1], drawn, tmp_path)[0]

    page.click("#clear")
    assert page.locator("#results li").count() == 0
    _answered(page, lambda: page.click("#search"))
    assert "blank" in page.inner_text("#message")
    assert page.errors == []


@pytest.mark.parametrize("name, data, words", [
    ("notes.txt", b"just some text", "not an image"),
    ("empty.png", b"", "empty"),
    ("huge.png", b"\x89PNG" + bytes(search.MAX_UPLOAD_BYTES), "limit is 10.0 MB"),
    ("wide.png", png_bytes(Image.new("L", (5000, 4000), 255)), "5000 x 4000 pixels"),
])
def test_page_bad_uploads_show_a_message(page, tmp_path, name, data, words):
    (tmp_path / name).write_bytes(data)  # a path, not a buffer: playwright would send 10 MB through its pipe
    _answered(page, lambda: page.set_input_files("#file", tmp_path / name))
    assert words in page.inner_text("#message")
    assert page.locator("#results li").count() == 0


def test_page_upload_of_a_sketch_file(page, gallery):
    page.click("#clear")  # back to an empty canvas: changing the gallery then sends nothing
    page.select_option("#model", "0")
    data = png_bytes(render_drawing(gallery["strokes"][6], 300, 4))
    _answered(page, lambda: page.set_input_files("#file", files=[{"name": "s.png", "mimeType": "image/png",
                                                                    "buffer": data}]))
    assert not page.is_visible("#message")
    assert _shown(page)[0][0] == 6
