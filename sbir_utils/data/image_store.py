"""A decode-once image store: preprocessed images of one file list as a memory-mapped uint8 array on disk.

Decoding a JPEG, padding it to a square and resizing it costs more than a small model's forward pass on
a CPU, and the study reads the same files in every epoch, every validation pass and every run (ablations,
seeds). An :class:`ImageStore` keeps each preprocessed image once, in one file::

    <root>/<key>.u8    N flag bytes (1 = slot written), then N x S x S x C uint8 pixels
    <root>/<key>.json  the key, for people

The file's space is reserved when it is created (a store larger than half the free disk is refused,
and training then decodes every time). ``key`` is a hash of the file list, each file's size and modification time, the preprocessing name and
the output shape, so a changed image or a changed preprocessing gets a new store. Slots are filled
lazily, on first access, by whichever process reads them (DataLoader workers and DDP ranks on one
machine share the file through the page cache): the pixels are written before the flag, and a slot
whose flag is not set is decoded again, so an interrupted run never leaves a half-written image in use.
The bytes returned are exactly those of the preprocessing function; nothing is approximated.

numpy's ``memmap`` is used rather than a library (LMDB, HDF5, zarr): the data is one fixed-shape array,
which a flat file maps with no dependency and no per-item overhead.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

STORE_VERSION = 1


def store_key(paths: Sequence[str], prep: str, shape: tuple[int, ...]) -> str:
    """32 hex characters identifying ``paths`` (with their sizes and mtimes), ``prep`` and ``shape``."""
    h = hashlib.sha256()
    h.update(json.dumps({"version": STORE_VERSION, "prep": prep, "shape": list(shape)}).encode())
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"\n{p}\t{st.st_size}\t{st.st_mtime_ns}".encode())
        except OSError:  # a missing file is reported by the decoder, with its name, when it is read
            h.update(f"\n{p}\tmissing".encode())
    return h.hexdigest()[:32]


class ImageStore:
    """Lazily filled, memory-mapped uint8 images ``(S, S, C)`` for ``paths``.

    Args:
        paths: image files, in slot order.
        prep: a name for the preprocessing (part of the key: change it when ``make`` changes).
        make: path -> PIL image of mode ``L`` (``channels=1``) or ``RGB`` (``channels=3``), ``size`` square.
        size: side of the stored images; channels: 1 or 3.
        root: folder of the store files.
    """

    def __init__(self, paths: Sequence[str], prep: str, make: Callable[[str], Image.Image], size: int,
                 channels: int, root: str | Path):
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        self.paths = [str(p) for p in paths]
        self.make = make
        self.shape = (int(size), int(size), int(channels)) if channels == 3 else (int(size), int(size))
        self.mode = "RGB" if channels == 3 else "L"
        self.root = Path(root)
        key = store_key(self.paths, prep, self.shape)
        self.file = self.root / f"{key}.u8"
        self._item_bytes = int(np.prod(self.shape))
        self._n = len(self.paths)
        self._flags: np.ndarray | None = None
        self._pixels: np.ndarray | None = None
        self._pid: int | None = None
        self._create(prep)

    @property
    def nbytes(self) -> int:
        return self._n * (1 + self._item_bytes)

    def _create(self, prep: str) -> None:
        if self.file.exists() and self.file.stat().st_size == self.nbytes:
            if not os.access(self.file, os.R_OK | os.W_OK):
                raise OSError(f"{self.file}: image store is not readable and writable")
            return
        self.root.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.root).free
        if self.nbytes > free // 2:
            raise OSError(f"{self.root}: the image store needs {self.nbytes / 2**30:.1f} GiB and only "
                          f"{free / 2**30:.1f} GiB are free (set image_cache: off, or SBIR_IMAGE_CACHE_DIR)")
        tmp = self.file.with_name(f"{self.file.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                # Reserved now, not sparse: writing a mapped page of a full disk would kill the process.
                os.posix_fallocate(fh.fileno(), 0, self.nbytes)
            os.replace(tmp, self.file)  # flags and pixels appear together (one file)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        meta = {"version": STORE_VERSION, "prep": prep, "shape": list(self.shape), "n": self._n,
                "first_paths": self.paths[:3]}
        self.file.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")

    def _open(self) -> None:
        # Opened per process: a memmap must not be pickled into spawned workers (it would be copied).
        mm = np.memmap(self.file, dtype=np.uint8, mode="r+", shape=(self.nbytes,))
        self._flags = mm[: self._n]
        self._pixels = mm[self._n:].reshape((self._n, *self.shape))
        self._pid = os.getpid()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(_flags=None, _pixels=None, _pid=None)
        return state

    def __len__(self) -> int:
        return self._n

    def array(self, i: int) -> np.ndarray:
        """Slot ``i`` as a uint8 array ``(S, S)`` or ``(S, S, 3)`` (a copy), decoding it if not stored yet."""
        if self._pid != os.getpid():
            self._open()
        assert self._flags is not None and self._pixels is not None
        if not self._flags[i]:
            img = self.make(self.paths[i])
            if img.mode != self.mode:
                img = img.convert(self.mode)
            if img.size != (self.shape[1], self.shape[0]):
                raise ValueError(f"{self.paths[i]}: preprocessing gave {img.size}, the store expects "
                                 f"{self.shape[1]}x{self.shape[0]}")
            self._pixels[i] = np.asarray(img)
            self._flags[i] = 1  # after the pixels: an unset flag means "decode again"
        return np.array(self._pixels[i])

    def image(self, i: int) -> Image.Image:
        """Slot ``i`` as a PIL image (mode ``L`` or ``RGB``)."""
        return Image.fromarray(self.array(i), self.mode)


def open_store(paths: Sequence[str], prep: str, make: Callable[[str], Image.Image], size: int, channels: int,
               root: str | Path | None) -> ImageStore | None:
    """An :class:`ImageStore`, or None (decode every time) when ``root`` is None or the store cannot be
    created (no space, read-only folder: a warning says why)."""
    if root is None:
        return None
    try:
        return ImageStore(paths, prep, make, size, channels, root)
    except OSError as exc:
        warnings.warn(f"image store disabled, images are decoded on every read: {exc}", stacklevel=2)
        return None
