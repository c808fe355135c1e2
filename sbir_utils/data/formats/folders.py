"""Any "photos folder + sketches folder" dataset paired by file name (instance-level, label = photo id).

Default layout ``RAW_ROOT/photos/<photo>.<ext>`` and ``RAW_ROOT/sketches/<photo>-<k>.<ext>`` (or
``<photo>_<k>``, or a sketch named exactly like its photo), which covers the part-aware shoe set in
``../shared/data/shoes-real-dev`` and many re-distributions of QMUL and Sketchy subsets. There is no
official split: test photos are a seeded fraction of the photos, validation photos a seeded fraction
of the rest; a photo and all its sketches always land in the same split.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd

from .common import (
    SUFFIX_PATTERN,
    Skipped,
    check_fraction,
    finish,
    images_by_stem,
    list_images,
    parse_sketch_stem,
    relative,
    split_by_group,
)

DESCRIPTION = "paired folders: photos/<id>.*, sketches/<id>-<k>.* (label = photo id)"


def build_index(
    raw_root: str | Path,
    out_dir: str | Path,
    *,
    photos_subdir: str = "photos",
    sketches_subdir: str = "sketches",
    pattern: str = SUFFIX_PATTERN,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    seed: int = 0,
    name: str = "",
    check_decode: bool = False,
) -> dict[str, Any]:
    """Index a paired-folders dataset; returns the summary (also written to ``out_dir/summary.json``).

    Args:
        pattern: regex with a ``photo`` group (and optionally ``k``) applied to a sketch's file stem
            when the stem is not itself a photo id.
        test_fraction: share of photos (with all their sketches) in the test split.
        val_fraction: share of the remaining photos carved out as validation.
    """
    raw_root = Path(raw_root).resolve()
    check_fraction("test_fraction", test_fraction)
    skipped = Skipped()
    photo_dir, sketch_dir = raw_root / photos_subdir, raw_root / sketches_subdir
    for d, what in ((photo_dir, "--photos_subdir"), (sketch_dir, "--sketches_subdir")):
        if not d.is_dir():
            raise FileNotFoundError(f"{d}: folder not found (set {what} to the folder's name under {raw_root})")

    photos = images_by_stem(photo_dir, skipped)
    rows = _sketch_rows(sketch_dir, photos, pattern, raw_root, skipped)
    if not rows:
        raise ValueError(f"{raw_root}: no sketch matched a photo (photos: {len(photos)}, skipped: {skipped.as_dict()})")
    df = pd.DataFrame(rows)
    photos_without_sketch = sorted(set(photos) - set(df["label"]))

    train, val, test = split_by_group(df, "label", test_fraction, val_fraction, seed)

    summary = {
        "format": "folders",
        "source": str(raw_root),
        "out_dir": str(Path(out_dir).resolve()),
        "seed": seed,
        "test_fraction": test_fraction,
        "val_fraction": val_fraction,
        "pattern": pattern,
        "split_rule": (f"seeded by photo: test = {test_fraction:g} of photos, val = {val_fraction:g} of the "
                       "remaining photos (numpy default_rng([seed, 0]) / ([seed, 1]))"),
        "photos_found": len(photos),
        "photos_without_sketch": len(photos_without_sketch),
        "notes": ([f"{len(photos_without_sketch)} photo(s) have no sketch and are not in the index"]
                  if photos_without_sketch else []),
        "skipped": skipped.as_dict(),
    }
    return finish(out_dir, {"train": train, "val": val, "test": test}, sketch_root=raw_root, image_root=raw_root,
                  name=name or raw_root.name, protocol="fine", summary=summary, check_decode=check_decode)


def _sketch_rows(sketch_dir: Path, photos: dict[str, Path], pattern: str, raw_root: Path,
                 skipped: Skipped) -> list[dict[str, str]]:
    """One row per sketch whose stem is a photo id or names one by ``pattern``."""
    rows = []
    for s in list_images(sketch_dir, skipped):
        if s.stem in photos:
            photo_id = s.stem
        else:
            parsed = parse_sketch_stem(s.stem, pattern)
            if parsed is None:
                skipped.add("sketch name does not match the rule", s)
                continue
            photo_id = parsed[0]
            if photo_id not in photos:
                skipped.add("sketch with no matching photo", s)
                continue
        rows.append({
            "path_sketch": relative(s, raw_root),
            "path_image": relative(photos[photo_id], raw_root),
            "label": photo_id,
        })
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--photos_subdir", default="photos", help="photo folder under RAW_ROOT (default: photos)")
    parser.add_argument("--sketches_subdir", default="sketches", help="sketch folder under RAW_ROOT (default: sketches)")
    parser.add_argument("--pattern", default=SUFFIX_PATTERN,
                        help="regex with a 'photo' group matched against a sketch's stem (default: <photo>-<k> or <photo>_<k>)")
    parser.add_argument("--test_fraction", type=float, default=0.2, help="share of photos in the test split (default 0.2)")


def from_args(args: argparse.Namespace) -> dict[str, Any]:
    return build_index(args.raw_root, args.out, photos_subdir=args.photos_subdir, sketches_subdir=args.sketches_subdir,
                       pattern=args.pattern, test_fraction=args.test_fraction, val_fraction=args.val_fraction,
                       seed=args.seed, name=args.name, check_decode=args.check_decode)
