"""``sbir app``: the search behind the page, the HTTP API, the defaults of the latest ``make reproduce``, and the
page itself in headless Chromium (strokes drawn with the mouse through the browser, uploads of bad files).

The gallery: eight line drawings ("photos"), one checkpoint per design with a random-initialised tiny ConvNeXt
trunk. Such a model maps an image and a near copy of it close together, so a drawn copy of photo j must find
photo j first: an honest check of the whole path (canvas coordinates, PNG upload, preprocessing, the embedded
gallery's row order), which fails when any of them is wrong. The app's top-k must also equal what
``sbir_utils`` itself gives for the same PNG (``engine.encode`` + exact top-k), scores included.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from sbir_utils import cli
from sbir_utils.app import defaults, search
from sbir_utils.app.screenshot import draw_strokes
from sbir_utils.app.server import BackgroundServer, create_app
from sbir_utils.config import TrainConfig
from sbir_utils.engine import encode
from sbir_utils.models import build_model
from sbir_utils.retrieval import topk

N_PHOTOS, PHOTO_SIZE, LINE = 8, 256, 3  # LINE px at 256 is the page's default stroke of 6 px at 512
CFG = TrainConfig(model="convnext_infonce", backbone="test_convnext", image_size=64, embed_dim=16, weights="random")


def shapes(seed: int = 0) -> list[list[np.ndarray]]:
    """N_PHOTOS drawings of three random polylines each, coordinates in [0.1, 0.9]."""
    rng = np.random.default_rng(seed)
    return [[rng.uniform(0.1, 0.9, size=(int(rng.integers(2, 5)), 2)) for _ in range(3)] for _ in range(N_PHOTOS)]


def render(strokes: list[np.ndarray], size: int, width: int) -> Image.Image:
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    for s in strokes:
        draw.line([tuple(p * size) for p in s], fill="black", width=width, joint="curve")
    return img


def save_checkpoint(cfg: TrainConfig, path: Path) -> Path:
    torch.manual_seed(0)
    model = build_model(cfg, weights="random")
    torch.save({"format": 1, "epoch": 0, "model": model.state_dict(), "config": dataclasses.asdict(cfg)}, path)
    return path


@pytest.fixture(scope="module")
def gallery(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("app")
    (root / "photos").mkdir()
    drawings = shapes()
    for i, strokes in enumerate(drawings):
        render(strokes, PHOTO_SIZE, LINE).save(root / "photos" / f"shape_{i}.png")
    ckpts = [save_checkpoint(CFG, root / "convnext.pt"),
             save_checkpoint(dataclasses.replace(CFG, model="aafg"), root / "aafg.pt")]
    searchers = [search.open_searcher(f"design {i}", c, root / "photos", embed_dir=root / f"embed{i}", no_cuda=True)
                 for i, c in enumerate(ckpts)]
    return {"root": root, "strokes": drawings, "ckpts": ckpts, "searchers": searchers}


@pytest.fixture(scope="module")
def url(gallery) -> str:
    with BackgroundServer(create_app(gallery["searchers"], "test notice")) as address:
        yield address


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def library_topk(searcher: search.Searcher, data: bytes, tmp: Path) -> tuple[list[int], list[float]]:
    """What ``sbir_utils`` gives for the query ``data``: ``engine.encode`` of sketch and photos, exact top-k."""
    query = tmp / "query.png"
    query.write_bytes(data)
    q, _ = encode(searcher.model, [str(query)], "sketch", searcher.cfg.image_size, crop=searcher.cfg.crop)
    g, _ = encode(searcher.model, searcher.paths, "photo", searcher.cfg.image_size,
                  photo_mode=searcher.cfg.photo_mode, crop=searcher.cfg.crop)
    scores, idx = topk(q, g, len(searcher.paths))
    return idx[0].tolist(), scores[0].tolist()


# ---- the search ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("design", [0, 1], ids=["convnext", "aafg"])
def test_search_equals_the_library_and_finds_the_copied_photo(gallery, tmp_path, design):
    searcher = gallery["searchers"][design]
    assert searcher.paths == sorted(str(p) for p in (gallery["root"] / "photos").glob("*.png"))
    for j in (0, 5):
        data = png_bytes(render(gallery["strokes"][j], 512, 2 * LINE))  # as the page's canvas would send it
        got = searcher.search(data, k=N_PHOTOS)["results"]
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
    assert (root / "embed0" / "index_flat.faiss").is_file() and len(flat.index) == N_PHOTOS


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


# ---- the HTTP API ----------------------------------------------------------------------------------------

def _post(url: str, data: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "image/png"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_http_api(url, gallery):
    with urllib.request.urlopen(url + "/api/models", timeout=10) as resp:
        info = json.load(resp)
    assert info["notice"] == "test notice" and [m["model"] for m in info["models"]] == ["convnext_infonce", "aafg"]
    data = png_bytes(render(gallery["strokes"][3], 512, 2 * LINE))
    status, body = _post(url + "/api/search?model=1&k=3", data)
    assert status == 200 and len(body["results"]) == 3 and body["results"][0]["name"] == "shape_3.png"
    assert _post(url + "/api/search?model=7", data)[0] == 404
    assert _post(url + "/api/search?k=0", data) == (400, {"error": "k must be between 1 and 50."})
    status, body = _post(url + "/api/search", b"x" * (search.MAX_UPLOAD_BYTES + 1))
    assert status == 413 and "limit" in body["error"]
    with urllib.request.urlopen(url + "/api/photo/0/3", timeout=10) as resp:
        assert Image.open(io.BytesIO(resp.read())).size == (PHOTO_SIZE, PHOTO_SIZE)
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url + f"/api/photo/0/{N_PHOTOS}", timeout=10)
    assert info.value.code == 404


# ---- defaults and the command line -----------------------------------------------------------------------

def test_no_reproduce_says_to_run_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SBIR_REPORTS_DIR", str(tmp_path / "reports"))
    assert cli.main(["app"]) == 2
    assert "run 'make reproduce' first" in capsys.readouterr().err
    assert cli.main(["app", "--ckpt", "a.pt"]) == 2
    assert "one --gallery per --ckpt" in capsys.readouterr().err


def test_defaults_are_the_latest_reproduce_runs(tmp_path, monkeypatch, gallery):
    from sbir_utils.config import load_profile
    from sbir_utils.study import aafg_runs, convnext_runs, run_dir

    monkeypatch.setenv("SBIR_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("SBIR_RUNS_DIR", str(tmp_path / "runs"))
    (tmp_path / "reports").mkdir()
    meta = {"profile": "smoke", "dataset": "embedded", "data_root": None, "finished": "2026-01-02T03:04:05"}
    (tmp_path / "reports" / "run_metadata.json").write_text(json.dumps(meta))
    with pytest.raises(defaults.NoReproduceError, match="make reproduce"):
        defaults.latest_reproduce_sources()  # the metadata is there, the checkpoints are not
    profile = load_profile("smoke")
    expected = [run_dir(profile, r, "embedded") / "checkpoints" / "best.pt"
                for r in (next(r for r in aafg_runs(profile) if r.name == "aafg-fine-SA+CA"), convnext_runs(profile)[0])]
    for ckpt, src in zip(expected, gallery["ckpts"][::-1]):
        ckpt.parent.mkdir(parents=True)
        shutil.copy(src, ckpt)
    monkeypatch.setattr(defaults, "_test_gallery", lambda profile, run, dataset, root: (["p.png"], ["p"]))
    sources, notice = defaults.latest_reproduce_sources()
    assert [s.checkpoint for s in sources] == expected
    assert "latest 'make reproduce' (profile smoke" in notice and "2026-01-02T03:04:05" in notice


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
    assert len(rows) == N_PHOTOS and rows[0] == j  # the drawn copy of shape j finds photo j first
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
    data = png_bytes(render(gallery["strokes"][6], 300, 4))
    _answered(page, lambda: page.set_input_files("#file", files=[{"name": "s.png", "mimeType": "image/png",
                                                                    "buffer": data}]))
    assert not page.is_visible("#message")
    assert _shown(page)[0][0] == 6
