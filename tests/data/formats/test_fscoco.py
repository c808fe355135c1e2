from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sbir_utils.data.formats import fscoco
from sbir_utils.data.index import load_spec, read_splits, split_integrity

USERS, PER_USER = 6, 4


def _img(path: Path, mode: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (12, 9), 250 if mode == "L" else (80, 100, 120)).save(path)


def _coco_id(user: int, j: int) -> str:
    return f"{user * 1000 + j:012d}"  # 12-digit COCO ids


@pytest.fixture()
def raw(tmp_path: Path) -> Path:
    root = tmp_path / "fscoco"
    for u in range(1, USERS + 1):
        for j in range(PER_USER):
            pid = _coco_id(u, j)
            _img(root / "images" / str(u) / f"{pid}.jpg", "RGB")
            _img(root / "raster_sketches" / str(u) / f"{pid}.jpg", "L")
            if j % 2 == 0:
                (root / "text" / str(u)).mkdir(parents=True, exist_ok=True)
                (root / "text" / str(u) / f"{pid}.txt").write_text("a dog on a sofa")
                (root / "vector_sketches" / str(u)).mkdir(parents=True, exist_ok=True)
                np.save(root / "vector_sketches" / str(u) / f"{pid}.npy", np.zeros((3, 3)))
    _img(root / "raster_sketches" / "2" / "000000999999.jpg", "L")  # a sketch without its photo
    # val_normal: two ids of users 1-3 (one written without the zero padding); val_unseen_user: one id per user
    normal = [_coco_id(1, 0), _coco_id(1, 1), _coco_id(2, 3), str(int(_coco_id(3, 2)))]
    (root / "val_normal.txt").write_text("\n".join(normal) + "\n")
    (root / "val_unseen_user.txt").write_text("\n".join(_coco_id(u, 0) for u in range(1, USERS + 1)) + "\n")
    return root


def _rows(out: Path) -> pd.DataFrame:
    return pd.concat([df.assign(split=s) for s, df in read_splits(out).items()], ignore_index=True)


def test_normal_split_row_by_row(raw: Path, tmp_path: Path):
    out = tmp_path / "idx"
    summary = fscoco.build_index(raw, out, "normal", 0, 0.1)
    rows = _rows(out)
    assert len(rows) == USERS * PER_USER
    for row in rows.itertuples():
        assert row.path_image == f"images/{row.user}/{row.label}.jpg"
        assert row.path_sketch == f"raster_sketches/{row.user}/{row.label}.jpg"
        j = int(row.label) % 1000
        assert row.caption_file == (f"text/{row.user}/{row.label}.txt" if j % 2 == 0 else "")
        assert row.vector_file == (f"vector_sketches/{row.user}/{row.label}.npy" if j % 2 == 0 else "")
    expected_test = {_coco_id(1, 0), _coco_id(1, 1), _coco_id(2, 3), _coco_id(3, 2)}
    assert set(rows.loc[rows["split"] == "test", "label"]) == expected_test
    assert (rows["split"] == "val").sum() == 2  # 10% of 20 training photos
    assert summary["skipped"]["sketch with no photo of the same user and id"]["count"] == 1
    assert load_spec(out).protocol == "scene"
    assert split_integrity(read_splits(out))["ok"].all()


def test_unseen_file_is_reported_as_not_holding_out_users(raw: Path, tmp_path: Path):
    summary = fscoco.build_index(raw, tmp_path / "idx", split="unseen-file")
    rows = _rows(tmp_path / "idx")
    assert set(rows.loc[rows["split"] == "test", "label"]) == {_coco_id(u, 0) for u in range(1, USERS + 1)}
    assert summary["users_in_train_and_test"] == USERS
    assert summary["test_per_user"] == {"min": 1, "max": 1, "users": USERS}
    assert any("not an unseen-user split" in n for n in summary["notes"])


def test_unseen_user_holds_out_whole_users(raw: Path, tmp_path: Path):
    summary = fscoco.build_index(raw, tmp_path / "idx", split="unseen-user", seed=7, val_fraction=0.25,
                                 unseen_fraction=0.34)
    rows = _rows(tmp_path / "idx")
    users = {s: set(rows.loc[rows["split"] == s, "user"]) for s in ("train", "val", "test")}
    assert users["test"] == set(summary["users_held_out"]) and len(users["test"]) == 2
    assert users["val"] == set(summary["val_users"]) and len(users["val"]) == 1
    assert not users["train"] & users["test"] and not users["train"] & users["val"] and not users["val"] & users["test"]
    assert rows.groupby("user")["split"].nunique().eq(1).all()
    again = fscoco.build_index(raw, tmp_path / "idx2", split="unseen-user", seed=7, val_fraction=0.25,
                               unseen_fraction=0.34)
    assert again["users_held_out"] == summary["users_held_out"]


def test_random_split_and_missing_split_file(raw: Path, tmp_path: Path):
    fscoco.build_index(raw, tmp_path / "idx", split="random", test_fraction=0.25)
    rows = _rows(tmp_path / "idx")
    assert (rows["split"] == "test").sum() == 6
    (raw / "val_normal.txt").unlink()
    with pytest.raises(FileNotFoundError, match="val_normal.txt"):
        fscoco.build_index(raw, tmp_path / "idx3")
