"""FS-COCO (Chowdhury et al., ECCV 2022): 10,000 scene sketch/photo pairs by 100 users (label = photo id).

Layout: ``images/<user>/<id>.jpg``, ``raster_sketches/<user>/<id>.jpg``, ``vector_sketches/<user>/<id>.npy``,
``text/<user>/<id>.txt`` (caption), and the split files ``val_normal.txt`` / ``val_unseen_user.txt``
(one photo id per line; train = every other pair). A sketch pairs with the photo of the same user and
id; the extra columns ``user``, ``caption_file`` and ``vector_file`` (relative to RAW_ROOT, empty when
absent) are kept.

Splits (``--split``):

* ``normal``: test = the ids of ``val_normal.txt``.
* ``unseen-file``: test = the ids of ``val_unseen_user.txt``. Despite its name this file does NOT hold
  out users: it lists about 30 photos of *every* user, so each test user also drew training
  sketches. The summary reports the users found on both sides and the test ids per user.
* ``unseen-user``: a true held-out-user split: a seeded ``--unseen_fraction`` of the users (default
  0.3) with all their pairs form the test split, and validation users are carved the same way from
  the training users; the users of each side are listed in the summary.
* ``random``: a seeded ``--test_fraction`` of the pairs, for copies without split files.

Validation (normal, unseen-file, random): a seeded ``--val_fraction`` of the training photos.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd

from .common import (
    Skipped,
    assign_by_group,
    carve_validation,
    check_fraction,
    finish,
    first_of_each,
    hold_out,
    list_images,
    read_id_list,
    relative,
    split_by_group,
    split_rng,
)

DESCRIPTION = "FS-COCO: images/<user>/<id>.jpg + raster_sketches/<user>/<id>.jpg (scene, label = photo id)"
SPLIT_FILES = {"normal": "val_normal.txt", "unseen-file": "val_unseen_user.txt"}
SPLITS = ("normal", "unseen-file", "unseen-user", "random")


def _id_key(value: str) -> str:
    """Compare form of a photo id: the file stem, leading zeros dropped for numeric ids."""
    stem = Path(value.strip()).stem
    return str(int(stem)) if stem.isdigit() else stem


def _user_sort_key(user: str) -> tuple[int, int | str]:
    return (0, int(user)) if user.isdigit() else (1, user)


def _by_user_and_id(folder: Path, skipped: Skipped) -> dict[tuple[str, str], Path]:
    """The images at ``folder/<user>/<id>.*`` by ``(user, id)``; others, and repeated ids, are skipped."""
    at_user_and_id = []
    for p in list_images(folder, skipped):
        if len(p.relative_to(folder).parts) == 2:
            at_user_and_id.append(p)
        else:
            skipped.add(f"{folder.name}/ file not at <user>/<id>", p)
    return first_of_each(at_user_and_id, lambda p: (p.parent.name, p.stem), skipped,
                         lambda _: f"duplicate {folder.name} id")


def build_index(
    raw_root: str | Path,
    out_dir: str | Path,
    split: str = "normal",
    seed: int = 0,
    val_fraction: float = 0.1,
    *,
    unseen_fraction: float = 0.3,
    test_fraction: float = 0.3,
    name: str = "",
    check_decode: bool = False,
) -> dict[str, Any]:
    """Index an FS-COCO-layout folder; returns the summary (also in ``out_dir/summary.json``).

    Args:
        split: ``"normal"``, ``"unseen-file"``, ``"unseen-user"`` or ``"random"`` (see the module doc).
        unseen_fraction: share of users held out with ``split="unseen-user"``.
        test_fraction: share of pairs in test with ``split="random"``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    raw_root = Path(raw_root).resolve()
    for sub in ("images", "raster_sketches"):
        if not (raw_root / sub).is_dir():
            raise FileNotFoundError(f"{raw_root / sub}: folder not found (expected FS-COCO's {sub}/<user>/<id>.jpg)")
    skipped = Skipped()
    notes: list[str] = []
    photos = _by_user_and_id(raw_root / "images", skipped)
    sketches = _by_user_and_id(raw_root / "raster_sketches", skipped)
    for key in sorted(set(sketches) - set(photos)):
        skipped.add("sketch with no photo of the same user and id", sketches[key])
    for key in sorted(set(photos) - set(sketches)):
        skipped.add("photo with no sketch of the same user and id", photos[key])

    df = _pair_rows(raw_root, photos, sketches)
    if df.empty:
        raise ValueError(f"{raw_root}: no sketch/photo pair found (skipped: {skipped.as_dict()})")
    if df["label"].duplicated().any():
        notes.append(f"{int(df['label'].duplicated().sum())} photo id(s) occur under more than one user")

    summary: dict[str, Any] = {"format": "fscoco", "source": str(raw_root), "out_dir": str(Path(out_dir).resolve()),
                               "split": split, "seed": seed, "val_fraction": val_fraction,
                               "users": int(df["user"].nunique())}
    if split in SPLIT_FILES:
        train, val, test = _split_listed(df, raw_root, split, seed, val_fraction, summary, notes)
    elif split == "unseen-user":
        train, val, test = _split_unseen_users(df, raw_root, seed, val_fraction, unseen_fraction, summary)
    else:
        train, val, test = split_by_group(df, "path_image", test_fraction, val_fraction, seed)
        summary.update({"test_fraction": test_fraction,
                        "split_rule": (f"random: test = {test_fraction:g} of the pairs, val = {val_fraction:g} of the "
                                       "rest (seeded)")})
    summary.update({"notes": notes, "skipped": skipped.as_dict()})
    return finish(out_dir, {"train": train, "val": val, "test": test}, sketch_root=raw_root, image_root=raw_root,
                  name=name or f"fscoco-{split}", protocol="scene", summary=summary, check_decode=check_decode)


def _pair_rows(raw_root: Path, photos: dict, sketches: dict) -> pd.DataFrame:
    """One row per (user, id) with both a photo and a sketch, with its caption and vector files if any."""
    rows = []
    for user, pid in sorted(set(photos) & set(sketches), key=lambda k: (_user_sort_key(k[0]), k[1])):
        caption = raw_root / "text" / user / f"{pid}.txt"
        vector = raw_root / "vector_sketches" / user / f"{pid}.npy"
        rows.append({
            "path_sketch": relative(sketches[(user, pid)], raw_root),
            "path_image": relative(photos[(user, pid)], raw_root),
            "label": pid,
            "user": user,
            "caption_file": relative(caption, raw_root) if caption.is_file() else "",
            "vector_file": relative(vector, raw_root) if vector.is_file() else "",
        })
    return pd.DataFrame(rows)


def _split_listed(df: pd.DataFrame, raw_root: Path, split: str, seed: int, val_fraction: float,
                  summary: dict[str, Any], notes: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Test = the ids of the split's list file (``SPLIT_FILES``), val carved from the rest; ``summary`` and
    ``notes`` are filled in."""
    keys = df["label"].map(_id_key)
    split_file = raw_root / SPLIT_FILES[split]
    if not split_file.is_file():
        raise FileNotFoundError(f"{split_file}: split file not found (use --split unseen-user or random "
                                "for copies without it)")
    wanted = {_id_key(x) for x in read_id_list(split_file)}
    train, test = assign_by_group(df.assign(_key=keys), wanted, "_key")
    train, test = train.drop(columns="_key"), test.drop(columns="_key")
    not_found = len(wanted - set(keys))
    if not_found:
        notes.append(f"{not_found} id(s) of {split_file.name} have no sketch/photo pair here")
    per_user = test.groupby("user").size()
    shared_users = sorted(set(train["user"]) & set(test["user"]), key=_user_sort_key)
    summary.update({"split_file": split_file.name, "test_ids_listed": len(wanted),
                    "test_per_user": {"min": int(per_user.min()), "max": int(per_user.max()),
                                      "users": int(per_user.size)} if len(per_user) else {},
                    "users_in_train_and_test": len(shared_users)})
    if split == "unseen-file":
        notes.append(f"val_unseen_user.txt is not an unseen-user split: {len(shared_users)} user(s) have pairs "
                     "in both train and test; use --split unseen-user to hold out whole users")
    summary["split_rule"] = (f"test = ids listed in {split_file.name}; val = {val_fraction:g} of the training "
                             "photos (seeded)")
    train, val = carve_validation(train, val_fraction, seed)
    return train, val, test


def _split_unseen_users(df: pd.DataFrame, raw_root: Path, seed: int, val_fraction: float, unseen_fraction: float,
                        summary: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Test = all pairs of ``unseen_fraction`` of the users, val = all pairs of ``val_fraction`` of the rest."""
    check_fraction("unseen_fraction", unseen_fraction)
    check_fraction("val_fraction", val_fraction)
    train, test = hold_out(df, "user", unseen_fraction, split_rng(seed, "test"))
    train, val = hold_out(train, "user", val_fraction, split_rng(seed, "val"))
    if val.empty:
        raise ValueError(f"{raw_root}: unseen-user split needs at least 2 training users to carve validation users")
    summary.update({"unseen_fraction": unseen_fraction,
                    "users_held_out": sorted(set(test["user"]), key=_user_sort_key),
                    "val_users": sorted(set(val["user"]), key=_user_sort_key),
                    "split_rule": (f"unseen users: test = all pairs of {unseen_fraction:g} of the users, val = "
                                   f"all pairs of {val_fraction:g} of the remaining users (seeded)")})
    return train, val, test


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split", choices=SPLITS, default="normal",
                        help="normal (val_normal.txt), unseen-file (val_unseen_user.txt: NOT unseen users), "
                             "unseen-user (whole users held out) or random (default normal)")
    parser.add_argument("--unseen_fraction", type=float, default=0.3, help="share of users held out (unseen-user)")
    parser.add_argument("--test_fraction", type=float, default=0.3, help="share of pairs in test (random)")


def from_args(args: argparse.Namespace) -> dict[str, Any]:
    return build_index(args.raw_root, args.out, split=args.split, seed=args.seed, val_fraction=args.val_fraction,
                       unseen_fraction=args.unseen_fraction, test_fraction=args.test_fraction, name=args.name,
                       check_decode=args.check_decode)
