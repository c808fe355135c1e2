"""Sketchy (Sangkloy et al., 2016): 125 classes, 12,500 photos, 75,471 sketches.

Layout (the ``rendered_256x256`` archive): ``256x256/photo/tx_000000000000/<class>/<photo>.jpg`` and
``256x256/sketch/tx_000000000000/<class>/<photo>-<k>.png``; sketch ``<photo>-<k>`` was drawn from
``<photo>``. The other ``tx_*`` folders are augmented copies and are ignored. Class folder names are
compared in a normal form (lower case, ``-`` and spaces as ``_``) because distributions differ
(``hot-air_balloon`` vs ``hot_air_balloon``, ``jack-o-lantern``).

Protocols: ``category`` (label = class) and ``fine`` (label = ``<class>/<photo>``, one photo id).
Every sketch is paired with the photo it was drawn from. Test split, in order of precedence:
``--zeroshot 25|21`` (every sketch and photo of the unseen classes, lists shipped in
``sbir_utils/resources``), else the official ``info/testset.txt`` photo list when found (or given with
``--testset``), else a seeded fraction of each class's photos. Validation photos are carved per class
from the training photos.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd

from ...paths import RESOURCES_DIR
from .common import (
    Skipped,
    assign_by_group,
    carve_validation,
    check_fraction,
    choose_stratified,
    finish,
    first_of_each,
    list_images,
    parse_sketch_stem,
    read_id_list,
    relative,
    split_rng,
)

DESCRIPTION = "Sketchy: 256x256/{photo,sketch}/tx_000000000000/<class>/ (category or fine protocol, zero-shot splits)"
TX = "tx_000000000000"
SKETCH_PATTERN = r"^(?P<photo>.+)-(?P<k>\d+)$"
ZEROSHOT_FILES = {"25": "sketchy_zeroshot_25.txt", "21": "sketchy_zeroshot_21.txt"}


def canonical_class(name: str) -> str:
    """Normal form of a class folder name: ``Hot-Air Balloon`` -> ``hot_air_balloon``."""
    return "_".join(name.strip().lower().replace("-", " ").replace("_", " ").split())


def read_class_list(path: Path) -> list[str]:
    """Class names of a shipped list (``#`` lines are comments), in their normal form."""
    return [canonical_class(line) for line in read_id_list(path) if not line.startswith("#")]


def zeroshot_classes(which: str) -> list[str]:
    """The unseen classes of a published zero-shot split: ``"25"`` or ``"21"`` (see the files' headers)."""
    if which not in ZEROSHOT_FILES:
        raise ValueError(f"zeroshot must be one of none, {', '.join(ZEROSHOT_FILES)}; got {which!r}")
    return read_class_list(RESOURCES_DIR / ZEROSHOT_FILES[which])


def find_base(raw_root: Path) -> Path:
    """The folder holding ``photo/tx_000000000000`` and ``sketch/tx_000000000000``."""
    for base in (raw_root, raw_root / "256x256", raw_root / "rendered_256x256" / "256x256"):
        if (base / "photo" / TX).is_dir() and (base / "sketch" / TX).is_dir():
            return base
    raise FileNotFoundError(
        f"{raw_root}: expected photo/{TX}/ and sketch/{TX}/ in it, in 256x256/ or in rendered_256x256/256x256/"
    )


def find_testset(raw_root: Path, base: Path) -> Path | None:
    for cand in (raw_root / "info" / "testset.txt", raw_root / "info-06-04" / "info" / "testset.txt",
                 base / "info" / "testset.txt", base.parent / "info" / "testset.txt"):
        if cand.is_file():
            return cand
    return None


def _class_folders(root: Path, skipped: Skipped) -> dict[str, Path]:
    """The class folders under ``root`` by normalised class name; a folder that normalises to a name
    seen already is skipped."""
    found = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    return first_of_each(found, lambda d: canonical_class(d.name), skipped,
                         lambda kept: f"class folder duplicating {kept.name!r} after name normalisation")


def build_index(
    raw_root: str | Path,
    out_dir: str | Path,
    *,
    protocol: str = "category",
    zeroshot: str = "none",
    split: str = "auto",
    testset: str | Path | None = None,
    test_fraction: float = 0.1,
    val_fraction: float = 0.1,
    seed: int = 0,
    name: str = "",
    check_decode: bool = False,
) -> dict[str, Any]:
    """Index Sketchy; returns the summary (also in ``out_dir/summary.json``).

    Args:
        protocol: ``"category"`` (label = class) or ``"fine"`` (label = ``<class>/<photo>``).
        zeroshot: ``"none"``, ``"25"`` or ``"21"``: unseen classes form the whole test split.
        split: ``"auto"`` (official test photos if ``info/testset.txt`` is found, else random),
            ``"official"`` (require it) or ``"random"`` (``test_fraction`` of each class's photos).
    """
    if protocol not in ("category", "fine"):
        raise ValueError(f"protocol must be category or fine, got {protocol!r}")
    if split not in ("auto", "official", "random"):
        raise ValueError(f"split must be auto, official or random, got {split!r}")
    raw_root = Path(raw_root).resolve()
    base = find_base(raw_root)
    skipped = Skipped()
    notes: list[str] = []
    ignored_tx = sorted({p.name for kind in ("photo", "sketch") for p in (base / kind).iterdir()
                         if p.is_dir() and p.name != TX})

    photo_classes, sketch_classes = _matched_classes(base, skipped, notes)
    rows, photos_without_sketch = _pair_rows(photo_classes, sketch_classes, base, protocol, skipped)
    if not rows:
        raise ValueError(f"{base}: no sketch matched a photo (skipped: {skipped.as_dict()})")
    df = pd.DataFrame(rows)
    classes = sorted(df["category"].unique())
    summary: dict[str, Any] = {
        "format": "sketchy", "source": str(raw_root), "out_dir": str(Path(out_dir).resolve()), "seed": seed,
        "val_fraction": val_fraction, "zeroshot": zeroshot, "classes": len(classes),
        "ignored_folders": [f"{kind}/{tx}" for kind in ("photo", "sketch") for tx in ignored_tx
                            if (base / kind / tx).is_dir()],
        "photos_without_sketch": photos_without_sketch,
    }

    if zeroshot != "none":
        test_photos = _zeroshot_test_photos(df, zeroshot, classes, val_fraction, summary, notes)
    else:
        testset_file = Path(testset) if testset else (None if split == "random" else find_testset(raw_root, base))
        if split == "official" and testset_file is None:
            raise FileNotFoundError(f"{raw_root}: info/testset.txt not found; pass --testset FILE or --split random")
        if testset_file is not None:
            test_photos = _listed_test_photos(df, testset_file, val_fraction, summary, notes)
        else:
            check_fraction("test_fraction", test_fraction)
            photo_class = dict(zip(df["path_image"], df["category"]))
            test_photos = choose_stratified(photo_class, test_fraction, split_rng(seed, "test"))
            summary.update({"test_fraction": test_fraction,
                            "split_rule": (f"random: test = {test_fraction:g} of each class's photos, val = "
                                           f"{val_fraction:g} of the rest (seeded)")})

    train, test = assign_by_group(df, test_photos, "path_image")
    train, val = carve_validation(train, val_fraction, seed, group_col="path_image", strata_col="category")
    summary.update({"notes": notes, "skipped": skipped.as_dict()})
    default_name = f"sketchy-{protocol}" + (f"-zs{zeroshot}" if zeroshot != "none" else "")
    return finish(out_dir, {"train": train, "val": val, "test": test}, sketch_root=base, image_root=base,
                  name=name or default_name, protocol=protocol, summary=summary, check_decode=check_decode)


def _matched_classes(base: Path, skipped: Skipped, notes: list[str]) -> tuple[dict[str, Path], dict[str, Path]]:
    """The photo and sketch class folders by normalised class name; classes on one side only are noted."""
    photo_classes = _class_folders(base / "photo" / TX, skipped)
    sketch_classes = _class_folders(base / "sketch" / TX, skipped)
    for key in sorted(set(photo_classes) ^ set(sketch_classes)):
        where = "photos" if key in photo_classes else "sketches"
        notes.append(f"class {key!r} has only {where}; left out")
    renamed = sorted(f"{photo_classes[k].name} / {sketch_classes[k].name}" for k in set(photo_classes) & set(sketch_classes)
                     if photo_classes[k].name != sketch_classes[k].name)
    if renamed:
        notes.append(f"class folders matched after name normalisation (photo / sketch): {renamed}")
    return photo_classes, sketch_classes


def _pair_rows(photo_classes: dict[str, Path], sketch_classes: dict[str, Path], base: Path, protocol: str,
               skipped: Skipped) -> tuple[list[dict[str, str]], int]:
    """One row per sketch named after a photo of its class, and the number of photos with no sketch."""
    rows = []
    photos_without_sketch = 0
    for key in sorted(set(photo_classes) & set(sketch_classes)):
        photos = {}
        for p in list_images(photo_classes[key], skipped, recursive=False):
            photos[p.stem] = p
        used = set()
        for s in list_images(sketch_classes[key], skipped, recursive=False):
            parsed = parse_sketch_stem(s.stem, SKETCH_PATTERN)
            if parsed is None:
                skipped.add("sketch not named <photo>-<k>", s)
                continue
            if parsed[0] not in photos:
                skipped.add("sketch with no matching photo", s)
                continue
            used.add(parsed[0])
            photo = photos[parsed[0]]
            rows.append({
                "path_sketch": relative(s, base),
                "path_image": relative(photo, base),
                "label": key if protocol == "category" else f"{key}/{photo.stem}",
                "category": key,
            })
        photos_without_sketch += len(set(photos) - used)
    return rows, photos_without_sketch


def _zeroshot_test_photos(df: pd.DataFrame, zeroshot: str, classes: list[str], val_fraction: float,
                          summary: dict[str, Any], notes: list[str]) -> set[str]:
    """All photos of the ``zeroshot`` split's unseen classes."""
    unseen = zeroshot_classes(zeroshot)
    missing = sorted(set(unseen) - set(classes))
    if missing:
        notes.append(f"{len(missing)} unseen class(es) of the {zeroshot}-class split are not on disk: {missing}")
    test_photos = set(df.loc[df["category"].isin(unseen), "path_image"])
    summary.update({"unseen_classes": sorted(set(unseen) & set(classes)),
                    "split_rule": (f"zero-shot: test = all sketches and photos of the {zeroshot} unseen classes "
                                   f"(shipped list {ZEROSHOT_FILES[zeroshot]}); val = {val_fraction:g} of each "
                                   "seen class's photos (seeded)")})
    return test_photos


def _listed_test_photos(df: pd.DataFrame, testset_file: Path, val_fraction: float, summary: dict[str, Any],
                        notes: list[str]) -> set[str]:
    """The photos listed in ``testset_file`` (``<class>/<photo>`` lines, as in Sketchy's info/testset.txt)."""
    wanted = set()
    for line in read_id_list(testset_file):
        parts = Path(line.replace("\\", "/")).parts
        if len(parts) >= 2:
            wanted.add(f"{canonical_class(parts[-2])}/{Path(parts[-1]).stem}")
    ids = df["category"] + "/" + df["path_image"].map(lambda p: Path(p).stem)
    test_photos = set(df.loc[ids.isin(wanted), "path_image"])
    summary.update({"testset": str(testset_file), "testset_photos_listed": len(wanted),
                    "split_rule": (f"official test photos from {testset_file.name}; val = {val_fraction:g} of "
                                   "each class's remaining photos (seeded)")})
    if len(test_photos) < len(wanted):
        notes.append(f"{len(wanted) - len(test_photos)} photo(s) of {testset_file.name} have no sketch here")
    return test_photos


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", choices=("category", "fine"), default="category",
                        help="category: label = class; fine: label = photo id (default category)")
    parser.add_argument("--zeroshot", choices=("none", "25", "21"), default="none",
                        help="hold out the unseen classes of a published zero-shot split as the test split")
    parser.add_argument("--split", choices=("auto", "official", "random"), default="auto",
                        help="test photos: official info/testset.txt (auto: when found) or a random fraction")
    parser.add_argument("--testset", default=None, metavar="FILE", help="the official testset.txt, if not under RAW_ROOT/info")
    parser.add_argument("--test_fraction", type=float, default=0.1,
                        help="share of each class's photos in test with --split random (default 0.1)")


def from_args(args: argparse.Namespace) -> dict[str, Any]:
    return build_index(args.raw_root, args.out, protocol=args.protocol, zeroshot=args.zeroshot, split=args.split,
                       testset=args.testset, test_fraction=args.test_fraction, val_fraction=args.val_fraction,
                       seed=args.seed, name=args.name, check_decode=args.check_decode)
