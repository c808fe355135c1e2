"""A raw dataset folder given straight to ``sbir train`` / ``sbir eval`` / ``sbir embed``: its official layout
is recognised, indexed once with its importer, and the index is reused until the folder changes.

Recognised layouts (in this order): FS-COCO (``images/`` + ``raster_sketches/``), Sketchy
(``photo/`` + ``sketch/tx_000000000000/``), TU-Berlin (``png/<class>/``, photos from an ``ImageResized/``
inside the folder), paired folders (``photos/`` or ``images/`` + ``sketches/``) and QMUL (``photo/`` +
``sketch/`` folders, possibly under ``train/`` / ``test/``, or a ``*_Coordinate`` stroke file).

Where the index goes: ``RAW_ROOT/.sbir-index/<name>/`` when the folder is writable (hidden, so no importer
mistakes it for data), else ``<data dir>/auto-index/<folder name>-<hash of its path>/<name>/`` (the data
dir is ``data/`` or ``SBIR_DATA_DIR``). ``auto_index.json`` beside the CSVs records the importer, its
options and a fingerprint of the folder (every file's path, size and modification time; hidden files
left out); an index whose record matches is reused, any other is built again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ... import paths
from ...fileio import atomic_write_text
from . import FORMATS, qmul, sketchy, tuberlin
from .common import Skipped, list_images

HIDDEN_DIR = ".sbir-index"
RECORD = "auto_index.json"
RECORD_VERSION = 1
WAIT_S = 1800  # how long a torchrun rank > 0 waits for rank 0's index


@dataclass(frozen=True)
class Layout:
    """A recognised raw layout: the importer (``FORMATS`` name), its keyword options and a description."""

    format: str
    root: Path
    description: str
    options: dict[str, Any] = field(default_factory=dict)


def _has_subdirs(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_dir() and not p.name.startswith(".") for p in folder.iterdir())


def _qmul_like(root: Path) -> bool:
    """``photo(s)/`` and ``sketch(es)/`` folders within two levels, or a ``*_Coordinate`` stroke file there."""
    level1 = [p for p in root.iterdir() if not p.name.startswith(".")]
    near = level1 + [q for p in level1 if p.is_dir() for q in p.iterdir() if not q.name.startswith(".")]
    if any(p.is_file() and p.name.endswith("_Coordinate") for p in near):
        return True
    names = {p.name.lower() for p in near if p.is_dir()}
    return bool(names & qmul.PHOTO_DIRS) and bool(names & qmul.SKETCH_DIRS)


def detect(root: str | Path) -> Layout | None:
    """The official raw layout of ``root``, or None (not a folder, or no layout recognised)."""
    root = Path(root)
    if not root.is_dir():
        return None
    if (root / "images").is_dir() and (root / "raster_sketches").is_dir():
        return Layout("fscoco", root, "FS-COCO (images/ + raster_sketches/)")
    try:
        base = sketchy.find_base(root)
        where = base.relative_to(root).as_posix() + "/" if base != root else ""
        return Layout("sketchy", root, f"Sketchy ({where}photo/ + {where}sketch/{sketchy.TX}/)")
    except FileNotFoundError:
        pass
    if _has_subdirs(root / "png"):
        photos = tuberlin.photos_in_root(root)
        extra = f" with TU-Berlin-Ext photos ({photos.relative_to(root).as_posix()}/)" if photos else " (no photos)"
        return Layout("tuberlin", root, "TU-Berlin (png/<class>/)" + extra)
    for photo_dir in ("photos", "images"):
        if (root / photo_dir).is_dir() and (root / "sketches").is_dir():
            return Layout("folders", root, f"paired folders ({photo_dir}/ + sketches/)", {"photos_subdir": photo_dir})
    if _qmul_like(root):
        return Layout("qmul", root, "QMUL (photo/ + sketch/ folders or a *_Coordinate stroke file)")
    return None


def fingerprint(root: str | Path) -> tuple[str, int]:
    """``(sha256, number of files)`` of every non-hidden file's relative path, size and mtime under ``root``."""
    root = Path(root).resolve()
    digest, n = hashlib.sha256(), 0
    stack, seen = [root], {root}
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            if e.name.startswith("."):
                continue
            if e.is_dir():
                real = Path(e.path).resolve()
                if real not in seen:  # a symlinked folder once, never a loop
                    seen.add(real)
                    stack.append(Path(e.path))
                continue
            st = e.stat()
            rel = Path(e.path).relative_to(root).as_posix()
            digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
            n += 1
    return digest.hexdigest(), n


def index_homes(root: str | Path, name: str) -> tuple[Path, Path]:
    """``(beside the data, in the cache)``: the two places an auto-made index of ``root`` may live."""
    root = Path(root).resolve()
    tag = hashlib.sha256(str(root).encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return root / HIDDEN_DIR / name, paths.data_dir() / "auto-index" / f"{root.name}-{tag}" / name


def _can_write(folder: Path) -> bool:
    """Whether ``folder`` can be created (if needed) and written to."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
        return True
    except OSError:
        return False


def _writable_home(root: Path, name: str) -> tuple[Path, bool]:
    """``(folder, in_cache)``: beside the data when it can be written there, else the cache."""
    beside, cache = index_homes(root, name)
    if _can_write(beside):
        return beside, False
    cache.mkdir(parents=True, exist_ok=True)
    return cache, True


def _matches(home: Path, record: dict[str, Any]) -> bool:
    try:
        old = json.loads((home / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return old == record and all((home / f"index_{s}.csv").is_file() for s in ("train", "val", "test"))


def _plan(layout: Layout, split: str | None) -> tuple[str, dict[str, Any]]:
    """``(index name, importer options)`` for ``layout``; ``split`` is FS-COCO's."""
    options = dict(layout.options)
    if layout.format == "fscoco":
        options["split"] = split or "normal"
        return f"fscoco-{options['split']}", options
    if split not in (None, "normal"):
        raise ValueError(f"{layout.root}: --split {split} is for FS-COCO, and this is {layout.description}")
    return layout.format, options


def _build(layout: Layout, home: Path, options: dict[str, Any]) -> dict[str, Any]:
    """Run the layout's importer into ``home``; its summary. A failure says what was tried and how to
    index the folder by hand; a layout without photos is an error (training needs pairs)."""
    flags = " ".join(f"--{k} {v}" for k, v in options.items())
    try:
        summary = FORMATS[layout.format].build_index(layout.root, home, **options)
    except (FileNotFoundError, ValueError) as exc:
        kind = FileNotFoundError if isinstance(exc, FileNotFoundError) else ValueError
        raise kind(f"{layout.root} looks like {layout.description}, but indexing it failed: {exc} (build "
                        f"the index yourself: sbir index {layout.format} {layout.root} {flags} --out DIR)") from None
    if not summary.get("index_written"):
        notes = "; ".join(summary.get("notes", []))
        raise FileNotFoundError(f"{layout.root}: {layout.description} has sketches but no photos to pair them with "
                                f"({notes}); training and evaluation need photos")
    return summary


def ensure_index(root: str | Path, split: str | None = None) -> tuple[Path, str]:
    """The index folder of the raw layout in ``root`` (built, rebuilt or reused) and one line saying what
    was recognised and done. Raises ``FileNotFoundError`` when ``root`` holds no recognised layout."""
    root = Path(root).resolve()
    layout = detect(root)
    if layout is None:
        raise FileNotFoundError(f"{root}: neither an index folder (index_train.csv ...) nor a raw layout this "
                                "project recognises (FS-COCO, Sketchy, TU-Berlin, QMUL, paired folders)")
    name, options = _plan(layout, split)
    digest, n_files = fingerprint(root)
    record = {"version": RECORD_VERSION, "format": layout.format, "options": options, "source": str(root),
              "fingerprint": digest, "files": n_files}
    for home in index_homes(root, name):
        if _matches(home, record):
            return home, f"{root} is {layout.description}; reusing its index in {home} (folder unchanged)"
    if int(os.environ.get("RANK", "0")) > 0:  # under torchrun rank 0 builds it; the others wait for it
        return _wait_for(root, name, record, layout)
    stale = any((h / RECORD).is_file() for h in index_homes(root, name))
    home, in_cache = _writable_home(root, name)
    summary = _build(layout, home, options)
    atomic_write_text(home / RECORD, json.dumps(record, indent=2) + "\n")
    counts = " / ".join(f"{s} {c.get('rows', 0)}" for s, c in summary.get("counts", {}).items())
    where = f"the cache {home} ({root} is not writable)" if in_cache else str(home)
    verb = "the folder changed since it was indexed: indexed it again" if stale else "indexed it"
    return home, (f"{root} is {layout.description}; {verb} with 'sbir index {layout.format}"
                  + "".join(f" --{k} {v}" for k, v in options.items()) + f"' into {where} (rows: {counts})")


def _wait_for(root: Path, name: str, record: dict[str, Any], layout: Layout) -> tuple[Path, str]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        for home in index_homes(root, name):
            if _matches(home, record):
                return home, f"{root} is {layout.description}; using the index rank 0 made in {home}"
        time.sleep(2)
    raise TimeoutError(f"{root}: rank 0 did not finish indexing it within {WAIT_S} s")


def layout_photos(root: str | Path) -> tuple[list[Path], str] | None:
    """The photos of the raw layout in ``root`` (no sketches) and a line saying so; None when ``root`` is no
    recognised layout. For ``sbir embed --photos RAW_ROOT``."""
    layout = detect(root)
    if layout is None:
        return None
    root, skipped = Path(root), Skipped()
    if layout.format == "fscoco":
        files = list_images(root / "images", skipped)
    elif layout.format == "sketchy":
        files = list_images(sketchy.find_base(root) / "photo" / sketchy.TX, skipped)
    elif layout.format == "tuberlin":
        found = tuberlin.photos_in_root(root)
        if found is None:
            raise FileNotFoundError(f"{root}: TU-Berlin sketches without photos (no ImageResized/ in it); give "
                                    "--photos the TU-Berlin-Ext folder itself")
        files = list_images(found, skipped)
    elif layout.format == "folders":
        files = list_images(root / layout.options["photos_subdir"], skipped)
    else:
        files = sorted(qmul.scan(root, skipped)[0].values())
    return files, f"{root} is {layout.description}: encoding its {len(files)} photos, not its sketches"
