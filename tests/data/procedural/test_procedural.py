"""The embedded procedural data set: determinism, skipping, layouts, splits, files, sketch quality."""

from __future__ import annotations

import argparse
import dataclasses
import pickle
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sbir_utils import paths
from sbir_utils.config import GeneratorConfig
from sbir_utils.data import index
from sbir_utils.data import procedural as proc
from sbir_utils.data.images import ink_coverage, load_image
from sbir_utils.data.procedural import drawers, shapes
from sbir_utils.data.strokes import rasterise, split_strokes, stroke_statistics

TINY = GeneratorConfig(seed=3, categories=["shoe", "chair", "mug"], instances_per_category=4, sketches_per_photo=3,
                       n_drawers=6, photo_size=32, sketch_size=32, split=[0.5, 0.25, 0.25], scenes=9,
                       scene_drawers=3, scene_test_fraction=1 / 3)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("embedded") / "tiny"
    return root, proc.generate(TINY, root)


def test_never_writes_into_the_project_data_folder(tiny):
    root, _ = tiny
    assert not root.resolve().is_relative_to(paths.PROJECT_ROOT / "data")


def test_same_seed_same_bytes_other_seed_other_bytes(tiny, tmp_path):
    _, first = tiny
    again = proc.generate(TINY, tmp_path / "again", workers=2)  # order and worker count do not matter
    assert again["files"] == first["files"] and len(first["files"]) > 100
    other = proc.generate(dataclasses.replace(TINY, seed=4, scenes=0), tmp_path / "other")
    shared = set(other["files"]) & set(first["files"])
    photos = [f for f in shared if f.startswith("objects/photos/")]
    assert photos and all(other["files"][f] != first["files"][f] for f in photos)


def test_skips_when_up_to_date_and_regenerates_on_change(tmp_path):
    cfg = dataclasses.replace(TINY, categories=["mug"], scenes=2)
    root = tmp_path / "set"
    made = proc.generate(cfg, root)
    assert "skipped" not in made and proc.is_up_to_date(cfg, root)
    assert proc.generate(cfg, root)["skipped"] is True
    changed = dataclasses.replace(cfg, photo_size=40)
    assert not proc.is_up_to_date(changed, root)
    remade = proc.generate(changed, root)
    assert "skipped" not in remade and remade["params"]["generator"]["photo_size"] == 40
    assert Image.open(root / "objects/photos/mug/mug_0000.png").size == (40, 40)
    (root / "objects/photos/mug/mug_0001.png").unlink()
    assert not proc.is_up_to_date(changed, root)
    assert "skipped" not in proc.generate(changed, root)
    assert (root / "objects/photos/mug/mug_0001.png").is_file()
    assert "skipped" not in proc.generate(changed, root, force=True)
    assert not list(tmp_path.glob(".set.*")), "temporary folders left behind"


def test_refuses_a_foreign_folder_and_bad_configs(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(proc.GeneratorError, match="not a generated data set"):
        proc.generate(TINY, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    with pytest.raises(proc.GeneratorError, match="unknown category 'dragon'"):
        proc.generate(dataclasses.replace(TINY, categories=["dragon"]), tmp_path / "x")
    with pytest.raises(proc.GeneratorError, match="sketches_per_photo"):
        proc.generate(dataclasses.replace(TINY, n_drawers=2), tmp_path / "x")


def test_manifest_lists_every_file_with_its_hash(tiny):
    root, manifest = tiny
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in manifest["files"].values())
    assert manifest["version"] == proc.GENERATOR_VERSION
    assert manifest["params"]["generator"] == dataclasses.asdict(TINY)
    assert manifest["counts"]["objects"]["photos"] == 12 and manifest["counts"]["objects"]["sketches"] == 36
    assert manifest["wall_time_s"] > 0


def test_attribute_table(tiny):
    root, _ = tiny
    attrs = proc.load_attributes(root)
    assert proc.load_attributes(root / "objects").equals(attrs)
    assert list(attrs.columns[:3]) == ["photo_id", "category", "split"]
    assert all(c.startswith("attr_") for c in attrs.columns[3:])
    assert len(attrs) == 12 and attrs["photo_id"].is_unique
    text = (root / "objects" / "attributes.csv").read_text()
    assert re.search(r",(0|3|4|5|6),", text) and not re.search(r"shoe,(train|val|test),([^,]*,){3}\d\.0,", text)
    for cat, grp in attrs.groupby("category"):
        own = {f"attr_{n}" for n in proc.CATEGORY_ATTRIBUTES[cat]} | {f"attr_{n}" for n in proc.PHOTO_ATTRIBUTES}
        assert grp[sorted(own)].notna().all().all()
        others = [c for c in attrs.columns[3:] if c not in own]
        assert grp[others].isna().all().all(), f"{cat} has values in columns of other categories"
    with pytest.raises(FileNotFoundError, match="attributes.csv"):
        proc.load_attributes(root / "nowhere")


def test_indexes_layout_splits_and_decoding(tiny):
    root, _ = tiny
    objects = root / "objects"
    fine = index.read_splits(index.load_spec(objects / "fine"), check_decode=True, strict=True)
    cat = index.read_splits(index.load_spec(objects / "category"), check_decode=True, strict=True)
    spec = index.load_spec(objects / "fine")
    assert spec.protocol == "fine" and spec.name == "embedded-fine" and spec.image_root == objects.resolve()
    assert index.load_spec(objects / "category").protocol == "category"
    for split, df in fine.items():
        raw = pd.read_csv(objects / "fine" / f"index_{split}.csv", dtype=str)
        assert list(raw.columns) == ["path_sketch", "path_image", "label", "category", "drawer", "drawer_unseen"]
        for row in raw.itertuples():
            assert row.path_image == f"photos/{row.category}/{row.label}.png"
            assert re.fullmatch(rf"sketches/{row.category}/{row.label}-[123]\.png", row.path_sketch)
        assert (df.groupby("label").size() == 3).all()
        raw_cat = pd.read_csv(objects / "category" / f"index_{split}.csv", dtype=str)
        assert list(raw_cat.columns) == ["path_sketch", "path_image", "label", "photo_id", "drawer", "drawer_unseen"]
        assert set(raw_cat["label"]) <= set(TINY.categories)
        assert sorted(raw_cat["path_sketch"]) == sorted(raw["path_sketch"])
    assert index.split_integrity(fine)["ok"].all() and index.split_integrity(cat)["ok"].all()
    photos = {s: set(df["label"]) for s, df in fine.items()}
    assert not (photos["train"] & photos["val"]) and not (photos["train"] & photos["test"])
    assert not (photos["val"] & photos["test"])
    for split, expected in (("train", 2), ("val", 1), ("test", 1)):  # stratified by category
        assert (fine[split].groupby("category")["label"].nunique() == expected).all()


def test_strokes_are_stroke3_on_the_256_canvas(tiny):
    root, _ = tiny
    files = sorted((root / "objects" / "strokes").rglob("*.npy"))
    assert len(files) == 36
    for f in files:
        pts = np.load(f)
        assert pts.dtype == np.float32 and pts.ndim == 2 and pts.shape[1] == 3 and len(pts) >= 4
        assert pts[:, :2].min() >= 0 and pts[:, :2].max() <= 256 and pts[-1, 2] == 1
        assert set(np.unique(pts[:, 2])) <= {0.0, 1.0}
        png = f.parent.parent.parent / "sketches" / f.parent.name / (f.stem + ".png")
        assert png.is_file()


def test_sketches_differ_and_look_like_sketches(tiny):
    root, _ = tiny
    df = pd.read_csv(root / "objects/fine/index_train.csv", dtype=str)
    for _, grp in df.groupby("label"):
        assert grp["drawer"].is_unique
        arrs = [np.asarray(load_image(root / "objects" / p, kind="sketch")) for p in grp["path_sketch"]]
        for a in range(len(arrs)):
            for b in range(a + 1, len(arrs)):
                assert np.abs(arrs[a].astype(int) - arrs[b].astype(int)).mean() > 1.0
    covers = [ink_coverage(load_image(root / "objects" / p, kind="sketch")) for p in df["path_sketch"]]
    assert 0.01 < min(covers) and max(covers) < 0.3, covers
    photo = np.asarray(load_image(root / "objects" / df["path_image"].iloc[0]), dtype=float)
    assert photo.std() > 10 and np.ptp(photo.mean(axis=(0, 1))) >= 0  # not blank


def test_unseen_drawers_draw_only_test_sketches(tiny):
    root, manifest = tiny
    unseen = set(manifest["counts"]["objects"]["unseen_drawers"])
    assert unseen == {5, 6} and index.load_spec(root / "objects/fine").info["unseen_drawers"] == [5, 6]
    for split in ("train", "val", "test"):
        df = pd.read_csv(root / f"objects/fine/index_{split}.csv")
        assert (df["drawer_unseen"] == df["drawer"].isin(unseen)).all()
        if split == "test":
            assert df.groupby("label")["drawer_unseen"].sum().eq(1).all()
        else:
            assert not df["drawer"].isin(unseen).any()


def test_fscoco_scene_layout(tiny):
    root, _ = tiny
    sc = root / "scenes"
    table = pd.read_csv(sc / "scenes.csv", dtype={"id": str})
    assert len(table) == 9 and table["id"].is_unique
    assert table["id"].str.fullmatch(r"\d{12}").all()
    assert sorted(table["user"].unique()) == [1, 2, 3] and (table["user"].value_counts() == 3).all()
    assert table["n_objects"].between(2, 5).all()
    for row in table.itertuples():
        u = str(row.user)
        assert Image.open(sc / "images" / u / f"{row.id}.jpg").size == (32, 32)
        assert load_image(sc / "raster_sketches" / u / f"{row.id}.jpg", kind="sketch").size == (32, 32)
        pts = np.load(sc / "vector_sketches" / u / f"{row.id}.npy")
        assert pts.shape[1] == 3 and pts[-1, 2] == 1
        text = (sc / "text" / u / f"{row.id}.txt").read_text().strip()
        assert text == row.caption and text.startswith(("a ", "an ")) and len(text.split()) >= 4
    normal = (sc / "val_normal.txt").read_text().split()
    per_user = (sc / "val_unseen_user.txt").read_text().split()
    assert len(normal) == 3 and set(normal) <= set(table["id"]) and len(set(normal)) == 3
    assert table.set_index("id").loc[per_user, "user"].value_counts().eq(1).all() and len(per_user) == 3


def test_render_instance_and_errors():
    photo, strokes = proc.render_instance("car", {"body_type": "van", "spoiler": "yes"}, size=48, seed=1)
    assert photo.size == (48, 48) and photo.mode == "RGB"
    assert strokes.dtype == np.float32 and strokes.shape[1] == 3 and len(split_strokes(strokes)) >= 3
    again, strokes2 = proc.render_instance("car", {"body_type": "van", "spoiler": "yes"}, size=48, seed=1)
    assert np.array_equal(np.asarray(photo), np.asarray(again)) and np.array_equal(strokes, strokes2)
    with pytest.raises(ValueError, match="unknown category"):
        proc.render_instance("dragon")
    with pytest.raises(ValueError, match="unknown attribute"):
        proc.render_instance("car", {"wings": 2})


def test_cli_and_ensure_embedded(tmp_path, monkeypatch, capsys):
    profile = tmp_path / "mini.yaml"
    profile.write_text("generator:\n  categories: [bottle, tree]\n  instances_per_category: 3\n  photo_size: 32\n"
                       "  sketch_size: 32\n  scenes: 2\n  scene_drawers: 2\n  n_drawers: 4\n")
    parser = argparse.ArgumentParser()
    proc.add_arguments(parser)
    args = parser.parse_args(["--profile", str(profile), "--out", str(tmp_path / "out")])
    assert proc.run(args) == 0
    assert "photos" in capsys.readouterr().out
    assert proc.run(args) == 0 and "up to date" in capsys.readouterr().out
    assert proc.run(parser.parse_args(["--profile", str(tmp_path / "none.yaml")])) == 2
    monkeypatch.setenv("SBIR_DATA_DIR", str(tmp_path / "data"))
    root = proc.ensure_embedded(str(profile))
    assert root == tmp_path / "data" / "embedded" / "mini" and (root / "manifest.json").is_file()


# ------------------------------------------------------------------------------------------------
# human-likeness against real QMUL-Chair-V2 strokes (skips without ../shared/data)


def _load_chairv2(path: Path) -> dict:
    allowed = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    class Restricted(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) in allowed:
                return super().find_class(module, name)
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed")

    with open(path, "rb") as fh:
        return Restricted(fh).load()


def _summary(sketches: list[np.ndarray]) -> dict[str, float]:
    stats = pd.DataFrame([stroke_statistics(s) for s in sketches])
    cover = [ink_coverage(rasterise(s, 128, line_width=1.5)) for s in sketches]
    return {"n_strokes": stats["n_strokes"].median(), "points_per_stroke": stats["points_per_stroke"].median(),
            "total_length": stats["total_length"].median(), "coverage": float(np.median(cover))}


@pytest.mark.realdata
def test_procedural_chairs_resemble_chairv2_strokes():
    src = paths.shared_data("chairv2-strokes")
    if src is None or not (src / "ChairV2_Coordinate").is_file():
        pytest.skip("../shared/data/chairv2-strokes is not available")
    real = list(_load_chairv2(src / "ChairV2_Coordinate").values())[:300]
    ours = []
    for i in range(30):
        parts = shapes.build_geometry("chair", shapes.instance_attributes("chair", i, 30, 0))
        style = drawers.drawer_style(0, 1 + i % 10)
        ours.append(drawers.sketch_object(parts, style, shapes.rng_for(0, "test", i))[0])
    r, o = _summary(real), _summary(ours)
    for key in r:
        assert 0.5 < o[key] / r[key] < 2.0, (key, r, o)
