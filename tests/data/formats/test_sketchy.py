from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from sbir_utils.data.formats import sketchy
from sbir_utils.data.index import read_splits, split_integrity
from sbir_utils.paths import RESOURCES_DIR

# class folder on the photo side, on the sketch side (hot-air balloon spelt both ways)
CLASSES = {"airplane": "airplane", "hot_air_balloon": "hot-air_balloon", "cup": "cup", "bat": "bat",
           "pear": "pear", "jack-o-lantern": "jack-o-lantern"}
PHOTOS_PER_CLASS = 4


def _img(path: Path, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (8, 8), 200 if mode == "L" else (10, 120, 230)).save(path)


@pytest.fixture()
def raw(tmp_path: Path) -> Path:
    root = tmp_path / "sketchy"
    base = root / "256x256"
    for c, (photo_cls, sketch_cls) in enumerate(CLASSES.items()):
        for i in range(PHOTOS_PER_CLASS):
            stem = f"n0{c:07d}_{100 + i}"  # ImageNet-style photo id
            _img(base / "photo" / "tx_000000000000" / photo_cls / f"{stem}.jpg")
            _img(base / "photo" / "tx_000100000000" / photo_cls / f"{stem}.jpg")  # augmented copy: ignored
            for k in (1, 2):
                _img(base / "sketch" / "tx_000000000000" / sketch_cls / f"{stem}-{k}.png", "L")
                _img(base / "sketch" / "tx_000000000010" / sketch_cls / f"{stem}-{k}.png", "L")  # ignored
    _img(base / "sketch" / "tx_000000000000" / "cup" / "n9999_1-1.png", "L")  # no such photo
    _img(base / "sketch" / "tx_000000000000" / "cup" / "badname.png", "L")
    (root / "info").mkdir()
    first = {c: sorted((base / "photo" / "tx_000000000000" / c).iterdir())[0].name for c in CLASSES}
    (root / "info" / "testset.txt").write_text("".join(f"{c}/{n}\n" for c, n in first.items()))
    return root


def _all(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return pd.concat([df.assign(split=s) for s, df in frames.items()], ignore_index=True)


def test_category_protocol_official_testset(raw: Path, tmp_path: Path):
    out = tmp_path / "idx"
    summary = sketchy.build_index(raw, out, protocol="category", val_fraction=0.34, seed=0)
    frames = read_splits(out)
    rows = _all(frames)
    assert summary["testset"].endswith("testset.txt")
    assert sorted(rows["category"].unique()) == ["airplane", "bat", "cup", "hot_air_balloon", "jack_o_lantern", "pear"]
    assert len(rows) == len(CLASSES) * PHOTOS_PER_CLASS * 2
    for row in rows.itertuples():
        sketch, photo = Path(row.path_sketch), Path(row.path_image)
        assert sketch.parts[:2] == ("sketch", "tx_000000000000") and photo.parts[:2] == ("photo", "tx_000000000000")
        assert sketch.stem.rsplit("-", 1)[0] == photo.stem  # drawn from this photo
        assert row.label == row.category == sketchy.canonical_class(sketch.parts[2])
    # official test photos: the first photo of each class, with both sketches
    test = frames["test"]
    assert test["path_image"].nunique() == len(CLASSES) and len(test) == 2 * len(CLASSES)
    assert all(Path(p).stem.endswith("_100") for p in test["path_image"])
    # val carved per class from the 3 remaining photos: one photo per class
    assert frames["val"].groupby("category")["path_image"].nunique().eq(1).all()
    assert split_integrity(frames)["ok"].all()
    assert summary["skipped"]["sketch with no matching photo"]["count"] == 1
    assert summary["skipped"]["sketch not named <photo>-<k>"]["count"] == 1
    assert "photo/tx_000100000000" in summary["ignored_folders"] and "sketch/tx_000000000010" in summary["ignored_folders"]
    assert any("hot_air_balloon / hot-air_balloon" in n for n in summary["notes"])


def test_fine_protocol_labels_are_photo_ids(raw: Path, tmp_path: Path):
    sketchy.build_index(raw, tmp_path / "idx", protocol="fine", split="random", test_fraction=0.25, seed=2)
    rows = _all(read_splits(tmp_path / "idx"))
    for row in rows.itertuples():
        assert row.label == f"{row.category}/{Path(row.path_image).stem}"
    assert rows.groupby("label").size().eq(2).all()
    assert rows.groupby("label")["split"].nunique().eq(1).all()


@pytest.mark.parametrize("which,unseen", [("25", {"airplane", "cup"}), ("21", {"bat", "pear"})])
def test_zeroshot_splits_hold_out_whole_classes(raw: Path, tmp_path: Path, which: str, unseen: set[str]):
    summary = sketchy.build_index(raw, tmp_path / "idx", zeroshot=which)
    frames = read_splits(tmp_path / "idx")
    assert set(frames["test"]["category"]) == unseen
    assert not unseen & (set(frames["train"]["category"]) | set(frames["val"]["category"]))
    assert len(frames["test"]) == len(unseen) * PHOTOS_PER_CLASS * 2
    assert set(summary["unseen_classes"]) == unseen
    assert any("not on disk" in n for n in summary["notes"])


def test_shipped_class_lists():
    every = sketchy.read_class_list(RESOURCES_DIR / "sketchy_classes_125.txt")
    z25, z21 = sketchy.zeroshot_classes("25"), sketchy.zeroshot_classes("21")
    assert len(set(every)) == 125 and (len(set(z25)), len(set(z21))) == (25, 21)
    assert set(z25) <= set(every) and set(z21) <= set(every)
    assert sketchy.canonical_class("hot-air_balloon") == sketchy.canonical_class("hot_air_balloon") == "hot_air_balloon"
    with pytest.raises(ValueError, match="zeroshot"):
        sketchy.zeroshot_classes("30")


def test_missing_layout_is_explained(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="tx_000000000000"):
        sketchy.build_index(tmp_path, tmp_path / "idx")
