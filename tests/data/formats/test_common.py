"""`data.formats.common`: what every importer shares: image listing, sketch names, seeded splits,
validation carving, and writing an index (or a sketch-only listing) with its summary."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sbir_utils.data.formats import common
from sbir_utils.data.index import IndexValidationError


def _png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), "white").save(path)
    return path


def test_list_images_sorted_skipping_hidden_and_non_images(tmp_path):
    for name in ("b/2.png", "a.JPG", ".DS_Store", "b/._2.png", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    skipped = common.Skipped(max_examples=1)
    found = common.list_images(tmp_path, skipped)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a.JPG", "b/2.png"]
    assert skipped.count("hidden file") == 2 and skipped.count("not an image file") == 1 and skipped.count() == 3
    assert skipped.as_dict()["hidden file"] == {"count": 2, "examples": [str(tmp_path / ".DS_Store")]}
    assert [p.name for p in common.list_images(tmp_path, recursive=False)] == ["a.JPG"]
    with pytest.raises(FileNotFoundError, match=r"nowhere: folder not found"):
        common.list_images(tmp_path / "nowhere")


def test_images_by_stem_keeps_the_first_of_a_duplicate_id(tmp_path):
    _png(tmp_path / "x" / "p1.png")
    _png(tmp_path / "y" / "p1.jpg")
    skipped = common.Skipped()
    found = common.images_by_stem(tmp_path, skipped, root=tmp_path)
    assert found == {"p1": tmp_path / "x" / "p1.png"}
    assert list(skipped.reasons) == ["duplicate photo id (kept x/p1.png)"]


@pytest.mark.parametrize("stem,expected", [
    ("001-2", ("001", "2")), ("CHABRA003GRY-UK_v1_PearlGrey_3", ("CHABRA003GRY-UK_v1_PearlGrey", "3")),
    ("a_b-10", ("a_b", "10")), ("photo", None), ("photo-x", None),
])
def test_parse_sketch_stem(stem, expected):
    assert common.parse_sketch_stem(stem) == expected


def test_seeded_streams_and_choose():
    a = common.split_rng(1, "val").integers(1000, size=5)
    assert np.array_equal(a, common.split_rng(1, "val").integers(1000, size=5))
    assert not np.array_equal(a, common.split_rng(1, "test").integers(1000, size=5))
    assert not np.array_equal(a, common.split_rng(1, "val", "cats").integers(1000, size=5))
    ids = [f"p{i}" for i in range(10)]
    picked = common.choose(ids, 0.3, common.split_rng(0, "val"))
    assert len(picked) == 3 and picked == sorted(picked) and set(picked) <= set(ids)
    assert common.choose(ids, 0.3, common.split_rng(0, "val")) == picked  # same seed, same ids
    assert len(common.choose(ids[:3], 0.01, common.split_rng(0, "val"))) == 1  # at least one
    assert common.choose(ids[:3], 0.01, common.split_rng(0, "val"), at_least_one=False) == []
    assert len(common.choose(ids[:2], 0.99, common.split_rng(0, "val"))) == 1  # never all
    assert common.choose(["only"], 0.5, common.split_rng(0, "val")) == []
    groups = {f"p{i}": f"c{i % 2}" for i in range(8)}
    chosen = common.choose_stratified(groups, 0.25, common.split_rng(0, "val"))
    assert sorted(groups[g] for g in chosen) == ["c0", "c1"]


def _rows(photos: list[str], sketches: int = 2) -> pd.DataFrame:
    return pd.DataFrame([{"path_sketch": f"s/{p}-{k}.png", "path_image": f"p/{p}.png", "label": p}
                         for p in photos for k in range(sketches)])


def test_carve_validation_holds_out_whole_photos():
    train, val = common.carve_validation(_rows([f"p{i}" for i in range(10)]), 0.2, seed=0)
    assert val["path_image"].nunique() == 2 and len(val) == 4
    assert not set(train["path_image"]) & set(val["path_image"]) and len(train) == 16
    with pytest.raises(ValueError, match="has 1 distinct path_image value"):
        common.carve_validation(_rows(["p0"]), 0.2, seed=0)
    with pytest.raises(ValueError, match=r"val_fraction must be in \(0, 1\), got 1.0"):
        common.carve_validation(_rows(["p0", "p1"]), 1.0, seed=0)


def test_check_fraction_read_id_list_relative(tmp_path):
    common.check_fraction("f", 0.0, allow_zero=True)
    with pytest.raises(ValueError, match=r"f must be in \[0, 1\), got -0.1"):
        common.check_fraction("f", -0.1, allow_zero=True)
    (tmp_path / "ids.txt").write_text("\ufeffa\n\n  b  \n", encoding="utf-8")
    assert common.read_id_list(tmp_path / "ids.txt") == ["a", "b"]
    assert common.relative(tmp_path / "x" / "y.png", tmp_path) == "x/y.png"


def _dataset(root: Path, photos: dict[str, list[str]]) -> dict[str, pd.DataFrame]:
    frames = {}
    for split, ids in photos.items():
        frames[split] = _rows(ids)
        for path in list(frames[split]["path_sketch"]) + list(frames[split]["path_image"]):
            _png(root / path)
    return frames


def test_finish_writes_sorted_indexes_spec_and_summary(tmp_path):
    frames = _dataset(tmp_path / "raw", {"train": ["b", "a"], "val": ["c"], "test": ["d"]})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sketches_train.csv").write_text("stale")
    summary = common.finish(tmp_path / "out", frames, sketch_root=tmp_path / "raw", image_root=tmp_path / "raw",
                            name="tiny", protocol="fine", summary={"format": "folders"})
    assert summary["counts"]["train"] == {"rows": 4, "sketches": 4, "photos": 2, "labels": 2}
    assert summary["integrity"] == "ok" and summary["removed_stale_files"] == ["sketches_train.csv"]
    train = pd.read_csv(tmp_path / "out" / "index_train.csv")
    assert list(train["path_sketch"]) == sorted(train["path_sketch"])
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["files"][-1] == "summary.json"
    text = common.format_summary({**summary, "source": "raw", "out_dir": "out"})
    assert text.splitlines()[0] == "folders: raw -> out" and "train: 4 rows, 4 sketches, 2 photos, 2 labels" in text
    assert "skipped: nothing" in text and "wrote: index_train.csv" in text


def test_finish_rejects_an_empty_split_and_a_photo_in_two_splits(tmp_path):
    frames = _dataset(tmp_path / "raw", {"train": ["a"], "val": ["b"], "test": ["c"]})
    with pytest.raises(ValueError, match="tiny: the val split is empty; nothing written to"):
        common.finish(tmp_path / "o1", {**frames, "val": frames["val"].iloc[:0]}, sketch_root=tmp_path / "raw",
                      image_root=tmp_path / "raw", name="tiny", protocol="fine", summary={})
    assert not (tmp_path / "o1" / "index_train.csv").exists()
    with pytest.raises(IndexValidationError, match="o2"):
        common.finish(tmp_path / "o2", {**frames, "test": frames["train"]}, sketch_root=tmp_path / "raw",
                      image_root=tmp_path / "raw", name="tiny", protocol="fine", summary={})
    assert json.loads((tmp_path / "o2" / "summary.json").read_text())["integrity"] != "ok"  # kept to inspect


def test_finish_sketch_only_lists_sketches_and_removes_an_old_index(tmp_path):
    frames = _dataset(tmp_path / "raw", {"train": ["a"], "test": ["b"]})
    out = tmp_path / "out"
    out.mkdir()
    (out / "index_train.csv").write_text("old")
    summary = common.finish_sketch_only(out, frames, sketch_root=tmp_path / "raw", summary={"format": "x"})
    assert summary["index_written"] is False and summary["removed_stale_files"] == ["index_train.csv"]
    assert sorted(p.name for p in out.iterdir()) == ["sketches_test.csv", "sketches_train.csv", "summary.json"]
    assert list(pd.read_csv(out / "sketches_train.csv").columns) == ["path_sketch", "label"]
    (tmp_path / "raw" / "s" / "b-1.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 listed sketch file\(s\) missing, e.g. s/b-1.png"):
        common.finish_sketch_only(out, frames, sketch_root=tmp_path / "raw", summary={})
