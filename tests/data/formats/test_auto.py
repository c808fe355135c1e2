"""Raw dataset folders given straight to train / eval / embed (``data.formats.auto``): the layout is
recognised, indexed once beside the data (or in the cache), reused while the folder is unchanged."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sbir_utils import gallery_index
from sbir_utils.data.formats import auto
from tests.helpers import FSCOCO_PER_USER as PER_USER
from tests.helpers import FSCOCO_USERS as USERS
from tests.helpers import make_fscoco
from tests.helpers import write_image as _img


def _rows(home: Path) -> int:
    return sum(len(pd.read_csv(home / f"index_{s}.csv")) for s in ("train", "val", "test"))


def test_raw_fscoco_is_indexed_once_reused_then_rebuilt_when_the_folder_changes(tmp_path):
    root = make_fscoco(tmp_path / "fscoco")
    home, line = auto.ensure_index(root)
    assert home == root.resolve() / ".sbir-index" / "fscoco-normal"
    assert "is FS-COCO" in line and "indexed it with 'sbir index fscoco --split normal'" in line and str(home) in line
    assert _rows(home) == USERS * PER_USER and (home / auto.RECORD).is_file()
    stamp = (home / "index_train.csv").stat().st_mtime_ns
    home2, line = auto.ensure_index(root)
    assert home2 == home and "reusing its index" in line
    assert (home / "index_train.csv").stat().st_mtime_ns == stamp  # not rewritten
    _img(root / "images" / "1" / "000000001999.jpg")  # a new pair
    _img(root / "raster_sketches" / "1" / "000000001999.jpg", "L")
    home3, line = auto.ensure_index(root)
    assert home3 == home and "changed since it was indexed" in line and _rows(home) == USERS * PER_USER + 1
    # a split is its own index; another split of the same folder does not disturb the first
    home4, line = auto.ensure_index(root, "unseen-user")
    assert home4.name == "fscoco-unseen-user" and "--split unseen-user" in line
    assert "reusing" in auto.ensure_index(root)[1]


def test_a_file_changed_in_place_is_seen_by_the_fingerprint(tmp_path):
    root = make_fscoco(tmp_path / "fscoco")
    before = auto.fingerprint(root)
    target = root / "images" / "1" / "000000001000.jpg"
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10**9))
    after = auto.fingerprint(root)
    assert after[1] == before[1] and after[0] != before[0]
    (root / ".hidden").write_text("x")  # hidden files (and the .sbir-index folder) do not count
    assert auto.fingerprint(root) == after


def test_an_unwritable_folder_is_indexed_into_the_cache(tmp_path, monkeypatch):
    root = make_fscoco(tmp_path / "fscoco")
    monkeypatch.setenv("SBIR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(auto, "_can_write", lambda folder: False)
    home, line = auto.ensure_index(root)
    assert home.is_relative_to(tmp_path / "data" / "auto-index") and home.name == "fscoco-normal"
    assert "the cache" in line and "is not writable" in line
    assert not (root / ".sbir-index").exists() and _rows(home) == USERS * PER_USER
    assert "reusing" in auto.ensure_index(root)[1]


def _sketchy(root: Path) -> None:
    for cls in ("cup", "bat"):
        for i in range(3):
            _img(root / "256x256" / "photo" / "tx_000000000000" / cls / f"n0{i}.jpg")
            _img(root / "256x256" / "sketch" / "tx_000000000000" / cls / f"n0{i}-1.png", "L")


def _tuberlin(root: Path, photos: bool) -> None:
    for cls in ("cup", "giraffe"):
        for n in range(5):
            _img(root / "png" / cls / f"{n}.png", "L")
            if photos:
                _img(root / "ImageResized" / ("griaffe" if cls == "giraffe" else cls) / f"p{n}.jpg")


def _folders(root: Path, photo_dir: str = "photos") -> None:
    for i in range(4):
        _img(root / photo_dir / f"s{i}.jpg")
        _img(root / "sketches" / f"s{i}-1.png", "L")


def _qmul(root: Path) -> None:
    for split in ("train", "test"):
        for i in range(3):
            _img(root / split / "photo" / f"{split}{i}.png")
            _img(root / split / "sketch" / f"{split}{i}_1.png", "L")


@pytest.mark.parametrize("make,fmt", [
    (make_fscoco, "fscoco"), (_sketchy, "sketchy"), (lambda r: _tuberlin(r, True), "tuberlin"),
    (_folders, "folders"), (lambda r: _folders(r, "images"), "folders"), (_qmul, "qmul"),
])
def test_each_official_layout_is_recognised_and_indexed(tmp_path, make, fmt):
    root = tmp_path / "raw"
    make(root)
    layout = auto.detect(root)
    assert layout is not None and layout.format == fmt
    home, line = auto.ensure_index(root)
    assert home.parent.name == ".sbir-index" and f"sbir index {fmt}" in line
    assert _rows(home) > 0


def test_no_layout_no_index(tmp_path):
    (tmp_path / "misc").mkdir()
    _img(tmp_path / "misc" / "a.png")
    assert auto.detect(tmp_path / "misc") is None and auto.detect(tmp_path / "nowhere") is None
    assert auto.layout_photos(tmp_path / "misc") is None
    with pytest.raises(FileNotFoundError, match="nor a raw layout this project recognises"):
        auto.ensure_index(tmp_path / "misc")


def test_sketches_without_photos_and_a_split_for_another_dataset_are_clear_errors(tmp_path):
    root = tmp_path / "TU-Berlin"
    _tuberlin(root, photos=False)
    with pytest.raises(FileNotFoundError, match="has sketches but no photos"):
        auto.ensure_index(root)
    with pytest.raises(FileNotFoundError, match="without photos"):
        auto.layout_photos(root)
    sketchy_root = tmp_path / "sketchy"
    _sketchy(sketchy_root)
    with pytest.raises(ValueError, match="--split unseen-user is for FS-COCO"):
        auto.ensure_index(sketchy_root, "unseen-user")


def test_an_importer_failure_says_what_was_tried(tmp_path):
    root = make_fscoco(tmp_path / "fscoco")
    (root / "val_normal.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"looks like FS-COCO.*val_normal.txt.*sbir index fscoco"):
        auto.ensure_index(root)


def test_embed_on_a_raw_layout_encodes_its_photos_only(tmp_path, capsys):
    root = make_fscoco(tmp_path / "fscoco")
    files = gallery_index._collect(argparse.Namespace(photos=str(root), list=None))
    assert len(files) == USERS * PER_USER and all("/images/" in f for f in files)
    assert "encoding its 12 photos, not its sketches" in capsys.readouterr().err
    plain = tmp_path / "gallery"
    _img(plain / "a.png")
    _img(plain / "sub" / "b.png")
    assert len(gallery_index._collect(argparse.Namespace(photos=str(plain), list=None))) == 2


def test_photos_of_each_layout(tmp_path):
    root = tmp_path / "tb"
    _tuberlin(root, photos=True)
    files, line = auto.layout_photos(root)
    assert len(files) == 10 and all("ImageResized" in str(f) for f in files) and "TU-Berlin" in line
    q = tmp_path / "q"
    _qmul(q)
    files, _ = auto.layout_photos(q)
    assert sorted(f.stem for f in files) == sorted(f"{s}{i}" for s in ("train", "test") for i in range(3))
    assert np.all([f.parent.name == "photo" for f in files])
