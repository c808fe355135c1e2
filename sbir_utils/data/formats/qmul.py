"""QMUL-Shoe-V2 / QMUL-Chair-V2 (instance-level, label = photo id).

Two sources of sketches, the same photos (``photo/<id>.png``, possibly under ``train/``/``test/``):

* PNG folders: ``sketch/<id>_<k>.png``, optionally under ``train/``, ``test/`` (or ``trainA``,
  ``testB``, ...) sub-folders, which then give the split; without them the split is a seeded
  fraction of photos.
* The stroke pickle ``ShoeV2_Coordinate`` / ``ChairV2_Coordinate``: a dict mapping
  ``/train/<id>_<k>`` or ``/test/<id>_<k>`` to a ``(N, 3)`` stroke-3 array on a 256 canvas. It is
  loaded with :mod:`sbir_utils.data.safe_pickle`, each sketch is rasterised to
  ``OUT/sketches/<split>/<id>_<k>.png``, and the split is read from the keys.

Validation photos are carved (seeded) from the training photos. Counts of the public copies differ
from the papers' (ChairV2 here: 952 train / 323 test sketches; papers quote 951/324; ShoeV2 public
copies 5,982/666 vs 6,051/679): the summary states the counts actually found.

Without photos (e.g. only the stroke file) no index can be built: the importer writes the rasters,
``sketches_{train,val,test}.csv`` (``path_sketch,label``) and a summary saying photos are missing;
pass ``--photos DIR`` to pair them.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..images import ink_coverage
from ..safe_pickle import load as safe_load
from ..strokes import CANVAS, rasterise
from .common import (
    Skipped,
    assign_by_group,
    carve_validation,
    check_fraction,
    choose,
    finish,
    finish_sketch_only,
    images_by_stem,
    list_images,
    parse_sketch_stem,
    photos_by_stem,
    relative,
    split_rng,
)

DESCRIPTION = "QMUL-Shoe-V2 / Chair-V2: photo/ + sketch/ PNG folders or the *_Coordinate stroke pickle"
# QMUL sketch names are <photo id>_<k>; k is usually a number but a few ChairV2 keys carry a worker id
# instead (/test/sdich070-laque-rouge_A1YX741QQSMKPS), so k is any run of letters and digits.
QMUL_PATTERN = r"^(?P<photo>.+)_(?P<k>[A-Za-z0-9]+)$"
PHOTO_DIRS = {"photo", "photos", "image", "images"}
SKETCH_DIRS = {"sketch", "sketches"}
_SPLIT_DIR = re.compile(r"^(train|test)[a-z]?$", re.IGNORECASE)  # train, test, trainA, testB, ...


def _split_of(rel_parts: tuple[str, ...]) -> str | None:
    for part in rel_parts:
        m = _SPLIT_DIR.match(part)
        if m:
            return m.group(1).lower()
    return None


def _role(rel_parts: tuple[str, ...]) -> str | None:
    folders = [p.lower() for p in rel_parts[:-1]]
    if any(p in SKETCH_DIRS for p in folders):
        return "sketch"
    if any(p in PHOTO_DIRS for p in folders):
        return "photo"
    return None


def scan(root: Path, skipped: Skipped) -> tuple[dict[str, Path], list[tuple[Path, str | None]]]:
    """Images under ``root``: photo id -> file for those in a ``photo(s)``/``image(s)`` folder, and
    ``(file, split or None)`` for those in a ``sketch(es)`` folder. Files elsewhere are ignored."""
    local = Skipped()
    files = list_images(root, local)
    for reason, items in local.reasons.items():
        for item in items:
            if _role(Path(item).relative_to(root).parts):
                skipped.add(reason, item)
    photos: list[Path] = []
    sketches: list[tuple[Path, str | None]] = []
    for p in files:
        parts = p.relative_to(root).parts
        role = _role(parts)
        if role == "sketch":
            sketches.append((p, _split_of(parts[:-1])))
        elif role == "photo":
            photos.append(p)
    return photos_by_stem(photos, skipped, root), sketches


def find_stroke_file(root: Path) -> Path | None:
    if root.is_file():
        return root
    found = sorted(p for p in root.rglob("*_Coordinate") if p.is_file())
    if len(found) > 1:
        raise ValueError(f"{root}: several stroke files {[str(p) for p in found]}; pass one of them as RAW_ROOT")
    return found[0] if found else None


def _rasterise_strokes(
    stroke_file: Path, out_dir: Path, skipped: Skipped, *, size: int, canvas: float, line_width: float
) -> tuple[list[dict[str, Any]], list[float]]:
    data = safe_load(stroke_file)
    if not isinstance(data, dict):
        raise ValueError(f"{stroke_file}: expected a pickled dict of stroke arrays, got {type(data).__name__}")
    rows, coverage = [], []
    for key in sorted(data, key=str):
        parts = str(key).strip("/").split("/")
        if len(parts) != 2 or parts[0].lower() not in ("train", "test"):
            skipped.add("stroke key without a /train/ or /test/ prefix", key)
            continue
        split, sketch_name = parts[0].lower(), parts[1]
        if sketch_name in ("", ".", "..") or "\\" in sketch_name:
            skipped.add("stroke key with an unsafe name", key)
            continue
        parsed = parse_sketch_stem(sketch_name, QMUL_PATTERN)
        if parsed is None:
            skipped.add("stroke key not named <photo>_<k>", key)
            continue
        points = data[key]
        if not (isinstance(points, np.ndarray) and points.ndim == 2 and points.shape[0] > 0
                and points.shape[1] >= 3 and np.isfinite(points[:, :3].astype(np.float64)).all()):
            skipped.add("not a finite (N, 3) stroke array", key)
            continue
        img = rasterise(points, size=size, canvas=canvas, line_width=line_width)
        target = out_dir / "sketches" / split / f"{sketch_name}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        img.save(target)
        coverage.append(ink_coverage(img))
        rows.append({"path_sketch": relative(target, out_dir), "label": parsed[0], "split": split, "key": str(key)})
    return rows, coverage


def build_index(
    raw_root: str | Path,
    out_dir: str | Path,
    *,
    source: str = "auto",
    photos: str | Path | None = None,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    seed: int = 0,
    raster_size: int = 256,
    line_width: float = 2.0,
    canvas: float = CANVAS,
    name: str = "",
    check_decode: bool = False,
) -> dict[str, Any]:
    """Index QMUL-Shoe-V2/Chair-V2; returns the summary (also in ``out_dir/summary.json``).

    Args:
        raw_root: the dataset folder, or the ``*_Coordinate`` stroke file itself.
        source: ``"png"`` (sketch folders), ``"strokes"`` (the pickle) or ``"auto"`` (PNG sketches if
            any, else the pickle).
        photos: folder holding the photos (``<id>.png``); default: ``photo/`` folders under ``raw_root``.
        test_fraction: used only for PNG sketches without train/test folders.
        raster_size, line_width, canvas: rasterisation of strokes (coordinates on a ``canvas`` square).
    """
    raw_root = Path(raw_root).resolve()
    out_dir = Path(out_dir).resolve()
    if not raw_root.exists():
        raise FileNotFoundError(f"{raw_root}: not found")
    if source not in ("auto", "png", "strokes"):
        raise ValueError(f"source must be auto, png or strokes, got {source!r}")
    skipped = Skipped()
    root_dir = raw_root if raw_root.is_dir() else raw_root.parent

    photo_map, png, stroke_file = _find_sketches(raw_root, source, skipped)
    use_png = bool(png)
    image_root, photo_map = _photo_folder(raw_root, root_dir, photos, photo_map, skipped)

    notes: list[str] = []
    summary: dict[str, Any] = {"format": "qmul", "source": str(raw_root), "out_dir": str(out_dir), "seed": seed,
                               "val_fraction": val_fraction}
    if use_png:
        sketch_root = raw_root
        rows = _png_rows(png, photo_map, raw_root, skipped, summary, seed, test_fraction, val_fraction)
    else:
        sketch_root = out_dir
        rows = _stroke_rows(stroke_file, out_dir, skipped, summary, raster_size, canvas, line_width, val_fraction)
    if not rows:
        raise ValueError(f"{raw_root}: no usable sketches (skipped: {skipped.as_dict()})")
    df = pd.DataFrame(rows)
    summary["sketches_per_split_from_source"] = {s: int((df["split"] == s).sum()) for s in ("train", "test")}
    leaked = set(df.loc[df["split"] == "train", "label"]) & set(df.loc[df["split"] == "test", "label"])
    if leaked:
        raise ValueError(f"{raw_root}: photo id(s) with sketches in both train and test: {sorted(leaked)[:5]}")

    if not photo_map:
        return _sketch_only(df, out_dir, sketch_root, use_png, seed, val_fraction, summary, notes, skipped)

    has_photo = df["label"].isin(photo_map.keys())
    for p in df.loc[~has_photo, "path_sketch"]:
        skipped.add("sketch with no matching photo", p)
    df = df[has_photo].copy()
    if df.empty:
        raise ValueError(f"{raw_root}: no sketch matched a photo in {image_root} ({len(photo_map)} photos)")
    df["path_image"] = [relative(photo_map[label], image_root) for label in df["label"]]
    summary.update({"photos": str(image_root), "photos_found": len(photo_map),
                    "photos_without_sketch": len(set(photo_map) - set(df["label"])), "notes": notes})
    train, test = assign_by_group(df, set(df.loc[df["split"] == "test", "label"]), "label")
    train, val = carve_validation(train, val_fraction, seed, group_col="label")
    frames = {k: v.assign(split=k) for k, v in {"train": train, "val": val, "test": test}.items()}
    summary["skipped"] = skipped.as_dict()
    default_name = raw_root.stem if raw_root.is_file() else raw_root.name
    return finish(out_dir, frames, sketch_root=sketch_root, image_root=image_root, name=name or default_name,
                  protocol="fine", summary=summary, check_decode=check_decode)


def _find_sketches(raw_root: Path, source: str, skipped: Skipped) -> tuple[dict[str, Path], list, Path | None]:
    """The photos found beside the sketches, the PNG sketches (with their split folder) and, without
    PNG sketches, the stroke file."""
    photo_map, png = scan(raw_root, skipped) if raw_root.is_dir() else ({}, [])
    if source == "strokes":
        png = []
    if source == "png" and not png:
        raise FileNotFoundError(f"{raw_root}: no sketch images under a sketch/ folder")
    stroke_file = None if png else find_stroke_file(raw_root)
    if not png and stroke_file is None:
        raise FileNotFoundError(f"{raw_root}: found neither sketch/ PNG folders nor a *_Coordinate stroke file")
    return photo_map, png, stroke_file


def _photo_folder(raw_root: Path, root_dir: Path, photos: str | Path | None, photo_map: dict[str, Path],
                  skipped: Skipped) -> tuple[Path, dict[str, Path]]:
    """The photo folder and the photos by id: ``photos`` when given, else those found with the sketches."""
    if photos is not None:
        image_root = Path(photos).resolve()
        if not image_root.is_dir():
            raise FileNotFoundError(f"{image_root}: photo folder not found")
        # An explicit photo folder: its photo/ sub-folders if it has any, else every image in it.
        photo_map, _ = scan(image_root, skipped)
        if not photo_map:
            photo_map = images_by_stem(image_root, skipped, image_root)
    else:
        image_root = root_dir
        if not raw_root.is_dir():
            photo_map, _ = scan(root_dir, skipped)
    return image_root, photo_map


def _png_rows(png: list, photo_map: dict[str, Path], raw_root: Path, skipped: Skipped, summary: dict[str, Any],
              seed: int, test_fraction: float, val_fraction: float) -> list[dict]:
    """Rows of the PNG sketches, split by their train/test folders (without any: seeded by photo)."""
    rows = []
    for p, split in png:
        parsed = parse_sketch_stem(p.stem, QMUL_PATTERN)
        if p.stem in photo_map:
            parsed = (p.stem, "")
        if parsed is None:
            skipped.add("sketch not named <photo>_<k>", p)
            continue
        rows.append({"path_sketch": relative(p, raw_root), "label": parsed[0], "split": split})
    summary["sketch_source"] = "png"
    have_split = [r for r in rows if r["split"]]
    if have_split and len(have_split) < len(rows):
        for r in rows:
            if not r["split"]:
                skipped.add("sketch outside the train/test folders", r["path_sketch"])
        rows = have_split
    if not have_split:
        check_fraction("test_fraction", test_fraction)
        test_ids = set(choose({r["label"] for r in rows}, test_fraction, split_rng(seed, "test")))
        for r in rows:
            r["split"] = "test" if r["label"] in test_ids else "train"
        summary["split_rule"] = (f"no train/test folders: seeded by photo, test = {test_fraction:g} of photos; "
                                 f"val = {val_fraction:g} of training photos")
        summary["test_fraction"] = test_fraction
    else:
        summary["split_rule"] = f"train/test from the folder names; val = {val_fraction:g} of training photos (seeded)"
    return rows


def _stroke_rows(stroke_file: Path, out_dir: Path, skipped: Skipped, summary: dict[str, Any], raster_size: int,
                 canvas: float, line_width: float, val_fraction: float) -> list[dict]:
    """Rows of the stroke file's sketches, rasterised under ``out_dir``."""
    rows, coverage = _rasterise_strokes(stroke_file, out_dir, skipped, size=raster_size, canvas=canvas,
                                        line_width=line_width)
    summary.update({
        "sketch_source": "strokes",
        "stroke_file": str(stroke_file),
        "raster": {"size": raster_size, "canvas": canvas, "line_width": line_width,
                   "folder": str(out_dir / "sketches")},
        "split_rule": f"train/test from the stroke keys; val = {val_fraction:g} of training photos (seeded)",
    })
    if coverage:
        summary["ink_coverage"] = {"mean": float(np.mean(coverage)), "median": float(np.median(coverage)),
                                   "min": float(np.min(coverage)), "max": float(np.max(coverage))}
    return rows


def _sketch_only(df: pd.DataFrame, out_dir: Path, sketch_root: Path, use_png: bool, seed: int, val_fraction: float,
                 summary: dict[str, Any], notes: list[str], skipped: Skipped) -> dict[str, Any]:
    """No photos: sketch-only listings (``sketches_*.csv``), no index."""
    wrote = "rasters and sketch-only listings" if not use_png else "sketch-only listings"
    notes.append(f"photos are missing: no photo/ folder found; wrote {wrote} sketches_*.csv, no index_*.csv "
                 "(pass --photos DIR with the QMUL photo folder to pair them)")
    summary.update({"photos": None, "notes": notes})
    train, test = df[df["split"] == "train"], df[df["split"] == "test"]
    train, val = carve_validation(train, val_fraction, seed, group_col="label")
    frames = {"train": train, "val": val, "test": test}
    summary["skipped"] = skipped.as_dict()
    return finish_sketch_only(out_dir, {k: v.assign(split=k) for k, v in frames.items()},
                              sketch_root=sketch_root, summary=summary)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", choices=("auto", "png", "strokes"), default="auto",
                        help="sketches from PNG folders or the *_Coordinate pickle (default: PNG if present)")
    parser.add_argument("--photos", default=None, metavar="DIR",
                        help="folder with the photos <id>.png (default: photo/ under RAW_ROOT)")
    parser.add_argument("--test_fraction", type=float, default=0.2,
                        help="share of photos in test, only for PNG sketches without train/test folders")
    parser.add_argument("--raster_size", type=int, default=256, help="side of rasterised stroke sketches (default 256)")
    parser.add_argument("--line_width", type=float, default=2.0, help="stroke width in raster pixels (default 2)")


def from_args(args: argparse.Namespace) -> dict[str, Any]:
    return build_index(args.raw_root, args.out, source=args.source, photos=args.photos,
                       test_fraction=args.test_fraction, val_fraction=args.val_fraction, seed=args.seed,
                       raster_size=args.raster_size, line_width=args.line_width, name=args.name,
                       check_decode=args.check_decode)
