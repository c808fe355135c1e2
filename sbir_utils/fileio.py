"""Atomic file writes: write to a temporary name in the same folder, then rename, so a crash or a full
disk never leaves a half-written file where a good one stood; :func:`atomic_link` gives a file a second
name the same way (one copy on disk)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it replaces ``target``, on error it is removed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write(target: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and move the result to ``target`` atomically."""
    with atomic_path(target) as tmp:
        write(tmp)
    return Path(target)


def atomic_write_text(target: str | Path, text: str) -> Path:
    return atomic_write(target, lambda p: p.write_text(text, encoding="utf-8"))


def atomic_link(source: str | Path, target: str | Path) -> bool:
    """Make ``target`` a hard link to ``source`` (the same file under a second name, no second copy on disk),
    atomically: link to a hidden temporary name beside ``target`` (``.NAME.XXXXXXXX.tmp``), then rename it over
    ``target``. Returns True. Where hard links are unsupported (``os.link`` raises an ``OSError``: another
    device, a filesystem without links, too many links) ``source``'s bytes are copied to ``target``
    atomically instead (:func:`atomic_path`) and False is returned. Both names are one file: a later write to
    either must replace it by renaming (as :func:`atomic_path` does), which leaves the other name's bytes as
    they were; writing into it in place would change both."""
    source, target = Path(source), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _link_beside(source, target)
    if tmp is None:
        atomic_write(target, lambda p: shutil.copyfile(source, p))
        return False
    try:
        os.replace(tmp, target)
    finally:  # a rename onto another name of the same file does nothing and leaves tmp behind
        tmp.unlink(missing_ok=True)
    return True


def _link_beside(source: Path, target: Path) -> Path | None:
    """A new hidden hard link to ``source`` beside ``target``, or None where hard links are unsupported."""
    if not hasattr(os, "link"):
        return None
    for _ in range(100):
        tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
        try:
            os.link(source, tmp)
        except FileExistsError:
            continue
        except OSError:
            return None
        return tmp
    raise FileExistsError(f"{target.parent}: no free temporary name for {target.name}")


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
