from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image, ImageDraw

from sbir_utils.cli import main as sbir_main
from sbir_utils.data.formats import FORMATS, folders
from sbir_utils.data.index import load_spec, read_splits, split_integrity
from tests.helpers import SHARED_DATA

SHOES = SHARED_DATA / "shoes-real-dev"


def _photo(path: Path, shade: int = 120) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 10), (shade, 200, 255 - shade)).save(path)


def _sketch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("L", (16, 16), 255)
    ImageDraw.Draw(img).line([(2, 2), (13, 12)], fill=0, width=1)
    img.save(path)


@pytest.fixture()
def paired(tmp_path: Path) -> Path:
    root = tmp_path / "raw"
    for i in range(1, 11):
        _photo(root / "photos" / f"{i:03d}.jpg", shade=i * 20)
        _sketch(root / "sketches" / f"{i:03d}-1.jpg")
        _sketch(root / "sketches" / f"{i:03d}_2.png")
    _sketch(root / "sketches" / "010.png")  # named exactly like its photo
    _sketch(root / "sketches" / "999-1.jpg")  # no photo 999
    _sketch(root / "sketches" / "readme.jpg")  # matches no rule
    (root / "sketches" / ".DS_Store").write_bytes(b"\0")
    (root / "sketches" / "notes.txt").write_text("not an image")
    _photo(root / "photos" / "011.jpg")  # a photo nobody sketched
    return root


def test_paired_folders_row_by_row(paired: Path, tmp_path: Path):
    out = tmp_path / "index"
    summary = folders.build_index(paired, out, test_fraction=0.2, val_fraction=0.2, seed=3)
    frames = read_splits(out)
    assert set(frames) == {"train", "val", "test"}
    listed = []
    for df in frames.values():
        assert list(df.columns[:3]) == ["path_sketch", "path_image", "label"]
        for row in df.itertuples():
            stem = Path(row.path_sketch).stem
            assert row.path_image == f"photos/{row.label}.jpg"
            assert stem == row.label or stem in (f"{row.label}-1", f"{row.label}_2")
            assert Path(row.sketch_file).is_file() and Path(row.image_file).is_file()
            listed.append(row.path_sketch)
    expected = sorted([f"sketches/{i:03d}-1.jpg" for i in range(1, 11)] + [f"sketches/{i:03d}_2.png" for i in range(1, 11)]
                      + ["sketches/010.png"])
    assert sorted(listed) == expected
    # disjoint by photo; test = 2 of 10 photos, val = 2 of the remaining 8
    photos = {s: set(df["label"]) for s, df in frames.items()}
    assert len(photos["test"]) == 2 and len(photos["val"]) == 2 and len(photos["train"]) == 6
    assert not (photos["train"] & photos["val"]) and not (photos["train"] & photos["test"]) and not (photos["val"] & photos["test"])
    assert split_integrity(frames)["ok"].all()
    # a photo and all its sketches in one split
    for df in frames.values():
        for label in df["label"].unique():
            assert (df["label"] == label).sum() == (3 if label == "010" else 2)

    assert summary["skipped"]["sketch with no matching photo"]["count"] == 1
    assert summary["skipped"]["sketch name does not match the rule"]["count"] == 1
    assert summary["skipped"]["hidden file"]["count"] == 1
    assert summary["skipped"]["not an image file"]["count"] == 1
    assert summary["photos_without_sketch"] == 1
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["counts"]["test"]["photos"] == 2 and on_disk["integrity"] == "ok"
    spec = load_spec(out)
    assert spec.protocol == "fine" and spec.sketch_root == paired.resolve() and spec.image_root == paired.resolve()


def test_split_is_seeded_and_reproducible(paired: Path, tmp_path: Path):
    folders.build_index(paired, tmp_path / "a", seed=5)
    folders.build_index(paired, tmp_path / "b", seed=5)
    folders.build_index(paired, tmp_path / "c", seed=6)
    for split in ("train", "val", "test"):
        assert (tmp_path / "a" / f"index_{split}.csv").read_bytes() == (tmp_path / "b" / f"index_{split}.csv").read_bytes()
    tests = [set(pd.read_csv(tmp_path / d / "index_test.csv", dtype=str)["label"]) for d in ("a", "c")]
    vals = [set(pd.read_csv(tmp_path / d / "index_val.csv", dtype=str)["label"]) for d in ("a", "c")]
    assert tests[0] != tests[1] or vals[0] != vals[1]


def test_errors_name_the_problem(tmp_path: Path, paired: Path):
    with pytest.raises(FileNotFoundError, match="--photos_subdir"):
        folders.build_index(paired, tmp_path / "x", photos_subdir="images")
    empty = tmp_path / "empty"
    (empty / "photos").mkdir(parents=True)
    (empty / "sketches").mkdir()
    _photo(empty / "photos" / "a.jpg")
    _sketch(empty / "sketches" / "b-1.jpg")
    with pytest.raises(ValueError, match="no sketch matched a photo"):
        folders.build_index(empty, tmp_path / "y")


def test_cli_prints_a_summary(paired: Path, tmp_path: Path, capsys):
    assert set(FORMATS) == {"sketchy", "tuberlin", "qmul", "fscoco", "folders"}
    rc = sbir_main(["index", "folders", str(paired), "--out", str(tmp_path / "cli"), "--seed", "1"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "train:" in out and "test :" in out and "sketch with no matching photo" in out
    assert (tmp_path / "cli" / "index_val.csv").is_file()
    rc = sbir_main(["index", "folders", str(tmp_path / "missing"), "--out", str(tmp_path / "cli2")])
    assert rc == 2 and "error" in capsys.readouterr().err


@pytest.mark.realdata
@pytest.mark.skipif(not SHOES.exists(), reason="../shared/data is absent")
def test_real_shoes(tmp_path: Path):
    summary = folders.build_index(SHOES, tmp_path / "shoes", seed=0)
    frames = read_splits(tmp_path / "shoes")
    assert summary["photos_found"] == 200 and summary["skipped"] == {}
    assert sum(len(df) for df in frames.values()) == 600
    assert sum(df["label"].nunique() for df in frames.values()) == 200
    assert split_integrity(frames)["ok"].all()
    for df in frames.values():
        assert (df.groupby("label").size() == 3).all()  # NNN-1..3 all with their photo
        assert (df["path_image"].str.replace("photos/", "").str[:3] == df["path_sketch"].str.replace("sketches/", "").str[:3]).all()
