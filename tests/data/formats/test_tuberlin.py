from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from sbir_utils.data.formats import tuberlin
from sbir_utils.data.index import read_splits, split_integrity

# TU-Berlin class folder -> TU-Berlin-Ext folder (the real misspellings and shortenings included)
EXT = {"giraffe": "griaffe", "trombone": "tromobone", "bear (animal)": "bearanimal",
       "pipe (for smoking)": "pipe", "wrist-watch": "wristwatching", "airplane": "airplane"}
SKETCHES, PHOTOS = 10, 13


def _img(path: Path, mode: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (10, 10), 255 if mode == "L" else (30, 60, 90)).save(path, format="PNG" if mode == "L" else "JPEG")


@pytest.fixture()
def raw(tmp_path: Path) -> tuple[Path, Path]:
    sk, ext = tmp_path / "TU-Berlin", tmp_path / "TU-Berlin-Ext"
    for cls, folder in EXT.items():
        for n in range(SKETCHES):
            _img(sk / "png" / cls / f"{n + 1}.png", "L")
        for n in range(PHOTOS):
            _img(ext / "ImageResized" / folder / f"n0000_{n}.JPEG", "RGB")
    for n in range(3):
        _img(sk / "png" / "mermaid" / f"{n}.png", "L")  # a class without Ext photos
    _img(ext / "ImageResized" / "spacesshuttle" / "x.JPEG", "RGB")  # a photo folder without sketches
    (sk / "png" / "filelist.txt").write_text("giraffe/1.png\n")
    return sk, ext


def test_category_pairing_with_misspelt_ext_folders(raw, tmp_path: Path):
    sk, ext = raw
    out = tmp_path / "idx"
    summary = tuberlin.build_index(sk, out, photos=ext, test_fraction=0.2, val_fraction=0.25, seed=0)
    frames = read_splits(out)
    rows = pd.concat([df.assign(split=s) for s, df in frames.items()], ignore_index=True)
    assert sorted(rows["label"].unique()) == sorted(EXT)
    for row in rows.itertuples():
        assert Path(row.path_sketch).parent.name == row.label == row.category
        assert Path(row.path_image).parent.name == EXT[row.label]
    # every sketch once; sketches and photos each in exactly one split
    assert rows["path_sketch"].is_unique and len(rows) == len(EXT) * SKETCHES
    assert rows.groupby("path_image")["split"].nunique().eq(1).all()
    assert split_integrity(frames)["ok"].all()
    # per class: 2 test, 2 val, 6 train sketches; photos 3 / 2-3 / rest
    sizes = rows.groupby(["label", "split"]).size().unstack()
    assert (sizes["test"] == 2).all() and (sizes["val"] == 2).all() and (sizes["train"] == 6).all()
    # round-robin: the i-th sorted sketch of a class and split gets the (i mod n)-th sorted photo
    for _, grp in rows.groupby(["label", "split"]):
        grp = grp.sort_values("path_sketch")
        photos = sorted(grp["path_image"].unique())
        assert list(grp["path_image"]) == [photos[i % len(photos)] for i in range(len(grp))]
    assert summary["misspelt_folders_mapped"] == {"giraffe": "griaffe", "pipe (for smoking)": "pipe",
                                                  "trombone": "tromobone", "wrist-watch": "wristwatching"}
    assert summary["skipped"]["class has no TU-Berlin-Ext photo folder"]["count"] == 3
    assert any("spacesshuttle" in n for n in summary["notes"])


def test_cover_photos_puts_every_photo_in_the_index(raw, tmp_path: Path):
    sk, ext = raw
    tuberlin.build_index(sk, tmp_path / "idx", photos=ext / "ImageResized", cover_photos=True, seed=4)
    rows = pd.concat(read_splits(tmp_path / "idx").values())
    assert rows["path_image"].nunique() == len(EXT) * PHOTOS
    assert rows["path_sketch"].nunique() == len(EXT) * SKETCHES


def test_without_photos_only_sketches_are_listed(raw, tmp_path: Path):
    sk, _ = raw
    out = tmp_path / "idx"
    summary = tuberlin.build_index(sk, out)
    assert summary["photos"] is None and not (out / "index_train.csv").exists()
    listed = pd.concat(pd.read_csv(out / f"sketches_{s}.csv", dtype=str) for s in ("train", "val", "test"))
    assert len(listed) == len(EXT) * SKETCHES + 3 and listed["path_sketch"].is_unique


def test_shipped_folder_map():
    names = tuberlin.ext_folder_names()
    assert names["trombone"] == "tromobone" and names["spider"] == "spidar" and names["chandelier"] == "chandeler"
    assert tuberlin.folder_key("bear (animal)") == "bearanimal"


def test_ext_photos_placed_inside_the_root_are_used_without_photos_flag(raw, tmp_path: Path):
    sk, ext = raw
    (ext / "ImageResized").rename(sk / "ImageResized")  # png/ beside ImageResized/
    summary = tuberlin.build_index(sk, tmp_path / "idx", test_fraction=0.2, val_fraction=0.25, seed=0)
    assert summary["index_written"] and summary["photos"] == str((sk / "ImageResized").resolve())
    assert any("ImageResized/ found in RAW_ROOT" in n for n in summary["notes"])
    rows = pd.concat(read_splits(tmp_path / "idx").values())
    assert sorted(rows["label"].unique()) == sorted(EXT) and len(rows) == len(EXT) * SKETCHES
    # one level down (TU-Berlin-Ext/ImageResized inside the TU-Berlin folder) is found too
    (sk / "TU-Berlin-Ext").mkdir()
    (sk / "ImageResized").rename(sk / "TU-Berlin-Ext" / "ImageResized")
    assert tuberlin.photos_in_root(sk) == sk / "TU-Berlin-Ext" / "ImageResized"


def test_photo_folder_inside_a_root_without_png_is_not_a_class(tmp_path: Path):
    root = tmp_path / "flat"  # class folders directly in the root, photos beside them
    for cls in ("cup", "bat"):
        for n in range(5):
            _img(root / cls / f"{n}.png", "L")
            _img(root / "ImageResized" / cls / f"p{n}.jpg", "RGB")
    tuberlin.build_index(root, tmp_path / "idx", test_fraction=0.2, val_fraction=0.25)
    rows = pd.concat(read_splits(tmp_path / "idx").values())
    assert sorted(rows["label"].unique()) == ["bat", "cup"]
