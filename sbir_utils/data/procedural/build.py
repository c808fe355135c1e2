"""Write the embedded data set: object photos + sketches + index CSVs, FS-COCO-style scenes, manifest.

Layout under ``root``::

    manifest.json                      version, resolved parameters, counts, wall time, sha256 per file
    objects/photos/<cat>/<cat>_<NNNN>.png
    objects/sketches/<cat>/<cat>_<NNNN>-<k>.png   objects/strokes/<cat>/<cat>_<NNNN>-<k>.npy (stroke-3)
    objects/attributes.csv             photo_id, category, split, attr_<name>...
    objects/fine/index_{train,val,test}.csv + dataset.json       label = photo id
    objects/category/index_{train,val,test}.csv + dataset.json   label = category
    scenes/{images,raster_sketches,vector_sketches,text}/<user>/<12-digit id>.{jpg,jpg,npy,txt}
    scenes/val_normal.txt  scenes/val_unseen_user.txt  scenes/scenes.csv

Every item draws from its own RNG seeded by (seed, category, index, ...), so the bytes do not depend on
order or worker count. Generation happens in a temporary folder that is renamed into place at the end.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ...config import GeneratorConfig
from ...fileio import sha256_file
from .. import index
from . import drawers, render, scenes, shapes

GENERATOR_VERSION = "1.0.0"
MANIFEST = "manifest.json"
JPEG_QUALITY = 92


class GeneratorError(ValueError):
    """The generator configuration or the output folder cannot be used."""


def source_digest() -> str:
    """sha256 of the generator's own source files (``builders/`` too), so an edited generator regenerates
    the set."""
    h = hashlib.sha256()
    here = Path(__file__).parent
    for path in sorted(here.rglob("*.py")):
        h.update(path.relative_to(here).as_posix().encode())
        h.update(path.read_bytes().replace(b"\r\n", b"\n"))
    return h.hexdigest()


def resolved_params(cfg: GeneratorConfig) -> dict:
    """Everything the output depends on (compared with the manifest to decide whether to regenerate)."""
    params = {
        "generator": dataclasses.asdict(cfg),
        "source_sha256": source_digest(),
        "n_unseen_drawers": n_unseen(cfg),
        "family_size": shapes.FAMILY_SIZE,
        "mutations": list(shapes.MUTATIONS),
        "continuous_jitter": shapes.CONTINUOUS_JITTER,
    }
    return json.loads(json.dumps(params))


def n_unseen(cfg: GeneratorConfig) -> int:
    return max(0, min(cfg.n_unseen_drawers, cfg.n_drawers - cfg.sketches_per_photo))


def check_config(cfg: GeneratorConfig) -> None:
    problems = []
    for c in cfg.categories:
        if c not in shapes.CATEGORY_SPECS:
            problems.append(f"unknown category {c!r} (known: {sorted(shapes.CATEGORY_SPECS)})")
    if len(set(cfg.categories)) != len(cfg.categories) or not cfg.categories:
        problems.append(f"categories must be a non-empty list without repeats, got {cfg.categories}")
    for name in ("instances_per_category", "sketches_per_photo", "n_drawers", "photo_size", "sketch_size",
                 "scene_drawers"):
        if int(getattr(cfg, name)) < 1:
            problems.append(f"{name} must be >= 1, got {getattr(cfg, name)}")
    if cfg.scenes < 0:
        problems.append(f"scenes must be >= 0, got {cfg.scenes}")
    if cfg.sketches_per_photo > cfg.n_drawers:
        problems.append(f"sketches_per_photo ({cfg.sketches_per_photo}) > n_drawers ({cfg.n_drawers}): "
                        "each sketch of a photo needs its own drawer")
    if len(cfg.split) != 3 or any(f < 0 for f in cfg.split) or sum(cfg.split) <= 0:
        problems.append(f"split must be three non-negative fractions [train, val, test], got {cfg.split}")
    if not 0 <= cfg.scene_test_fraction <= 1:
        problems.append(f"scene_test_fraction must be in [0, 1], got {cfg.scene_test_fraction}")
    if problems:
        raise GeneratorError("generator config: " + "; ".join(problems))


def split_of(cfg: GeneratorConfig, category: str) -> list[str]:
    """Split name of every instance of ``category`` (stratified: the fractions hold per category)."""
    n = cfg.instances_per_category
    f = np.asarray(cfg.split, dtype=np.float64) / sum(cfg.split)
    n_val, n_test = int(round(f[1] * n)), int(round(f[2] * n))
    if n >= 3:  # every split that asks for photos gets at least one
        n_val, n_test = max(n_val, int(f[1] > 0)), max(n_test, int(f[2] > 0))
    n_test = min(n_test, n)
    n_val = min(n_val, n - n_test)
    labels = np.array(["train"] * n, dtype=object)
    order = shapes.rng_for(cfg.seed, category, "split").permutation(n)
    labels[order[:n_test]] = "test"
    labels[order[n_test:n_test + n_val]] = "val"
    return list(labels)


def drawers_for(cfg: GeneratorConfig, category: str, i: int, split: str) -> list[int]:
    """Distinct drawer ids (1-based) of the photo's sketches. Test photos get one unseen drawer (with a
    single sketch per photo: half of them do), so test holds both seen- and unseen-drawer queries."""
    n_seen = cfg.n_drawers - n_unseen(cfg)
    rng = shapes.rng_for(cfg.seed, category, i, "drawers")
    seen = [int(d) + 1 for d in rng.permutation(n_seen)]
    k = cfg.sketches_per_photo
    if split != "test" or n_unseen(cfg) == 0 or (k == 1 and rng.random() < 0.5):
        return seen[:k]
    chosen = seen[:k - 1]
    unseen = n_seen + 1 + int(rng.integers(n_unseen(cfg)))
    chosen.insert(int(rng.integers(k)), unseen)
    return chosen


def _png(img, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG", optimize=False, compress_level=6)


def _npy(arr: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr, dtype=np.float32), allow_pickle=False)
    path.write_bytes(buf.getvalue())


def make_object(cfg: GeneratorConfig, category: str, i: int, split: str, out: Path) -> tuple[dict, list[dict]]:
    """Write one photo and its sketches; return its attribute row and its index rows."""
    photo_id = f"{category}_{i:04d}"
    attrs = shapes.instance_attributes(category, i, cfg.instances_per_category, cfg.seed)
    parts = shapes.build_geometry(category, attrs, cfg.seed)
    rng = shapes.rng_for(cfg.seed, category, i, "photo")
    colours = shapes.colour_roles(category, attrs, rng)
    pose = render.photo_pose(rng)
    photo_rel = f"photos/{category}/{photo_id}.png"
    _png(render.render_photo(parts, colours, cfg.photo_size, rng, pose=pose), out / photo_rel)
    rows = []
    unseen_from = cfg.n_drawers - n_unseen(cfg) + 1
    for k, drawer in enumerate(drawers_for(cfg, category, i, split), start=1):
        style = drawers.drawer_style(cfg.seed, drawer)
        pts, widths = drawers.sketch_object(parts, style, shapes.rng_for(cfg.seed, category, i, "sketch", k),
                                            flip=pose["flip"])
        sketch_rel = f"sketches/{category}/{photo_id}-{k}.png"
        _npy(pts, out / f"strokes/{category}/{photo_id}-{k}.npy")
        _png(drawers.raster(pts, widths, cfg.sketch_size), out / sketch_rel)
        rows.append({"path_sketch": sketch_rel, "path_image": photo_rel, "photo_id": photo_id, "category": category,
                     "drawer": drawer, "drawer_unseen": int(drawer >= unseen_from), "split": split})
    attr_row = {"photo_id": photo_id, "category": category, "split": split,
                **{f"attr_{k}": v for k, v in attrs.items()}}
    return attr_row, rows


def _run_all(fn, tasks: list[tuple], workers: int) -> list:
    """``[fn(*t) for t in tasks]``, in order, optionally in ``workers`` processes (results are identical:
    every item seeds its own RNG)."""
    if workers <= 1 or len(tasks) < 2:
        return [fn(*t) for t in tasks]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, *zip(*tasks), chunksize=max(1, len(tasks) // (8 * workers))))


def write_objects(cfg: GeneratorConfig, out: Path, workers: int = 1) -> dict:
    tasks = [(cfg, category, i, split, out) for category in cfg.categories
             for i, split in enumerate(split_of(cfg, category))]
    attr_rows, rows = [], []
    for a, r in _run_all(make_object, tasks, workers):
        attr_rows.append(a)
        rows.extend(r)
    attrs = pd.DataFrame(attr_rows, dtype=object)  # object: integer counts stay integers next to NaN
    shape_cols = [f"attr_{n}" for c in cfg.categories for n in shapes.CATEGORY_ATTRIBUTES[c]]
    cols = ["photo_id", "category", "split"] + list(dict.fromkeys(shape_cols)) + [
        f"attr_{n}" for n in shapes.PHOTO_ATTRIBUTES]
    attrs = attrs.reindex(columns=cols)
    attrs.to_csv(out / "attributes.csv", index=False, lineterminator="\n")
    df = pd.DataFrame(rows)
    unseen = list(range(cfg.n_drawers - n_unseen(cfg) + 1, cfg.n_drawers + 1))
    counts: dict[str, dict[str, int]] = {}
    for split in index.SPLITS:
        part = df[df["split"] == split]
        if part.empty:
            continue
        fine = part.assign(label=part["photo_id"])[["path_sketch", "path_image", "label", "category", "drawer",
                                                      "drawer_unseen"]]
        cat = part.assign(label=part["category"])[["path_sketch", "path_image", "label", "photo_id", "drawer",
                                                     "drawer_unseen"]]
        index.write_index(fine, out / "fine" / f"index_{split}.csv")
        index.write_index(cat, out / "category" / f"index_{split}.csv")
        counts[split] = {"photos": int(part["photo_id"].nunique()), "sketches": len(part)}
    info = {"generator_version": GENERATOR_VERSION, "unseen_drawers": unseen, "n_drawers": cfg.n_drawers}
    index.write_spec(out / "fine", sketch_root="..", image_root="..", name="embedded-fine", protocol="fine", **info)
    index.write_spec(out / "category", sketch_root="..", image_root="..", name="embedded-category",
                     protocol="category", **info)
    return {"photos": len(attrs), "sketches": len(df), "categories": len(cfg.categories), "splits": counts,
            "unseen_drawers": unseen}


def scene_ids(cfg: GeneratorConfig) -> list[str]:
    """Unique 12-digit zero-padded ids, like COCO's."""
    rng = shapes.rng_for(cfg.seed, "scene-ids")
    return [f"{int(v):012d}" for v in rng.choice(np.arange(1, 1_000_000), size=cfg.scenes, replace=False)]


def scene_users(cfg: GeneratorConfig) -> list[int]:
    """User (scene drawer) 1..scene_drawers of each scene; each draws about scenes / scene_drawers."""
    perm = shapes.rng_for(cfg.seed, "scene-users").permutation(cfg.scenes)
    return [int(p % cfg.scene_drawers) + 1 for p in perm]


def make_scene(cfg: GeneratorConfig, n: int, sid: str, user: int, out: Path) -> dict:
    """Write scene ``n`` (photo, raster and vector sketch, caption) for ``user``; return its table row."""
    from PIL import Image

    rng = shapes.rng_for(cfg.seed, "scene", n)
    big = cfg.photo_size * render.SUPERSAMPLE
    scene = scenes.compose_scene(list(cfg.categories), rng, cfg.seed, big)
    photo = render.to_image(scenes.render_scene_photo(scene, cfg.photo_size, rng), cfg.photo_size)
    style = drawers.drawer_style(cfg.seed, user, kind="scene")
    pts, widths, drawn = scenes.sketch_scene(scene, style, shapes.rng_for(cfg.seed, "scene-sketch", n), big)
    u = str(user)
    for sub in ("images", "raster_sketches", "vector_sketches", "text"):
        (out / sub / u).mkdir(parents=True, exist_ok=True)
    photo.save(out / "images" / u / f"{sid}.jpg", format="JPEG", quality=JPEG_QUALITY)
    sketch = drawers.raster(pts, widths, cfg.sketch_size)
    Image.merge("RGB", [sketch] * 3).save(out / "raster_sketches" / u / f"{sid}.jpg", format="JPEG",
                                           quality=JPEG_QUALITY)
    _npy(pts, out / "vector_sketches" / u / f"{sid}.npy")
    (out / "text" / u / f"{sid}.txt").write_text(scene.caption + "\n", encoding="utf-8")
    return {"id": sid, "user": user, "background": scene.background, "n_objects": len(scene.objects),
            "categories": ";".join(o.category for o in scene.objects),
            "drawn": ";".join(str(int(d)) for d in drawn), "caption": scene.caption}


def write_scenes(cfg: GeneratorConfig, out: Path, workers: int = 1) -> dict:
    tasks = [(cfg, n, sid, user, out) for n, (sid, user) in enumerate(zip(scene_ids(cfg), scene_users(cfg)))]
    rows = _run_all(make_scene, tasks, workers)
    df = pd.DataFrame(rows, columns=["id", "user", "background", "n_objects", "categories", "drawn", "caption"])
    rng = shapes.rng_for(cfg.seed, "scene-split")
    n_test = int(round(cfg.scene_test_fraction * len(df)))
    normal = sorted(df["id"].iloc[rng.permutation(len(df))[:n_test]]) if len(df) else []
    unseen_user: list[str] = []
    for user, grp in df.groupby("user", sort=True):
        k = int(round(cfg.scene_test_fraction * len(grp)))
        pick = shapes.rng_for(cfg.seed, "scene-split-user", user).permutation(len(grp))[:k]
        unseen_user.extend(grp["id"].iloc[pick])
    (out / "val_normal.txt").write_text("".join(f"{i}\n" for i in normal), encoding="utf-8")
    (out / "val_unseen_user.txt").write_text("".join(f"{i}\n" for i in sorted(unseen_user)), encoding="utf-8")
    df["val_normal"] = df["id"].isin(set(normal)).astype(int)
    df["val_unseen_user"] = df["id"].isin(set(unseen_user)).astype(int)
    df.to_csv(out / "scenes.csv", index=False, lineterminator="\n")
    return {"scenes": len(df), "users": int(df["user"].nunique()) if len(df) else 0, "val_normal": len(normal),
            "val_unseen_user": len(unseen_user)}


def read_manifest(root: Path) -> dict | None:
    path = Path(root) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def is_up_to_date(cfg: GeneratorConfig, root: Path) -> bool:
    """True when ``root`` holds a complete set made by this generator version with these parameters."""
    manifest = read_manifest(root)
    if not manifest or manifest.get("version") != GENERATOR_VERSION or manifest.get("params") != resolved_params(cfg):
        return False
    return all((Path(root) / rel).is_file() for rel in manifest.get("files", {}))


def generate(cfg: GeneratorConfig, root: str | Path, *, force: bool = False, workers: int = 1) -> dict:
    """Generate the embedded data set into ``root`` unless it is already up to date; return the manifest.

    The returned dict has ``"skipped": True`` when nothing was written. ``workers`` > 1 renders in that
    many processes; the bytes are the same for any number of workers.
    """
    check_config(cfg)
    params = resolved_params(cfg)
    root = Path(root).expanduser().resolve()
    if not force and is_up_to_date(cfg, root):
        return {**(read_manifest(root) or {}), "skipped": True}
    if root.exists() and (not root.is_dir() or (any(root.iterdir()) and not (root / MANIFEST).exists())):
        raise GeneratorError(f"{root}: exists and is not a generated data set (no {MANIFEST}); "
                             "choose another folder or remove it")
    start = time.perf_counter()
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        counts = {"objects": write_objects(cfg, tmp / "objects", workers)}
        if cfg.scenes:
            counts["scenes"] = write_scenes(cfg, tmp / "scenes", workers)
        files = {p.relative_to(tmp).as_posix(): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        manifest = {
            "generator": "sbir_utils.data.procedural",
            "version": GENERATOR_VERSION,
            "params": params,
            "counts": counts,
            "drawers": {str(d): drawers.drawer_style(cfg.seed, d).to_dict() for d in range(1, cfg.n_drawers + 1)},
            "scene_drawers": {str(d): drawers.drawer_style(cfg.seed, d, kind="scene").to_dict()
                              for d in range(1, cfg.scene_drawers + 1)},
            "wall_time_s": round(time.perf_counter() - start, 3),
            "files": files,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        old = root.parent / f".{root.name}.old-{os.getpid()}"
        if root.exists():
            os.replace(root, old)
        os.replace(tmp, root)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest
