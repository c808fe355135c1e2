"""One searchable gallery of the app: a checkpoint, its gallery embedded once with ``sbir embed`` and an
index over it, answering a sketch image (PNG bytes from the page's canvas, or an uploaded file).

A query is checked (not empty, not too large, an image, not blank), then preprocessed exactly as evaluation
preprocesses a test sketch: it is written to a temporary file and read through ``loading.ImageDataset``
(``images.load_image``, ``transforms.crop_to_object`` when the checkpoint crops, ``transforms.square``,
``transforms.to_tensor``) with the image store off, and embedded with the model's ``embed_sketch``. Both designs work: AAFG's stage-1 embedding is
per-modality (cross-attention only re-scores pairs in stage 2), so ``sbir embed`` embeds its photos alone.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..config import TrainConfig
from ..data.images import ImageDecodeError, load_image
from ..data.loading import ImageDataset
from ..data.transforms import normalize_batch
from ..gallery_index import MANIFEST, build_index_from_shards, missing_shards, read_manifest
from ..retrieval import INDEX_KINDS, ExactIndex, FaissIndex, file_fingerprint

MAX_UPLOAD_BYTES = 10 * 2**20  # a drawn sketch is ~20 KB; a phone photo of a paper sketch a few MB
MAX_PIXELS = 4096 * 4096  # larger images are refused before they are decoded (decompression bombs)
BLANK_LEVEL = 250  # a sketch whose darkest pixel is this light or lighter has no strokes


class QueryError(ValueError):
    """A query the app refuses; ``status`` is the HTTP status, the message is shown on the page."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


def check_upload(data: bytes, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """The ``(width, height)`` of an acceptable query image; a :class:`QueryError` saying what is wrong
    otherwise (empty, too many bytes, not an image, too many pixels)."""
    if not data:
        raise QueryError("The upload is empty (0 bytes): draw a sketch or choose an image file.", 400)
    if len(data) > max_bytes:
        raise QueryError(f"The file is {_mb(len(data))}; the limit is {_mb(max_bytes)}.", 413)
    try:
        with Image.open(io.BytesIO(data)) as img:  # reads the header only
            width, height = img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise QueryError("That file is not an image this app can read (use PNG, JPEG, GIF, BMP or WebP).",
                         415) from None
    if width * height > max_pixels:
        raise QueryError(f"The image is {width} x {height} pixels; the limit is {max_pixels / 1e6:.1f} "
                         "megapixels. Scale it down and try again.", 413)
    if width < 1 or height < 1:
        raise QueryError("The image has no pixels.", 400)
    return width, height


def query_tensor(data: bytes, cfg: TrainConfig) -> torch.Tensor:
    """The (1, 3, S, S) input of a query sketch, preprocessed as evaluation preprocesses a test sketch."""
    with tempfile.TemporaryDirectory(prefix="sbir-app-") as tmp:
        path = Path(tmp) / "query"
        path.write_bytes(data)
        try:
            if int(np.asarray(load_image(path, kind="sketch")).min()) >= BLANK_LEVEL:
                raise QueryError("The sketch is blank: draw some strokes first.", 422)
            x = normalize_batch(ImageDataset([path], "sketch", cfg.image_size, image_cache=None, crop=cfg.crop)[0])
        except ImageDecodeError as exc:
            reason = str(exc).split(": ", 1)[-1]
            raise QueryError(f"The image could not be decoded ({reason}).", 415) from None
    return x.unsqueeze(0)


@dataclass
class Searcher:
    """A model and an index over its embedded gallery; :meth:`search` answers PNG/JPEG bytes."""

    name: str
    model: torch.nn.Module
    cfg: TrainConfig
    index: ExactIndex | FaissIndex
    paths: list[str]
    labels: list[str] | None = None
    note: str = ""
    index_kind: str = "exact"
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def embed(self, data: bytes) -> torch.Tensor:
        """(1, D) embedding of a query image (checked with :func:`check_upload` first)."""
        check_upload(data)
        x = query_tensor(data, self.cfg).to(self.device)
        with self._lock, torch.inference_mode():
            return self.model.embed_sketch(x).float().cpu()

    def search(self, data: bytes, k: int = 10) -> dict[str, Any]:
        """``{"results": [{rank, row, score, name, label}], "ms": {embed, search}}``, best first."""
        t0 = time.perf_counter()
        q = self.embed(data)
        t1 = time.perf_counter()
        scores, idx = self.index.search(q, max(1, min(int(k), len(self.paths))))
        t2 = time.perf_counter()
        results = []
        for rank, (s, i) in enumerate(zip(scores[0].tolist(), idx[0].tolist()), 1):
            if i < 0:  # an IVF index that found fewer than k
                continue
            results.append({"rank": rank, "row": int(i), "score": round(float(s), 4), "name": Path(self.paths[i]).name,
                            "label": None if self.labels is None else str(self.labels[i])})
        return {"results": results, "ms": {"embed": round(1e3 * (t1 - t0), 1), "search": round(1e3 * (t2 - t1), 1)}}

    def describe(self) -> dict[str, Any]:
        """What the page shows about this gallery."""
        return {"name": self.name, "model": self.cfg.model, "backbone": self.cfg.backbone,
                "image_size": self.cfg.image_size, "n_gallery": len(self.paths), "index": self.index_kind,
                "note": self.note}


def default_embed_dir(checkpoint: str | Path, source: str) -> Path:
    """``runs_dir()/app-galleries/<hash of the checkpoint's content and the gallery source>``."""
    from ..paths import runs_dir

    digest = hashlib.sha256(f"{file_fingerprint(checkpoint)}\n{source}".encode()).hexdigest()[:16]
    return runs_dir() / "app-galleries" / digest


def embed_gallery(checkpoint: str | Path, photos: Path | list[str], out: Path, no_cuda: bool = False) -> Path:
    """Run ``sbir embed`` (resumable; nothing is redone when ``out`` is complete) on a photo folder or a list
    of photo files; returns ``out``."""
    from .. import gallery_index

    if isinstance(photos, Path):
        source = ["--photos", str(photos)]
    else:
        out.mkdir(parents=True, exist_ok=True)
        listing = out / "gallery.txt"
        listing.write_text("\n".join(map(str, photos)) + "\n", encoding="utf-8")
        source = ["--list", str(listing)]
    parser = argparse.ArgumentParser(prog="sbir embed")
    gallery_index.add_arguments(parser)  # sbir embed's own defaults for everything not given here
    args = parser.parse_args(["--ckpt", str(checkpoint), *source, "--out", str(out)] + (["--no_cuda"] if no_cuda else []))
    if gallery_index.run(args) != 0:
        raise ValueError(f"could not embed the gallery {photos if isinstance(photos, Path) else listing}")
    return out


def check_embed_folder(folder: Path, checkpoint: str | Path) -> list[str]:
    """The photo paths of a finished ``sbir embed`` folder made with ``checkpoint``; a ValueError otherwise."""
    manifest = read_manifest(folder)
    if manifest.get("key", {}).get("checkpoint") != file_fingerprint(checkpoint):
        raise ValueError(f"{folder}: embedded with another checkpoint than {checkpoint}; embed the photos again "
                         f"with 'sbir embed --ckpt {checkpoint} --photos DIR --out NEW_DIR'")
    left = missing_shards(folder)
    if left:
        raise ValueError(f"{folder}: {len(left)} shard(s) not encoded yet; run the same 'sbir embed' again to finish")
    return (folder / "paths.txt").read_text(encoding="utf-8").splitlines()


def load_index(folder: Path, kind: str) -> ExactIndex | FaissIndex:
    """The ``kind`` index of an embed folder: a saved ``index_KIND.faiss`` when there is one, else built from
    the shards (and saved, for a faiss kind)."""
    if kind not in INDEX_KINDS:
        raise ValueError(f"index must be one of {INDEX_KINDS}, got {kind!r}")
    saved = folder / f"index_{kind}.faiss"
    if kind != "exact" and saved.is_file():
        import faiss

        return FaissIndex(faiss.read_index(str(saved)))
    index = build_index_from_shards(folder, kind)
    if isinstance(index, FaissIndex):
        import faiss

        faiss.write_index(index.index, str(saved))
    return index


def open_searcher(name: str, checkpoint: str | Path, gallery: Path | list[str], *, index: str = "exact",
                  embed_dir: Path | None = None, labels: list[str] | None = None, note: str = "",
                  no_cuda: bool = False) -> Searcher:
    """A :class:`Searcher` for ``checkpoint`` over ``gallery``: an ``sbir embed`` output folder (it has
    ``manifest.json``), a folder of photos or a list of photo files (both embedded once into ``embed_dir``,
    by default :func:`default_embed_dir`)."""
    from ..engine import load_model, resolve_device

    device = resolve_device(no_cuda=no_cuda)
    model, cfg, _ = load_model(checkpoint, device=device)
    if isinstance(gallery, Path) and (gallery / MANIFEST).is_file():
        folder = gallery
    else:
        if isinstance(gallery, Path) and not gallery.is_dir():
            raise FileNotFoundError(f"{gallery}: gallery folder not found")
        source = str(gallery.resolve()) if isinstance(gallery, Path) else json.dumps(list(map(str, gallery)))
        folder = embed_gallery(checkpoint, gallery, embed_dir or default_embed_dir(checkpoint, source), no_cuda)
    paths = check_embed_folder(folder, checkpoint)
    if labels is not None and len(labels) != len(paths):
        labels = None
    return Searcher(name, model, cfg, load_index(folder, index), paths, labels, note, index, device)
