"""Steps every importer shares: listing image files in a stable order, seeded splits by photo, the
record of skipped files, and writing + re-reading the index with its ``summary.json``."""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from ...fileio import atomic_write, atomic_write_text
from ..index import (
    SPLITS,
    IndexValidationError,
    load_spec,
    read_index,
    split_integrity,
    write_index,
    write_spec,
)

IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
# Default sketch-name rule: ``<photo>-<k>`` or ``<photo>_<k>`` (the last separator wins, so photo ids
# may themselves contain ``-`` or ``_``, as QMUL-Chair-V2's ``CHABRA003GRY-UK_v1_PearlGrey`` does).
SUFFIX_PATTERN = r"^(?P<photo>.+)[-_](?P<k>\d+)$"
SUMMARY_FILE = "summary.json"
T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


class Skipped:
    """Files left out of an index, grouped by reason (counts plus a few examples each)."""

    def __init__(self, max_examples: int = 5):
        self.reasons: dict[str, list[str]] = {}
        self.max_examples = max_examples

    def add(self, reason: str, item: str | Path) -> None:
        self.reasons.setdefault(reason, []).append(str(item))

    def count(self, reason: str | None = None) -> int:
        if reason is not None:
            return len(self.reasons.get(reason, []))
        return sum(len(v) for v in self.reasons.values())

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {r: {"count": len(v), "examples": sorted(v)[: self.max_examples]} for r, v in sorted(self.reasons.items())}


def list_images(folder: Path, skipped: Skipped | None = None, recursive: bool = True) -> list[Path]:
    """Image files under ``folder``, sorted by path (never ``os.listdir`` order).

    Hidden files (``.DS_Store``, macOS ``._name.png`` resource forks) and non-image files are left out
    and recorded in ``skipped``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: folder not found")
    found = []
    for path in sorted(folder.rglob("*") if recursive else folder.iterdir()):
        if not path.is_file():
            continue
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            if skipped is not None:
                skipped.add("hidden file", path)
            continue
        if path.suffix.lower() not in IMAGE_EXTS:
            if skipped is not None:
                skipped.add("not an image file", path)
            continue
        found.append(path)
    return found


def first_of_each(items: Iterable[T], key: Callable[[T], K], skipped: Skipped, reason: Callable[[T], str]) -> dict[K, T]:
    """The first item of each ``key``, in the order given; a later item whose key was seen already is
    recorded in ``skipped`` under ``reason(kept item)``."""
    found: dict[K, T] = {}
    for item in items:
        k = key(item)
        if k in found:
            skipped.add(reason(found[k]), str(item))
        else:
            found[k] = item
    return found


def photos_by_stem(paths: Iterable[Path], skipped: Skipped, root: Path | None = None) -> dict[str, Path]:
    """``paths`` by file stem (photo id); a path whose stem was seen already is skipped, naming the kept
    one by its path relative to ``root`` (default: by its file name)."""
    return first_of_each(paths, lambda p: p.stem, skipped,
                         lambda kept: f"duplicate photo id (kept {kept.name if root is None else relative(kept, root)})")


def images_by_stem(folder: Path, skipped: Skipped, root: Path | None = None) -> dict[str, Path]:
    """:func:`photos_by_stem` of the images of ``folder`` (:func:`list_images`)."""
    return photos_by_stem(list_images(folder, skipped), skipped, root)


def parse_sketch_stem(stem: str, pattern: str = SUFFIX_PATTERN) -> tuple[str, str] | None:
    """``"001-2"`` -> ``("001", "2")`` with the default rule; None when the stem does not match."""
    m = re.match(pattern, stem)
    if not m:
        return None
    return m.group("photo"), (m.groupdict().get("k") or "")


def split_rng(seed: int, purpose: str, salt: str = "") -> np.random.Generator:
    """Independent seeded streams: ``"test"`` -> ``default_rng([seed, 0])``, ``"val"`` -> ``[seed, 1]``;
    a ``salt`` (e.g. a class name) adds its CRC-32 so each class gets its own stream."""
    key = [seed, {"test": 0, "val": 1}[purpose]]
    if salt:
        key.append(zlib.crc32(salt.encode("utf-8")))
    return np.random.default_rng(key)


def choose(ids: Iterable[str], fraction: float, rng: np.random.Generator, *, at_least_one: bool = True) -> list[str]:
    """Seeded choice of ``round(len(ids) * fraction)`` ids, leaving at least one id unchosen.

    With ``at_least_one`` a positive fraction picks one id even when the rounding gives zero.
    """
    ids = sorted(set(ids))
    if fraction <= 0 or len(ids) < 2:
        return []
    n = int(round(len(ids) * fraction))
    if at_least_one:
        n = max(n, 1)
    n = min(n, len(ids) - 1)
    order = rng.permutation(len(ids))
    return sorted(ids[i] for i in order[:n])


def choose_stratified(groups: dict[str, str], fraction: float, rng: np.random.Generator) -> set[str]:
    """``groups`` maps id -> stratum (e.g. photo -> class); choose ``fraction`` of the ids of each stratum."""
    by_stratum: dict[str, list[str]] = {}
    for gid, stratum in groups.items():
        by_stratum.setdefault(stratum, []).append(gid)
    chosen: set[str] = set()
    for stratum in sorted(by_stratum):
        chosen.update(choose(by_stratum[stratum], fraction, rng))
    return chosen


def assign_by_group(df: pd.DataFrame, held_out: set[str], group_col: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows into (kept, held out) by membership of ``df[group_col]`` in ``held_out``."""
    mask = df[group_col].isin(held_out)
    return df[~mask].copy(), df[mask].copy()


def hold_out(df: pd.DataFrame, group_col: str, fraction: float, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out the rows of a seeded :func:`choose` of ``fraction`` of the ``df[group_col]`` values;
    returns ``(kept, held out)``."""
    return assign_by_group(df, set(choose(df[group_col], fraction, rng)), group_col)


def split_by_group(
    df: pd.DataFrame, group_col: str, test_fraction: float, val_fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Seeded split by whole groups (photos): test = ``test_fraction`` of the groups, validation carved
    from the rest (:func:`carve_validation`). Returns ``(train, val, test)``."""
    check_fraction("test_fraction", test_fraction)
    train, test = hold_out(df, group_col, test_fraction, split_rng(seed, "test"))
    train, val = carve_validation(train, val_fraction, seed, group_col=group_col)
    return train, val, test


def carve_validation(
    train: pd.DataFrame,
    fraction: float,
    seed: int,
    group_col: str = "path_image",
    strata_col: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Carve a validation split from ``train``: whole groups (photos), seeded, optionally per stratum.

    Returns ``(train, val)``. Raises ``ValueError`` when ``train`` has fewer than two groups.
    """
    check_fraction("val_fraction", fraction)
    rng = split_rng(seed, "val")
    if strata_col:
        groups = dict(zip(train[group_col], train[strata_col]))
        held = choose_stratified(groups, fraction, rng)
    else:
        held = set(choose(train[group_col].unique(), fraction, rng))
    if not held:
        raise ValueError(
            f"cannot carve a validation split: the training split has {train[group_col].nunique()} "
            f"distinct {group_col} value(s); at least 2 are needed"
        )
    return assign_by_group(train, held, group_col)


def read_id_list(path: Path) -> list[str]:
    """Non-empty stripped lines of a text file (UTF-8, BOM tolerated)."""
    return [ln.strip() for ln in path.read_text(encoding="utf-8-sig").splitlines() if ln.strip()]


def _counts(df: pd.DataFrame) -> dict[str, int]:
    return {
        "rows": int(len(df)),
        "sketches": int(df["path_sketch"].nunique()),
        "photos": int(df["path_image"].nunique()),
        "labels": int(df["label"].nunique()),
    }


def _remove_stale(out_dir: Path, names: list[str]) -> list[str]:
    """Delete outputs of an earlier import of the other kind (index vs sketch-only) so none is mistaken
    for this one's; returns the names removed."""
    removed = []
    for n in names:
        if (out_dir / n).is_file():
            (out_dir / n).unlink()
            removed.append(n)
    return removed


def finish(
    out_dir: str | Path,
    frames: dict[str, pd.DataFrame],
    *,
    sketch_root: Path,
    image_root: Path,
    name: str,
    protocol: str,
    summary: dict[str, Any],
    check_decode: bool = False,
) -> dict[str, Any]:
    """Write ``index_{train,val,test}.csv``, ``dataset.json`` and ``summary.json``; read every split back.

    Rows are sorted; a split that is empty, a row whose file is missing, or a photo in two splits is an
    error (raised after the files are written, so they can be inspected). Returns the summary.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        df = frames.get(split)
        if df is None or len(df) == 0:
            raise ValueError(f"{name}: the {split} split is empty; nothing written to {out_dir}")
    removed = _remove_stale(out_dir, [f"sketches_{s}.csv" for s in SPLITS])
    written = []
    for split in SPLITS:
        df = frames[split].sort_values(["path_sketch", "path_image"], kind="stable").reset_index(drop=True)
        write_index(df, out_dir / f"index_{split}.csv")
        written.append(f"index_{split}.csv")
    write_spec(out_dir, sketch_root=sketch_root, image_root=image_root, name=name, protocol=protocol,
               format=summary.get("format", ""), summary=SUMMARY_FILE)
    written.append("dataset.json")

    spec = load_spec(out_dir)
    # strict: a row with a missing file or a duplicate row here means the importer wrote a bad row
    loaded = {s: read_index(spec.csv(s), spec, check_decode=check_decode, strict=True) for s in SPLITS}
    checks = split_integrity(loaded)
    failed = checks[~checks["ok"]]
    summary = {
        **summary,
        "name": name,
        "protocol": protocol,
        "sketch_root": str(Path(sketch_root).resolve()),
        "image_root": str(Path(image_root).resolve()),
        "counts": {s: _counts(loaded[s]) for s in SPLITS},
        "integrity": "ok" if failed.empty else [f"{r.check}: {r.count} ({r.detail})" for r in failed.itertuples()],
        "index_written": True,
        "files": written + [SUMMARY_FILE],
    }
    if removed:
        summary["removed_stale_files"] = removed
    write_summary(out_dir, summary)
    if not failed.empty:
        raise IndexValidationError([f"{out_dir}: {msg}" for msg in summary["integrity"]])
    return summary


def finish_sketch_only(
    out_dir: str | Path, frames: dict[str, pd.DataFrame], *, sketch_root: Path, summary: dict[str, Any]
) -> dict[str, Any]:
    """No photos: write ``sketches_{split}.csv`` (``path_sketch,label`` + extras, paths relative to
    ``sketch_root``) and ``summary.json`` saying so; no ``index_*.csv`` (an index needs photos)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    removed = _remove_stale(out_dir, [f"index_{s}.csv" for s in SPLITS] + ["dataset.json"])
    written = []
    counts = {}
    for split in SPLITS:
        df = frames.get(split)
        if df is None or len(df) == 0:
            continue
        df = df.sort_values("path_sketch", kind="stable").reset_index(drop=True)
        missing = [p for p in df["path_sketch"] if not (Path(sketch_root) / p).is_file()]
        if missing:
            raise FileNotFoundError(f"{out_dir}: {len(missing)} listed sketch file(s) missing, e.g. {missing[0]}")
        cols = ["path_sketch", "label"] + [c for c in df.columns if c not in ("path_sketch", "label", "path_image")]
        atomic_write(out_dir / f"sketches_{split}.csv",
                     lambda p, d=df[cols]: d.to_csv(p, index=False, lineterminator="\n"))
        written.append(f"sketches_{split}.csv")
        counts[split] = {"sketches": int(df["path_sketch"].nunique()), "labels": int(df["label"].nunique())}
    summary = {**summary, "sketch_root": str(Path(sketch_root).resolve()), "image_root": None,
               "index_written": False, "counts": counts, "files": written + [SUMMARY_FILE]}
    if removed:
        summary["removed_stale_files"] = removed
    write_summary(out_dir, summary)
    return summary


def write_summary(out_dir: Path, summary: dict[str, Any]) -> Path:
    return atomic_write_text(Path(out_dir) / SUMMARY_FILE, json.dumps(summary, indent=2, default=str) + "\n")


def format_summary(summary: dict[str, Any]) -> str:
    """A few lines for the terminal: counts per split, the split rule, what was skipped."""
    lines = [f"{summary.get('format', '?')}: {summary.get('source', '?')} -> {summary.get('out_dir', '?')}"]
    for split, c in summary.get("counts", {}).items():
        parts = [f"{c[k]} {k}" for k in ("rows", "sketches", "photos", "labels") if k in c]
        lines.append(f"  {split:5s}: " + ", ".join(parts))
    if summary.get("split_rule"):
        lines.append(f"  split: {summary['split_rule']}")
    for note in summary.get("notes", []):
        lines.append(f"  note: {note}")
    skipped = summary.get("skipped", {})
    if skipped:
        lines.append("  skipped: " + "; ".join(f"{v['count']} {k}" for k, v in skipped.items()))
    else:
        lines.append("  skipped: nothing")
    if summary.get("files"):
        lines.append("  wrote: " + ", ".join(summary["files"]))
    return "\n".join(lines)


def relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` as a POSIX string (the form stored in the CSVs)."""
    return Path(path).relative_to(root).as_posix()


def check_fraction(name: str, value: float, allow_zero: bool = False) -> None:
    low_ok = value >= 0 if allow_zero else value > 0
    if not (low_ok and value < 1):
        raise ValueError(f"{name} must be in {'[0' if allow_zero else '(0'}, 1), got {value}")
