"""Helpers shared by test files in several folders (import them as ``from tests.helpers import ...``).

- ``make_tiny_dataset``: a small paired set written with PIL: each photo is a few coloured rectangles, its
  sketches are their outlines drawn by different "hands" (the data and model/engine/CLI tests train on it).
- ``TINY_TRAIN_ARGS``: flags for a one-second ``sbir train`` run (timm's tiny test ResNet at 32 px).
- ``make_fscoco`` / ``write_image``: a raw FS-COCO folder layout of 8x8 images.
- ``fake_results``: a hand-made ``analysis.RunResults`` (no training) for the small analysis module tests.
- ``APP_*``, ``app_drawings``, ``render_drawing``, ``save_random_checkpoint``, ``png_bytes``, ``library_topk``:
  the app tests' gallery of line drawings and what ``sbir_utils`` itself answers for a query.
- ``random_images``: a seeded batch of random images (N, 3, size, size) for the model tests.
- ``hard_links_work``: whether a folder's filesystem makes hard links.
- ``REPO``, ``SHARED_DATA``: the checkout, and the development data beside it (``../shared/data``), for test
  files at any depth under tests/.
"""

from __future__ import annotations

import dataclasses
import io
import os
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageDraw

from sbir_utils.config import TrainConfig
from sbir_utils.data.index import write_index, write_spec

if TYPE_CHECKING:
    from sbir_utils import analysis
    from sbir_utils.app import search

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TINY_TRAIN_ARGS = ["--profile", "smoke", "--backbone", "test_resnet", "--image_size", "32", "--epochs", "1",
                   "--batch_size", "8", "--embed_dim", "16", "--no_progress"]


def make_tiny_dataset(root: Path, photos: tuple[int, int, int] = (8, 4, 4), sketches: int = 2, size: int = 48,
                      protocol: str = "fine", classes: int = 4, seed: int = 0) -> Path:
    """Write photos/, sketches/, index_{train,val,test}.csv and dataset.json under ``root``.

    ``protocol="fine"``: label = photo id; ``"category"``: label = class (photo i is class i % classes).
    """
    rng = np.random.default_rng(seed)
    (root / "photos").mkdir(parents=True, exist_ok=True)
    (root / "sketches").mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict[str, str]]] = {}
    pid = 0
    for split, n in zip(("train", "val", "test"), photos):
        rows[split] = []
        for _ in range(n):
            boxes = []
            for _ in range(3):
                x0, y0 = rng.integers(2, size // 2, 2)
                w, h = rng.integers(8, size // 2, 2)
                boxes.append((int(x0), int(y0), int(min(x0 + w, size - 2)), int(min(y0 + h, size - 2))))
            photo = Image.new("RGB", (size, size), "white")
            d = ImageDraw.Draw(photo)
            for b in boxes:
                d.rectangle(b, fill=tuple(int(c) for c in rng.integers(0, 230, 3)))
            name = f"p{pid:03d}"
            photo.save(root / "photos" / f"{name}.png")
            label = name if protocol == "fine" else f"class{pid % classes}"
            for k in range(sketches):
                sk = Image.new("L", (size, size), 255)
                ds = ImageDraw.Draw(sk)
                for b in boxes:
                    j = rng.integers(-1, 2, 4)
                    ds.rectangle(tuple(int(v) for v in np.array(b) + j), outline=0, width=1 + k % 2)
                sk.save(root / "sketches" / f"{name}-{k + 1}.png")
                rows[split].append({"path_sketch": f"sketches/{name}-{k + 1}.png",
                                    "path_image": f"photos/{name}.png", "label": label})
            pid += 1
    for split, r in rows.items():
        write_index(pd.DataFrame(r), root / f"index_{split}.csv")
    write_spec(root, name="tiny", protocol=protocol)
    return root


FSCOCO_USERS, FSCOCO_PER_USER = 3, 4


def write_image(path: Path, mode: str = "RGB") -> None:
    """An 8x8 image of one colour (white when ``mode`` is "L"), its folders made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (8, 8), 255 if mode == "L" else (40, 90, 140)).save(path)


def make_fscoco(root: Path, users: int = FSCOCO_USERS, per_user: int = FSCOCO_PER_USER) -> Path:
    """A raw FS-COCO layout: images/<user>/<id>.jpg, raster_sketches/<user>/<id>.jpg, val_normal.txt."""
    ids = []
    for u in range(1, users + 1):
        for j in range(per_user):
            pid = f"{u * 1000 + j:012d}"
            ids.append(pid)
            write_image(root / "images" / str(u) / f"{pid}.jpg")
            write_image(root / "raster_sketches" / str(u) / f"{pid}.jpg", "L")
    (root / "val_normal.txt").write_text("\n".join(ids[::4]) + "\n")
    (root / "val_unseen_user.txt").write_text("\n".join(ids[1::4]) + "\n")
    return root


def fake_results(info: dict | None = None) -> analysis.RunResults:
    """Four queries (three cups, one hat; drawers 0 and 1) over a four-photo gallery, without training."""
    from sbir_utils import analysis  # here, not at the top: the data tests need not import matplotlib

    queries = pd.DataFrame({
        "sketch_file": ["s/a.png", "s/b.png", "s/c.png", "s/d.png"], "label": ["p1", "p2", "p3", "p4"],
        "rank": [1, 4, 2, 1], "rr": [1.0, 0.25, 0.5, 1.0], "acc@1": [1.0, 0.0, 0.0, 1.0],
        "top1_label": ["p1", "p3", "p1", "p4"], "category": ["cup", "cup", "cup", "hat"],
        "drawer": [0, 1, 1, 0]})
    spec = SimpleNamespace(info=info or {}, index_dir=Path("/nonexistent"), csv=lambda s: Path(f"index_{s}.csv"))
    details = {"gallery_files": ["g1", "g2", "g3", "g4"], "gallery_labels": ["p1", "p2", "p3", "p4"]}
    return analysis.RunResults("fake", Path("best.pt"), spec, "index_test.csv", {}, details, queries)


def hard_links_work(folder: Path) -> bool:
    """Whether ``os.link`` works in ``folder`` (probed with a throw-away file; nothing is left behind)."""
    (folder / "probe").write_bytes(b"x")
    try:
        os.link(folder / "probe", folder / "probe2")
    except OSError:
        return False
    finally:
        for name in ("probe", "probe2"):
            (folder / name).unlink(missing_ok=True)
    return True


def random_images(n: int = 4, size: int = 32, seed: int = 0) -> torch.Tensor:
    """``n`` images of 3 x ``size`` x ``size`` standard-normal pixels, the same for the same seed."""
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


# The app tests' gallery (tests/app/): APP_LINE px at 256 is the page's default stroke of 6 px at 512.
APP_PHOTOS, APP_PHOTO_SIZE, APP_LINE = 8, 256, 3
APP_CFG = TrainConfig(model="convnext_infonce", backbone="test_convnext", image_size=64, embed_dim=16,
                      weights="random")


def app_drawings(seed: int = 0) -> list[list[np.ndarray]]:
    """APP_PHOTOS drawings (the app tests' gallery) of three random polylines each, coordinates in [0.1, 0.9]."""
    rng = np.random.default_rng(seed)
    return [[rng.uniform(0.1, 0.9, size=(int(rng.integers(2, 5)), 2)) for _ in range(3)] for _ in range(APP_PHOTOS)]


def render_drawing(strokes: list[np.ndarray], size: int, width: int) -> Image.Image:
    """Black polylines (coordinates in [0, 1]) on a white ``size`` x ``size`` RGB image."""
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    for s in strokes:
        draw.line([tuple(p * size) for p in s], fill="black", width=width, joint="curve")
    return img


def save_random_checkpoint(cfg: TrainConfig, path: Path) -> Path:
    """An engine checkpoint of ``cfg``'s model, random-initialised with seed 0."""
    from sbir_utils.models import build_model

    torch.manual_seed(0)
    model = build_model(cfg, weights="random")
    torch.save({"format": 1, "epoch": 0, "model": model.state_dict(), "config": dataclasses.asdict(cfg)}, path)
    return path


def png_bytes(img: Image.Image) -> bytes:
    """``img`` encoded as PNG."""
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def library_topk(searcher: search.Searcher, data: bytes, tmp: Path) -> tuple[list[int], list[float]]:
    """What ``sbir_utils`` gives for the query ``data``: ``engine.encode`` of sketch and photos, exact top-k."""
    from sbir_utils.engine import encode
    from sbir_utils.retrieval import topk

    query = tmp / "query.png"
    query.write_bytes(data)
    q, _ = encode(searcher.model, [str(query)], "sketch", searcher.cfg.image_size, crop=searcher.cfg.crop)
    g, _ = encode(searcher.model, searcher.paths, "photo", searcher.cfg.image_size,
                  photo_mode=searcher.cfg.photo_mode, crop=searcher.cfg.crop)
    scores, idx = topk(q, g, len(searcher.paths))
    return idx[0].tolist(), scores[0].tolist()
