"""The CSV index every dataset enters through: ``path_sketch,path_image,label`` (extra columns allowed),
one row per (sketch, paired photo), plus an optional ``dataset.json`` beside the CSVs.

A dataset is a folder ``INDEX_DIR`` with ``index_{train,val,test}.csv``. Paths in the CSVs are relative
to ``sketch_root`` / ``image_root``, which ``dataset.json`` may set (relative to ``INDEX_DIR``); both
default to ``INDEX_DIR`` itself, as in the AAFG seed's ``DATA/<name>/index_*.csv`` layout. Separate
roots let TU-Berlin sketches meet TU-Berlin-Ext photos, or rasterised QMUL strokes meet QMUL photos,
without copying either.

Validation happens once, on load: problems are collected with file and row and raised together
(errors) or counted and skipped with a warning (rows whose files are missing, duplicate rows);
``on_missing="error"`` (training and evaluation, unless ``--skip_missing``) makes missing files errors.
Lines starting with ``#`` are comments (the templates in ``data_templates/`` use them).
"""

from __future__ import annotations

import io
import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..fileio import atomic_write, atomic_write_text

REQUIRED_COLUMNS = ("path_sketch", "path_image", "label")
SPLITS = ("train", "val", "test")
SPEC_FILE = "dataset.json"
MISSING_MODES = ("skip", "error")
MAX_LISTED = 20  # problems shown in an error message; the rest are counted


class IndexValidationError(ValueError):
    """An index cannot be used. ``problems`` lists each one as ``"file:line: message"``."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = problems[:MAX_LISTED]
        more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        super().__init__("invalid index:\n  " + "\n  ".join(shown) + more)


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset's index CSVs and image files are."""

    index_dir: Path
    sketch_root: Path
    image_root: Path
    name: str = ""
    protocol: str = "fine"  # fine (label = photo id) | category (label = class) | scene (label = photo id)
    info: dict[str, Any] = field(default_factory=dict)

    def csv(self, split: str) -> Path:
        return self.index_dir / f"index_{split}.csv"

    def splits(self) -> list[str]:
        return [s for s in SPLITS if self.csv(s).exists()]


def load_spec(index_dir: str | Path) -> DatasetSpec:
    """Read ``INDEX_DIR/dataset.json`` (optional) into a :class:`DatasetSpec`."""
    index_dir = Path(index_dir).resolve()
    if not index_dir.is_dir():
        raise FileNotFoundError(f"{index_dir}: dataset folder not found (expected index_train.csv etc. in it)")
    meta: dict[str, Any] = {}
    spec_file = index_dir / SPEC_FILE
    if spec_file.exists():
        try:
            meta = json.loads(spec_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise IndexValidationError([f"{spec_file}: not valid JSON ({exc})"]) from None
    sketch_root = (index_dir / meta.pop("sketch_root", ".")).resolve()
    image_root = (index_dir / meta.pop("image_root", ".")).resolve()
    return DatasetSpec(
        index_dir=index_dir,
        sketch_root=sketch_root,
        image_root=image_root,
        name=meta.pop("name", index_dir.name),
        protocol=meta.pop("protocol", "fine"),
        info=meta,
    )


def write_spec(
    index_dir: str | Path,
    *,
    sketch_root: str | Path = ".",
    image_root: str | Path = ".",
    name: str = "",
    protocol: str = "fine",
    **info: Any,
) -> Path:
    """Write ``dataset.json``; roots are stored relative to ``index_dir`` where possible."""
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)

    def rel(p: str | Path) -> str:
        p = Path(p)
        if not p.is_absolute():
            return p.as_posix()
        try:
            return Path(os.path.relpath(p.resolve(), index_dir.resolve())).as_posix()
        except ValueError:  # another drive on Windows
            return p.resolve().as_posix()

    meta = {"name": name or index_dir.name, "protocol": protocol,
            "sketch_root": rel(sketch_root), "image_root": rel(image_root), **info}
    return atomic_write_text(index_dir / SPEC_FILE, json.dumps(meta, indent=2, default=str) + "\n")


def _decode_text(raw: bytes, path: Path) -> str:
    try:
        text = raw.decode("utf-16") if raw.startswith((b"\xff\xfe", b"\xfe\xff")) else raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IndexValidationError([f"{path}: not UTF-8 or UTF-16 text ({exc})"]) from None
    if "\x00" in text:
        raise IndexValidationError([f"{path}: contains NUL bytes (UTF-16 without a byte-order mark, or a binary "
                                    "file?); save it as UTF-8"])
    return text


def _inside(root: Path, rel: str) -> Path | None:
    """Resolve ``rel`` under ``root``; None if it is absolute or escapes the root (``..``, symlinks)."""
    if not rel or Path(rel).is_absolute() or rel.startswith(("/", "\\")) or ":" in rel[:3]:
        return None
    full = (root / rel).resolve()
    return full if full.is_relative_to(root.resolve()) else None




def _parse_csv(csv_path: Path) -> tuple[pd.DataFrame, list[int]]:
    """The CSV's rows (all ``str``, required columns stripped) and each row's 1-based line in the file.

    Lines starting with ``#`` are comments (the ``data_templates/`` files explain themselves with them).
    """
    text = _decode_text(csv_path.read_bytes(), csv_path)
    # CSV lines end at \n, \r\n or \r only (str.splitlines also splits at \f, \v, \x1c-\x1e, \x85 and
    # \u2028/9, which may stand inside a label: a label "\f#..." was taken for a comment line)
    lines = re.split(r"\r\n|\r|\n", text)
    kept = [i for i, ln in enumerate(lines, 1) if not ln.lstrip().startswith("#")]
    if len(kept) < len(lines):
        text = "\n".join(lines[i - 1] for i in kept) + "\n"
    if not text.strip():
        raise IndexValidationError([f"{csv_path}: the file is empty (expected a header {','.join(REQUIRED_COLUMNS)})"])
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise IndexValidationError([f"{csv_path}: not a valid CSV ({exc})"]) from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise IndexValidationError(
            [f"{csv_path}: missing column(s) {missing}; found {list(df.columns)}; "
             f"expected {','.join(REQUIRED_COLUMNS)}"]
        )
    if len(df) == 0:
        raise IndexValidationError([f"{csv_path}: no rows (an empty split)"])
    for col in REQUIRED_COLUMNS:
        df[col] = df[col].str.strip()
    # without comments kept[k] == k + 1, so row i (0-based, after the header) is on line i + 2 as before
    line = [kept[i + 1] if i + 1 < len(kept) else i + 2 for i in range(len(df))]
    return df, line


def _resolve_paths(df: pd.DataFrame, csv_path: Path, spec: DatasetSpec, line: list[int]) -> None:
    """Add the absolute ``sketch_file`` / ``image_file`` columns; raise every empty field or path that is
    absolute or leaves its root."""
    errors: list[str] = []
    for i in df.index[df["label"] == ""]:
        errors.append(f"{csv_path}:{line[i]}: empty label")
    for col in ("path_sketch", "path_image"):
        for i in df.index[df[col] == ""]:
            errors.append(f"{csv_path}:{line[i]}: empty {col}")
    sketch_files, image_files = [], []
    for i, ps, pi in zip(df.index, df["path_sketch"], df["path_image"]):
        fs, fi = _inside(spec.sketch_root, ps), _inside(spec.image_root, pi)
        if ps and fs is None:
            errors.append(f"{csv_path}:{line[i]}: path_sketch {ps!r} is absolute or leaves the sketch root {spec.sketch_root}")
        if pi and fi is None:
            errors.append(f"{csv_path}:{line[i]}: path_image {pi!r} is absolute or leaves the image root {spec.image_root}")
        sketch_files.append(str(fs) if fs else "")
        image_files.append(str(fi) if fi else "")
    df["sketch_file"], df["image_file"] = sketch_files, image_files
    if errors:
        raise IndexValidationError(errors)


def _bad_files(df: pd.DataFrame, csv_path: Path, line: list[int], drop: pd.Series,
               check_decode: bool) -> tuple[list[str], int]:
    """``"file:line: column 'path': why"`` for every missing (or, with ``check_decode``, undecodable) file of
    the rows not yet dropped, and how many distinct files that is; marks those rows in ``drop``."""
    checked: dict[str, str | None] = {}

    def problem(path: str) -> str | None:
        if path not in checked:
            checked[path] = None if Path(path).is_file() else "missing file"
            if checked[path] is None and check_decode:
                from .images import ImageDecodeError, load_image

                try:
                    load_image(path)
                except ImageDecodeError as exc:
                    checked[path] = f"undecodable ({exc})"
        return checked[path]

    bad: list[str] = []
    for i in df.index[~drop]:
        for col, fcol in (("path_sketch", "sketch_file"), ("path_image", "image_file")):
            why = problem(df.at[i, fcol])
            if why:
                bad.append(f"{csv_path}:{line[i]}: {col} {df.at[i, col]!r}: {why}")
                drop[i] = True
    return bad, sum(1 for why in checked.values() if why)


def read_index(
    csv_path: str | Path,
    spec: DatasetSpec | None = None,
    *,
    check_files: bool = True,
    check_decode: bool = False,
    strict: bool = False,
    on_missing: str = "skip",
) -> pd.DataFrame:
    """Read and validate one index CSV.

    Returns a DataFrame with at least ``path_sketch, path_image, label`` (all ``str``) and the absolute
    ``sketch_file`` and ``image_file`` columns. Raises :class:`IndexValidationError` listing every
    problem that breaks training (missing columns, empty labels, paths outside the roots, an empty
    index). Rows whose files are missing or undecodable and duplicate rows are dropped with a warning
    (``strict=True`` makes them errors); ``on_missing="error"`` makes only the missing or undecodable files
    an error (what ``sbir train`` / ``sbir eval`` do unless ``--skip_missing``). ``df.attrs["skipped"]``
    counts the rows dropped. Lines starting with ``#`` are comments.
    """
    if on_missing not in MISSING_MODES:
        raise ValueError(f"on_missing must be one of {MISSING_MODES}, got {on_missing!r}")
    csv_path = Path(csv_path)
    if spec is None:
        spec = load_spec(csv_path.parent)
    if not csv_path.exists():
        raise FileNotFoundError(f"{csv_path}: index file not found")
    df, line = _parse_csv(csv_path)
    _resolve_paths(df, csv_path, spec, line)

    skipped: dict[str, int] = {}
    # Same files (however the paths are spelled: ``./a.png``, ``x/../a.png``) and same label.
    dup = df.duplicated(subset=["sketch_file", "image_file", "label"], keep="first")
    drop = dup.copy()
    if dup.any():
        skipped["duplicate rows"] = int(dup.sum())
    bad_files, n_bad = _bad_files(df, csv_path, line, drop, check_decode) if check_files else ([], 0)
    if bad_files and on_missing == "error" and not strict:
        rows = int((drop & ~dup).sum())
        raise IndexValidationError(
            [f"{csv_path}: {rows} row(s) name {n_bad} missing or undecodable file(s) (sketch root "
             f"{spec.sketch_root}, image root {spec.image_root}); fix them, or leave those rows out with "
             "--skip_missing"] + bad_files)
    if bad_files:
        skipped["rows with missing or undecodable files"] = int((drop & ~dup).sum())

    if strict and (bad_files or dup.any()):
        raise IndexValidationError(bad_files + [f"{csv_path}:{line[i]}: duplicate row" for i in df.index[dup]])
    if skipped:
        examples = "; ".join(bad_files[:3])
        warnings.warn(
            f"{csv_path}: skipped " + ", ".join(f"{n} {k}" for k, n in skipped.items())
            + (f" (e.g. {examples})" if examples else ""),
            stacklevel=2,
        )
    df = df[~drop].reset_index(drop=True)
    if len(df) == 0:
        raise IndexValidationError([f"{csv_path}: no usable rows left after skipping {skipped}"])
    df.attrs["skipped"] = skipped
    df.attrs["csv"] = str(csv_path)
    return df


def read_splits(spec: DatasetSpec | str | Path, splits: tuple[str, ...] = SPLITS, **kwargs: Any) -> dict[str, pd.DataFrame]:
    """Read every split of a dataset that exists; see :func:`read_index` for ``kwargs``."""
    if not isinstance(spec, DatasetSpec):
        spec = load_spec(spec)
    found = {s: read_index(spec.csv(s), spec, **kwargs) for s in splits if spec.csv(s).exists()}
    if not found:
        raise FileNotFoundError(f"{spec.index_dir}: no index_{{{','.join(splits)}}}.csv found")
    return found


def write_index(df: pd.DataFrame, csv_path: str | Path) -> Path:
    """Write an index atomically: required columns first, then any extras (absolute-path columns dropped)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{csv_path}: cannot write an index without column(s) {missing}")
    extras = [c for c in df.columns if c not in REQUIRED_COLUMNS and c not in ("sketch_file", "image_file")]
    out = df[list(REQUIRED_COLUMNS) + extras]
    return atomic_write(csv_path, lambda p: out.to_csv(p, index=False, lineterminator="\n"))


def split_integrity(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Checks across splits, one row each: ``check``, ``count``, ``ok``, ``detail``.

    A photo (or sketch) in two splits is a leak: a test query could have been trained on.
    """
    rows: list[dict[str, Any]] = []
    names = list(frames)
    for kind, col, fcol in (("photos", "path_image", "image_file"), ("sketches", "path_sketch", "sketch_file")):
        # Compare the resolved files when both frames have them (from read_index), so that a photo spelt
        # differently in two splits (``./p.png``, ``x/../p.png``, a symlink) is still found.
        for a_i, a in enumerate(names):
            for b in names[a_i + 1 :]:
                key = fcol if fcol in frames[a].columns and fcol in frames[b].columns else col
                spelling = dict(zip(frames[a][key], frames[a][col]))
                shared = sorted(spelling[k] for k in set(frames[a][key]) & set(frames[b][key]))
                rows.append({
                    "check": f"{kind} in both {a} and {b}",
                    "count": len(shared),
                    "ok": not shared,
                    "detail": ", ".join(shared[:3]) + (" ..." if len(shared) > 3 else ""),
                })
    for name, df in frames.items():
        files = ["sketch_file", "image_file", "label"]
        dups = int(df.duplicated(subset=files if set(files) <= set(df.columns) else list(REQUIRED_COLUMNS)).sum())
        rows.append({"check": f"duplicate rows in {name}", "count": dups, "ok": dups == 0, "detail": ""})
        skipped = sum(df.attrs.get("skipped", {}).values())
        rows.append({"check": f"rows skipped on load in {name} (missing files, duplicates)", "count": skipped,
                     "ok": skipped == 0, "detail": str(df.attrs.get("skipped", {}))})
        rows.append({"check": f"rows in {name}", "count": len(df), "ok": len(df) > 0, "detail": ""})
    return pd.DataFrame(rows, columns=["check", "count", "ok", "detail"])
