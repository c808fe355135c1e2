"""A screenshot of the app with results (``docs/img/app.png``): the app opens the latest ``make reproduce`` as
``sbir app`` does, headless Chromium draws the strokes of a test sketch of the embedded set on the canvas with the
mouse, searches, and the page is saved. Needs playwright and a ``chromium`` binary (as ``tests/app/test_app.py``).

    .venv/bin/python -m sbir_utils.app.screenshot [--out docs/img/app.png] [--gallery 0]
"""

from __future__ import annotations

import argparse
import io
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.strokes import CANVAS, split_strokes


def drawn_sketch(searcher, photos: list[str]) -> list[np.ndarray]:
    """The polylines (in [0, 1]) of an embedded-set sketch of a gallery photo, from its stroke-3 file
    ``strokes/<category>/<name>-<k>.npy``: the first whose raster sketch (``sketches/``) finds its photo first."""
    for row, photo in enumerate(photos):
        root, name = Path(photo).parent.parent.parent, Path(photo).stem
        for npy in sorted((root / "strokes").glob(f"*/{name}-*.npy")):
            raster = root / "sketches" / npy.parent.name / (npy.stem + ".png")
            if raster.is_file() and searcher.search(raster.read_bytes(), 1)["results"][0]["row"] == row:
                return [s / CANVAS for s in split_strokes(np.load(npy, allow_pickle=False))]
    raise FileNotFoundError("no sketch with strokes that finds its photo first (an embedded-set object gallery is needed)")


def draw_strokes(page, strokes: list[np.ndarray], steps: int = 1) -> None:
    """Draw polylines (coordinates in [0, 1] of the canvas) on the page's canvas with the mouse, one stroke per
    press; ``steps`` mouse moves per segment (more: more pointer events)."""
    box = page.locator("#pad").bounding_box()
    for stroke in strokes:
        points = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for p in points[1:]:
            page.mouse.move(*p, steps=steps)
        page.mouse.up()


def shoot(out: Path, gallery: int = 0) -> Path:
    """Open the app on the latest ``make reproduce``, draw a test sketch, search and save the page to ``out``."""
    from playwright.sync_api import sync_playwright

    from . import build_searchers
    from .defaults import latest_reproduce_sources
    from .server import BackgroundServer, create_app

    args = argparse.Namespace(ckpt=[], gallery=[], index="exact", embed_dir=None, no_cuda=True)
    searchers, notice = build_searchers(args)
    strokes = drawn_sketch(searchers[gallery], latest_reproduce_sources()[0][gallery].photos)
    with BackgroundServer(create_app(searchers, notice)) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1120, "height": 700})
        page.goto(url)
        page.wait_for_selector("body[data-state=ready]")
        page.select_option("#model", str(gallery))
        page.uncheck("#live")
        draw_strokes(page, strokes)
        page.click("#search")
        page.wait_for_selector("body[data-state=done]")
        page.wait_for_function("Array.from(document.images).every(im => im.complete)")
        png = page.screenshot()
        browser.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=128).save(out, optimize=True)  # small for the README
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/img/app.png"))
    parser.add_argument("--gallery", type=int, default=0, help="which gallery of the page (0: AAFG, objects)")
    args = parser.parse_args()
    print(shoot(args.out, args.gallery))


if __name__ == "__main__":
    main()
