"""TU-Berlin (Eitz et al., 2012) sketches with TU-Berlin-Ext photos (category-level, label = class).

Sketches: ``png/<class name, may contain spaces>/<n>.png`` (250 classes x 80). TU-Berlin has no photos;
SBIR uses TU-Berlin-Ext (``ImageResized/<classnospace>/*.JPEG``, ~204k photos), given with ``--photos``.
Its folder names are the class names without spaces, hyphens and parentheses, except a few misspelt
or shortened ones (``tromobone``, ``griaffe``, ``chandeler``, ``spidar``, ...) mapped by the shipped
``resources/tuberlin_ext_folders.json`` (source cited there).

Photos placed inside the TU-Berlin folder (``ImageResized/`` beside ``png/``) are found without
``--photos``. Splits are drawn per class, seeded, separately for sketches and photos (``test_fraction``, then
``val_fraction`` of the rest), so no photo is in two splits. Pairing is category-level and
deterministic: within a class and split the i-th sorted sketch gets the (i mod n)-th sorted photo.
With ``--cover_photos`` a class-split gets ``max(sketches, photos)`` rows so every photo appears in
the index (sketches then repeat). Without photos a sketch-only listing is written.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from ...paths import RESOURCES_DIR
from .common import (
    Skipped,
    check_fraction,
    choose,
    finish,
    finish_sketch_only,
    list_images,
    relative,
    split_rng,
)

DESCRIPTION = "TU-Berlin: png/<class>/<n>.png + TU-Berlin-Ext photos (ImageResized/ inside RAW_ROOT, or --photos)"
EXT_FOLDERS_FILE = RESOURCES_DIR / "tuberlin_ext_folders.json"


def folder_key(name: str) -> str:
    """Compare form of a class/folder name: lower case, letters and digits only."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def ext_folder_names() -> dict[str, str]:
    """TU-Berlin class -> TU-Berlin-Ext folder, for the folders not named by :func:`folder_key`."""
    return json.loads(EXT_FOLDERS_FILE.read_text(encoding="utf-8"))["folders"]


def find_sketch_root(raw_root: Path) -> Path:
    for cand in (raw_root / "png", raw_root):
        if cand.is_dir() and any(p.is_dir() for p in cand.iterdir()):
            return cand
    raise FileNotFoundError(f"{raw_root}: expected png/<class>/<n>.png (class folders) in it")


def find_photo_root(photos: Path) -> Path:
    return photos / "ImageResized" if (photos / "ImageResized").is_dir() else photos


def photos_in_root(raw_root: Path) -> Path | None:
    """TU-Berlin-Ext's ``ImageResized/`` placed inside the TU-Berlin folder (beside ``png/``, or one level
    down, e.g. ``TU-Berlin-Ext/ImageResized/``), or None."""
    raw_root = Path(raw_root)
    if (raw_root / "ImageResized").is_dir():
        return raw_root / "ImageResized"
    subdirs = sorted(d for d in raw_root.iterdir() if d.is_dir() and not d.name.startswith(".")) if raw_root.is_dir() else []
    return next((d / "ImageResized" for d in subdirs if (d / "ImageResized").is_dir()), None)


def _photo_folders(raw_root: Path, photos: str | Path | None, notes: list[str]) -> tuple[Path | None, dict[str, Path]]:
    """``(photo root, folder key -> class photo folder)`` of ``photos``, or of the ``ImageResized/`` found in
    ``raw_root`` (noted in ``notes``); ``(None, {})`` without photos."""
    if photos is None and (found := photos_in_root(raw_root)) is not None:
        photos = found
        notes.append(f"photos: TU-Berlin-Ext's {relative(found, raw_root)}/ found in RAW_ROOT (--photos DIR uses others)")
    if photos is None:
        return None, {}
    photo_root = find_photo_root(Path(photos).resolve())
    if not photo_root.is_dir():
        raise FileNotFoundError(f"{photo_root}: TU-Berlin-Ext photo folder not found")
    folders: dict[str, Path] = {}
    for d in sorted(p for p in photo_root.iterdir() if p.is_dir()):
        folders.setdefault(folder_key(d.name), d)
    return photo_root, folders


def _split_items(items: list[str], test_fraction: float, val_fraction: float, seed: int, salt: str) -> dict[str, list[str]]:
    """Seeded per-class split of sorted ``items`` into train/val/test (``salt`` decorrelates classes)."""
    test = set(choose(items, test_fraction, split_rng(seed, "test", salt)))
    rest = [x for x in items if x not in test]
    val = set(choose(rest, val_fraction, split_rng(seed, "val", salt)))
    return {"train": [x for x in rest if x not in val], "val": sorted(val), "test": sorted(test)}


def build_index(
    raw_root: str | Path,
    out_dir: str | Path,
    *,
    photos: str | Path | None = None,
    test_fraction: float = 0.1,
    val_fraction: float = 0.1,
    seed: int = 0,
    cover_photos: bool = False,
    name: str = "",
    check_decode: bool = False,
) -> dict[str, Any]:
    """Index TU-Berlin (+ TU-Berlin-Ext photos); returns the summary (also in ``out_dir/summary.json``)."""
    check_fraction("test_fraction", test_fraction)
    check_fraction("val_fraction", val_fraction)
    raw_root = Path(raw_root).resolve()
    sketch_root = find_sketch_root(raw_root)
    skipped = Skipped()
    notes: list[str] = []
    photo_root, photo_folders = _photo_folders(raw_root, photos, notes)
    classes = sorted(p for p in sketch_root.iterdir() if p.is_dir() and not p.name.startswith(".")
                     and photo_root not in (p.resolve(), (p / "ImageResized").resolve()))
    mapping = ext_folder_names()

    rows: list[dict[str, Any]] = []
    matched_folders, no_photo_classes, mapped = set(), [], {}
    photos_total = photos_used = 0
    for cdir in classes:
        label = cdir.name
        sketches = list_images(cdir, skipped, recursive=False)
        if not sketches:
            notes.append(f"class {label!r} has no sketches")
            continue
        sk_split = _split_items([relative(s, sketch_root) for s in sketches], test_fraction, val_fraction, seed,
                                "sketch/" + label)
        if photo_root is None:
            rows += [{"path_sketch": p, "label": label, "category": label, "split": sp}
                     for sp, items in sk_split.items() for p in items]
            continue
        # The Ext spelling first (tromobone), then the class itself (copies with renamed folders).
        folder = photo_folders.get(folder_key(mapping.get(label, label))) or photo_folders.get(folder_key(label))
        if folder is None:
            no_photo_classes.append(label)
            for s in sketches:
                skipped.add("class has no TU-Berlin-Ext photo folder", s)
            continue
        matched_folders.add(folder)
        if folder_key(folder.name) != folder_key(label):
            mapped[label] = folder.name
        class_photos = [relative(p, photo_root) for p in list_images(folder, skipped, recursive=False)]
        photos_total += len(class_photos)
        ph_split = _split_items(class_photos, test_fraction, val_fraction, seed, "photo/" + label)
        class_rows, n_used = _paired_rows(label, sk_split, ph_split, cover_photos, skipped)
        rows += class_rows
        photos_used += n_used
    if not rows:
        raise ValueError(f"{raw_root}: no sketches could be indexed (skipped: {skipped.as_dict()})")
    df = pd.DataFrame(rows)
    frames = {sp: df[df["split"] == sp].copy() for sp in ("train", "val", "test")}
    summary: dict[str, Any] = {
        "format": "tuberlin", "source": str(raw_root), "out_dir": str(Path(out_dir).resolve()), "seed": seed,
        "test_fraction": test_fraction, "val_fraction": val_fraction, "classes": int(df["label"].nunique()),
        "split_rule": (f"per class, seeded, sketches and photos split separately: test = {test_fraction:g}, val = "
                       f"{val_fraction:g} of the rest; sketch i pairs with photo i mod n of its class and split"
                       + (" (rows cover every photo)" if cover_photos else "")),
    }
    if photo_root is None:
        notes.append("photos are missing: pass --photos DIR (TU-Berlin-Ext root or its ImageResized/); "
                     "wrote a sketch-only listing sketches_*.csv, no index_*.csv")
        summary.update({"photos": None, "notes": notes, "skipped": skipped.as_dict()})
        return finish_sketch_only(out_dir, frames, sketch_root=sketch_root, summary=summary)

    notes += _unmatched_notes(photo_folders, matched_folders, no_photo_classes)
    summary.update({"photos": str(photo_root), "photos_found": photos_total, "photos_in_index": photos_used,
                    "misspelt_folders_mapped": mapped, "notes": notes, "skipped": skipped.as_dict()})
    return finish(out_dir, frames, sketch_root=sketch_root, image_root=photo_root, name=name or "tuberlin",
                  protocol="category", summary=summary, check_decode=check_decode)


def _paired_rows(label: str, sk_split: dict[str, list[str]], ph_split: dict[str, list[str]], cover_photos: bool,
                 skipped: Skipped) -> tuple[list[dict[str, Any]], int]:
    """A class's rows per split: sketch i with photo i mod n (``cover_photos``: as many rows as the larger
    side, so every photo is used), and the number of photos used."""
    rows: list[dict[str, Any]] = []
    photos_used = 0
    for sp in ("train", "val", "test"):
        sk, ph = sk_split[sp], ph_split[sp]
        if not sk or not ph:
            for p in sk:
                skipped.add(f"no {sp} photo left for the class", p)
            continue
        n = max(len(sk), len(ph)) if cover_photos else len(sk)
        photos_used += min(n, len(ph))
        rows += [{"path_sketch": sk[i % len(sk)], "path_image": ph[i % len(ph)], "label": label,
                  "category": label, "split": sp} for i in range(n)]
    return rows, photos_used


def _unmatched_notes(photo_folders: dict[str, Path], matched_folders: set[Path], no_photo_classes: list[str]) -> list[str]:
    """Notes on photo folders that match no class and classes that have no photo folder."""
    notes = []
    unused = sorted(d.name for d in set(photo_folders.values()) - matched_folders)
    if unused:
        notes.append(f"{len(unused)} photo folder(s) match no sketch class: {unused[:10]}")
    if no_photo_classes:
        notes.append(f"{len(no_photo_classes)} class(es) without a photo folder: {no_photo_classes[:10]}")
    return notes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--photos", default=None, metavar="DIR",
                        help="TU-Berlin-Ext root (or its ImageResized/ folder); default: ImageResized/ inside "
                             "RAW_ROOT if there is one, else only sketches are listed")
    parser.add_argument("--test_fraction", type=float, default=0.1,
                        help="share of each class's sketches and photos in test (default 0.1)")
    parser.add_argument("--cover_photos", action="store_true",
                        help="one row per photo as well, so every photo of a split is in the index")


def from_args(args: argparse.Namespace) -> dict[str, Any]:
    return build_index(args.raw_root, args.out, photos=args.photos, test_fraction=args.test_fraction,
                       val_fraction=args.val_fraction, seed=args.seed, cover_photos=args.cover_photos,
                       name=args.name, check_decode=args.check_decode)
