from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

from sbir_utils.data.formats import qmul
from sbir_utils.data.images import ink_coverage, load_image
from sbir_utils.data.index import read_splits, split_integrity
from sbir_utils.data.safe_pickle import UnsafePickleError
from tests.helpers import SHARED_DATA

CHAIR_DIR = SHARED_DATA / "chairv2-strokes"


def _photo(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 12), (90, 140, 200)).save(path)


def _sketch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("L", (14, 14), 255)
    ImageDraw.Draw(img).line([(1, 1), (12, 9)], fill=0)
    img.save(path)


def _stroke(seed: int) -> np.ndarray:
    """A zig-zag stroke-3 sketch with two strokes on the 256 canvas."""
    rng = np.random.default_rng(seed)
    xy = np.cumsum(rng.uniform(-20, 20, size=(12, 2)), axis=0) + 128
    flags = np.zeros((12, 1))
    flags[5] = flags[11] = 1
    return np.hstack([np.clip(xy, 30, 226), flags])


# ---- PNG folders -------------------------------------------------------------------------------------

@pytest.mark.parametrize("train_dir,test_dir", [("train", "test"), ("trainA", "testA")])
def test_png_folders_with_split_subfolders(tmp_path: Path, train_dir: str, test_dir: str):
    root = tmp_path / "ShoeV2"
    ids = {"train": ["2429245009", "CHABRA-UK_v1_Grey", "s3"], "test": ["t1", "t2"]}
    for split, folder in (("train", train_dir), ("test", test_dir)):
        for pid in ids[split]:
            _photo(root / "photo" / f"{pid}.png")
            for k in (1, 2):
                _sketch(root / "sketch" / folder / f"{pid}_{k}.png")
    _sketch(root / "sketch" / train_dir / "nophoto_1.png")
    out = tmp_path / "idx"
    summary = qmul.build_index(root, out, val_fraction=0.34, seed=0)
    frames = read_splits(out)
    assert summary["sketch_source"] == "png" and summary["skipped"]["sketch with no matching photo"]["count"] == 1
    assert set(frames["test"]["label"]) == set(ids["test"])
    assert set(frames["train"]["label"]) | set(frames["val"]["label"]) == set(ids["train"])
    assert frames["val"]["label"].nunique() == 1
    for df in frames.values():
        for row in df.itertuples():
            assert row.path_image == f"photo/{row.label}.png"
            assert Path(row.path_sketch).stem.rsplit("_", 1)[0] == row.label
            assert (train_dir if row.split in ("train", "val") else test_dir) in Path(row.path_sketch).parts
    assert split_integrity(frames)["ok"].all()


def test_png_folders_without_split_use_a_seeded_photo_split(tmp_path: Path):
    root = tmp_path / "ChairV2"
    for i in range(10):
        _photo(root / "photo" / f"c{i}.png")
        _sketch(root / "sketch" / f"c{i}_1.png")
    summary = qmul.build_index(root, tmp_path / "idx", test_fraction=0.2, seed=1)
    frames = read_splits(tmp_path / "idx")
    assert [len(frames[s]) for s in ("train", "val", "test")] == [7, 1, 2]
    assert "seeded" in summary["split_rule"]


# ---- stroke pickle -----------------------------------------------------------------------------------

@pytest.fixture()
def stroke_root(tmp_path: Path) -> Path:
    root = tmp_path / "chair"
    data = {
        "/train/a_1": _stroke(1), "/train/a_2": _stroke(2),
        "/train/b-x_v1_1": _stroke(3),
        "/train/c_1": _stroke(4),
        "/test/d_1": _stroke(5), "/test/d_A1B2C3": _stroke(6),  # a worker id instead of a number
        "/train/e_1": np.zeros((3, 2)),  # not stroke-3
        "/val/f_1": _stroke(7),  # no train/test prefix
    }
    root.mkdir()
    with open(root / "ChairV2_Coordinate", "wb") as fh:
        pickle.dump(data, fh)
    return root


def test_strokes_with_photos(stroke_root: Path, tmp_path: Path):
    photos = tmp_path / "photos"
    for pid in ("a", "b-x_v1", "c", "d"):
        _photo(photos / f"{pid}.png")
    out = tmp_path / "idx"
    summary = qmul.build_index(stroke_root, out, photos=photos, val_fraction=0.34, seed=0)
    frames = read_splits(out)
    rows = pd.concat(frames.values())
    assert sorted(rows["key"]) == ["/test/d_1", "/test/d_A1B2C3", "/train/a_1", "/train/a_2", "/train/b-x_v1_1", "/train/c_1"]
    for row in rows.itertuples():
        split_dir = row.key.split("/")[1]
        assert row.path_sketch == f"sketches/{split_dir}/{row.key.split('/')[2]}.png"
        assert row.path_image == f"{row.label}.png"
        assert row.key.split("/")[2].startswith(row.label + "_")
        img = load_image(row.sketch_file, kind="sketch")
        assert img.size == (256, 256) and 0.001 < ink_coverage(img) < 0.2
    assert set(frames["test"]["label"]) == {"d"}
    assert frames["val"]["label"].nunique() == 1
    assert summary["skipped"]["not a finite (N, 3) stroke array"]["count"] == 1
    assert summary["skipped"]["stroke key without a /train/ or /test/ prefix"]["count"] == 1
    assert summary["image_root"] == str(photos.resolve()) and summary["sketch_root"] == str(out.resolve())


def test_strokes_without_photos_write_a_sketch_only_listing(stroke_root: Path, tmp_path: Path):
    out = tmp_path / "idx"
    summary = qmul.build_index(stroke_root / "ChairV2_Coordinate", out, val_fraction=0.4)
    assert summary["photos"] is None and summary["index_written"] is False
    assert any("photos are missing" in n for n in summary["notes"])
    assert not (out / "index_train.csv").exists() and not (out / "dataset.json").exists()
    listed = {s: pd.read_csv(out / f"sketches_{s}.csv", dtype=str) for s in ("train", "val", "test")}
    assert sorted(listed["test"]["label"]) == ["d", "d"]
    assert sum(len(df) for df in listed.values()) == 6
    assert not set(listed["train"]["label"]) & set(listed["val"]["label"])
    for df in listed.values():
        assert all((out / p).is_file() for p in df["path_sketch"])


def test_malicious_stroke_file_is_refused(tmp_path: Path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    root = tmp_path / "evil"
    root.mkdir()
    (root / "ShoeV2_Coordinate").write_bytes(pickle.dumps({"/train/a_1": Evil()}))
    with pytest.raises(UnsafePickleError, match="ShoeV2_Coordinate.*builtins.print"):
        qmul.build_index(root, tmp_path / "idx")


@pytest.mark.realdata
@pytest.mark.skipif(not CHAIR_DIR.exists(), reason="../shared/data is absent")
def test_real_chairv2_strokes(tmp_path: Path):
    out = tmp_path / "chair"
    summary = qmul.build_index(CHAIR_DIR, out, seed=0)
    assert summary["sketches_per_split_from_source"] == {"train": 952, "test": 323}
    assert summary["skipped"] == {} and summary["photos"] is None
    listed = {s: pd.read_csv(out / f"sketches_{s}.csv", dtype=str) for s in ("train", "val", "test")}
    assert len(listed["train"]) + len(listed["val"]) == 952 and len(listed["test"]) == 323
    assert listed["test"]["label"].nunique() == 100
    assert listed["train"]["label"].nunique() + listed["val"]["label"].nunique() == 300
    assert not set(listed["train"]["label"]) & set(listed["val"]["label"])
    coverage = np.array([ink_coverage(load_image(out / p, kind="sketch"))
                         for df in listed.values() for p in df["path_sketch"]])
    assert coverage.size == 1275
    # human line drawings at 256 px with 2 px lines: a few percent of the canvas is ink, never none or most
    assert coverage.min() > 0.002 and coverage.max() < 0.4
    assert 0.01 < float(np.median(coverage)) < 0.1


def test_reimport_removes_outputs_of_the_other_kind(stroke_root: Path, tmp_path: Path):
    out = tmp_path / "idx"
    qmul.build_index(stroke_root, out, val_fraction=0.4)
    assert (out / "sketches_train.csv").exists()
    photos = tmp_path / "photos"
    for pid in ("a", "b-x_v1", "c", "d"):
        _photo(photos / f"{pid}.png")
    summary = qmul.build_index(stroke_root, out, photos=photos, val_fraction=0.4)
    assert not (out / "sketches_train.csv").exists() and (out / "index_train.csv").exists()
    assert summary["removed_stale_files"] == ["sketches_train.csv", "sketches_val.csv", "sketches_test.csv"]
    qmul.build_index(stroke_root, out, val_fraction=0.4)
    assert not (out / "index_train.csv").exists() and not (out / "dataset.json").exists()
