"""The app tests' gallery, built once for tests/app/: eight line drawings ("photos") and one checkpoint per design
with a random-initialised tiny ConvNeXt trunk, each opened as a searcher (see tests/app/test_app.py)."""

from __future__ import annotations

import dataclasses

import pytest

from sbir_utils.app import search
from tests.helpers import (
    APP_CFG,
    APP_LINE,
    APP_PHOTO_SIZE,
    app_drawings,
    render_drawing,
    save_random_checkpoint,
)


@pytest.fixture(scope="package")
def gallery(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("app")
    (root / "photos").mkdir()
    drawings = app_drawings()
    for i, strokes in enumerate(drawings):
        render_drawing(strokes, APP_PHOTO_SIZE, APP_LINE).save(root / "photos" / f"shape_{i}.png")
    ckpts = [save_random_checkpoint(APP_CFG, root / "convnext.pt"),
             save_random_checkpoint(dataclasses.replace(APP_CFG, model="aafg"), root / "aafg.pt")]
    searchers = [search.open_searcher(f"design {i}", c, root / "photos", embed_dir=root / f"embed{i}", no_cuda=True)
                 for i, c in enumerate(ckpts)]
    return {"root": root, "strokes": drawings, "ckpts": ckpts, "searchers": searchers}
