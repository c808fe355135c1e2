"""The decode-once image store: same tensors as decoding, filled once, shared by workers, safe to interrupt."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image, ImageDraw

from sbir_utils import paths
from sbir_utils.data import image_store, loading
from sbir_utils.data.image_store import ImageStore, open_store
from sbir_utils.data.loading import ImageDataset, PairDataset, make_loader


def _pairs(tmp_path: Path, n: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        photo = Image.fromarray(rng.integers(0, 255, (40 + i, 50, 3), dtype=np.uint8), "RGB")
        photo.save(tmp_path / f"p{i}.png")
        sketch = Image.new("L", (90, 70), 255)
        ImageDraw.Draw(sketch).line([(5, 5 + i), (80, 60)], fill=0, width=3)
        sketch.save(tmp_path / f"s{i}.png")
        rows.append({"sketch_file": str(tmp_path / f"s{i}.png"), "image_file": str(tmp_path / f"p{i}.png"),
                     "label": f"p{i}"})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("photo_mode", ["rgb", "edges", "hed"])
@pytest.mark.parametrize("train", [False, True])
def test_pairs_from_the_store_equal_decoding(tmp_path, photo_mode, train):
    df = _pairs(tmp_path)
    plain = PairDataset(df, 24, train=train, photo_mode=photo_mode, image_cache=None)
    for _ in range(2):  # first pass fills the store, second reads it
        stored = PairDataset(df, 24, train=train, photo_mode=photo_mode, image_cache=tmp_path / "cache")
        for i in range(len(df)):
            torch.manual_seed(i)
            a = plain[i]
            torch.manual_seed(i)
            b = stored[i]
            assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[2] == b[2]


def test_gallery_images_from_the_store_equal_decoding_and_are_decoded_once(tmp_path, monkeypatch):
    df = _pairs(tmp_path)
    files = df["image_file"].tolist()
    plain = [ImageDataset(files, "photo", 20, image_cache=None)[i] for i in range(len(files))]
    first = ImageDataset(files, "photo", 20, image_cache=tmp_path / "cache")
    assert all(torch.equal(first[i], plain[i]) for i in range(len(files)))

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although stored")

    monkeypatch.setattr(loading, "load_image", no_decoding)
    again = ImageDataset(files, "photo", 20, image_cache=tmp_path / "cache")
    assert all(torch.equal(again[i], plain[i]) for i in range(len(files)))


def test_a_changed_file_gets_a_new_store(tmp_path):
    df = _pairs(tmp_path, 2)
    files = df["image_file"].tolist()
    before = ImageDataset(files, "photo", 16, image_cache=tmp_path / "cache")[0]
    Image.new("RGB", (30, 30), (255, 0, 0)).save(files[0])
    os.utime(files[0], ns=(1, 1))  # a different mtime even on a coarse clock
    after = ImageDataset(files, "photo", 16, image_cache=tmp_path / "cache")[0]
    assert not torch.equal(before, after)
    assert torch.equal(after, ImageDataset(files, "photo", 16, image_cache=None)[0])
    assert len(list((tmp_path / "cache").glob("*.u8"))) == 2


def test_a_slot_whose_flag_is_unset_is_decoded_again(tmp_path):
    img_path = tmp_path / "a.png"
    Image.new("L", (8, 8), 0).save(img_path)
    calls = []

    def make(p):
        calls.append(p)
        return Image.open(p).convert("L")

    store = ImageStore([str(img_path)], "t", make, 8, 1, tmp_path / "c")
    assert store.array(0).max() == 0 and len(calls) == 1
    store.array(0)
    assert len(calls) == 1
    # An interrupted write: pixels garbage, flag never set.
    mm = np.memmap(store.file, dtype=np.uint8, mode="r+")
    mm[0] = 0
    mm[1:] = 77
    mm.flush()
    fresh = ImageStore([str(img_path)], "t", make, 8, 1, tmp_path / "c")
    assert fresh.array(0).max() == 0 and len(calls) == 2


def test_loader_workers_fill_one_shared_store(tmp_path):
    df = _pairs(tmp_path, 8)
    files = df["image_file"].tolist()
    ds = ImageDataset(files, "photo", 16, image_cache=tmp_path / "cache")
    with_workers = torch.cat(list(make_loader(ds, batch_size=2, num_workers=2)))
    flags = np.memmap(ds._images.store.file, dtype=np.uint8, mode="r")[: len(files)]
    assert flags.all(), "the workers' writes are in the file the main process maps"
    plain = torch.stack([ImageDataset(files, "photo", 16, image_cache=None)[i] for i in range(len(files))])
    assert torch.equal(with_workers, plain)


def test_store_refused_when_the_disk_is_too_small_falls_back_to_decoding(tmp_path, monkeypatch):
    df = _pairs(tmp_path, 2)

    class Tiny:
        free = 10

    monkeypatch.setattr(image_store.shutil, "disk_usage", lambda _: Tiny)
    with pytest.warns(UserWarning, match="image store disabled.*GiB"):
        ds = ImageDataset(df["image_file"].tolist(), "photo", 16, image_cache=tmp_path / "cache")
    assert ds._images.store is None
    assert ds[0].shape == (3, 16, 16)
    assert not list((tmp_path / "cache").glob("*.u8"))


def test_unwritable_store_folder_falls_back_to_decoding(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.warns(UserWarning, match="image store disabled"):
        store = open_store(["x.png"], "t", lambda p: Image.new("L", (4, 4)), 4, 1, blocker / "cache")
    assert store is None


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SBIR_IMAGE_CACHE_DIR", "off")
    assert paths.image_cache_dir() is None
    monkeypatch.setenv("SBIR_IMAGE_CACHE_DIR", str(tmp_path / "ic"))
    assert paths.image_cache_dir() == (tmp_path / "ic").resolve()
    monkeypatch.delenv("SBIR_IMAGE_CACHE_DIR")
    monkeypatch.setenv("SBIR_DATA_DIR", str(tmp_path / "d"))
    assert paths.image_cache_dir() == (tmp_path / "d").resolve() / ".image_cache"
