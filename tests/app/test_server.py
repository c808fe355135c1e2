"""`app.server`: the HTTP API (models, search, photos) on a background server, with its error statuses."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request

import pytest
from PIL import Image

from sbir_utils.app import search
from sbir_utils.app.server import BackgroundServer, create_app
from tests.helpers import APP_LINE, APP_PHOTO_SIZE, APP_PHOTOS, png_bytes, render_drawing


@pytest.fixture(scope="module")
def url(gallery) -> str:
    with BackgroundServer(create_app(gallery["searchers"], "test notice")) as address:
        yield address


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
    data = png_bytes(render_drawing(gallery["strokes"][3], 512, 2 * APP_LINE))
    status, body = _post(url + "/api/search?model=1&k=3", data)
    assert status == 200 and len(body["results"]) == 3 and body["results"][0]["name"] == "shape_3.png"
    assert _post(url + "/api/search?model=7", data)[0] == 404
    assert _post(url + "/api/search?k=0", data) == (400, {"error": "k must be between 1 and 50."})
    status, body = _post(url + "/api/search", b"x" * (search.MAX_UPLOAD_BYTES + 1))
    assert status == 413 and "limit" in body["error"]
    with urllib.request.urlopen(url + "/api/photo/0/3", timeout=10) as resp:
        assert Image.open(io.BytesIO(resp.read())).size == (APP_PHOTO_SIZE, APP_PHOTO_SIZE)
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url + f"/api/photo/0/{APP_PHOTOS}", timeout=10)
    assert info.value.code == 404
