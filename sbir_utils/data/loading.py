"""Torch datasets and batch samplers over an index DataFrame (``index.read_index``).

Preprocessing (the image transforms are in ``transforms``) is the same at training and evaluation time
for both modalities: optionally crop to the drawing / object (``crop=True``, ``crop_to_object``), pad to
a square on white (keeps the aspect ratio; sketches and product photos have white backgrounds; a sketch
shrunk a lot is thickened first), resize to ``image_size``; photos as ``rgb`` or ``edges`` (``photo_input``).
The datasets yield **uint8** tensors ``(C, S, S)`` (C = 1 for sketches and edge photos, 3 for RGB photos);
``transforms.normalize_batch`` makes the model's float input of a batch on the device that runs the model
(ImageNet mean/std, greyscale replicated to 3 channels), so a GPU receives a quarter of float32's bytes.
Augmentation (``train=True, augment=True``) touches sketches only: a small random affine jitter and,
sometimes, a one-pixel stroke-thickness change (``SketchAugment``) at twice the output resolution; a
pair is mirrored as a whole with probability 1/2 (``base=True``: none here, ``batch_augment`` does it on
the device). Randomness comes from torch's generator, so a seeded
``DataLoader`` (see :func:`make_loader`) is reproducible; with loader workers each row's augmentation is
seeded by ``(seed, epoch, row)`` instead, so workers can persist across epochs (:class:`TrainingBatches`).

Batch samplers yield lists of row indices, re-shuffled per epoch from ``seed + epoch`` and sharded by
rank for DistributedDataParallel: all ranks draw the same global batches of ``batch_size x world_size``
rows and each takes an equal slice (the engine gathers the embeddings, so the loss is the global batch's):

* :class:`PhotoUniqueBatchSampler` (fine-grained, scene-level): no photo twice in a batch, so every
  other photo of the batch is a true negative;
* :class:`PKBatchSampler` (category-level): ``P`` labels x ``K`` rows per batch;
* :class:`RandomBatchSampler`: plain shuffled batches.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset, Sampler

from .image_store import open_store
from .images import load_image
from .transforms import (
    PHOTO_PREP_NAMES,
    SketchAugment,
    check_photo_mode,
    crop_to_object,
    photo_input,
    square,
    to_uint8,
)

SAMPLERS = ("auto", "photo_unique", "pk", "random")


def label_codes(labels: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """String labels -> int codes in sorted-label order, and the sorted label list."""
    names = sorted(set(map(str, labels)))
    lookup = {n: i for i, n in enumerate(names)}
    return np.asarray([lookup[str(x)] for x in labels], dtype=np.int64), names


class PairDataset(Dataset):
    """Rows of an index as ``(sketch uint8 (1, S, S), photo uint8 (C, S, S), label code)``.

    Args:
        df: from ``read_index`` (needs ``sketch_file``, ``image_file``, ``label``).
        image_size: output side in pixels.
        train: training mode (enables ``augment``).
        augment: sketch augmentation and pair mirroring, only when ``train``.
        photo_mode: ``rgb``, ``edges`` or ``hed`` (see ``transforms.photo_input``).
        image_cache: folder of the decode-once image store (``data.image_store``), ``"default"`` for
            ``paths.image_cache_dir()``, or None to decode every time. Each file is decoded and squared
            to twice ``image_size`` once; augmentation and the final resize run on every read.
        crop: crop sketches and photos to their drawing / object first (``transforms.crop_to_object``).
        base: yield the stored training base (twice ``image_size``) as it is, for ``batch_augment`` on the device.
    """

    def __init__(self, df: pd.DataFrame, image_size: int, train: bool = False, augment: bool = True,
                 photo_mode: str = "rgb", image_cache: str | Path | None = "default", crop: bool = False,
                 base: bool = False):
        for col in ("sketch_file", "image_file", "label"):
            if col not in df.columns:
                raise ValueError(f"PairDataset needs column {col!r} (read the CSV with sbir_utils.data.index.read_index)")
        check_photo_mode(photo_mode)
        self.sketch_files = df["sketch_file"].astype(str).tolist()
        self.image_files = df["image_file"].astype(str).tolist()
        self.labels, self.label_names = label_codes(df["label"].tolist())
        self.image_size = int(image_size)
        self.photo_mode = photo_mode
        self.augment = SketchAugment() if (train and augment and not base) else None
        self.flip, self.base = bool(train and augment and not base), base
        root = _cache_root(image_cache)
        base = 2 * self.image_size
        self._sketches = _Images(sorted(set(self.sketch_files)), "sketch", base, photo_mode, root, crop=crop)
        self._photos = _Images(sorted(set(self.image_files)), "photo", base, photo_mode, root, crop=crop)

    def __len__(self) -> int:
        return len(self.sketch_files)

    def __getitem__(self, key: int | tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Row ``key`` (an int), or a keyed row ``(*stream, row)`` from a ``keyed`` batch sampler: its
        augmentation then draws from torch's generator seeded with :func:`sample_seed` (the caller's
        generator state is restored afterwards)."""
        if isinstance(key, tuple):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(sample_seed(*key))
                return self._item(int(key[-1]))
        return self._item(key)

    def _item(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        if self.base:  # no copy through PIL
            return (to_uint8(self._sketches.array(self.sketch_files[i])),
                    to_uint8(self._photos.array(self.image_files[i])), int(self.labels[i]))
        sketch = self._sketches.image(self.sketch_files[i])
        photo = self._photos.image(self.image_files[i])
        if self.augment is not None:
            sketch = self.augment(sketch)
        if self.flip and float(torch.rand(())) < 0.5:
            sketch, photo = ImageOps.mirror(sketch), ImageOps.mirror(photo)
        size = (self.image_size, self.image_size)
        return (to_uint8(sketch.resize(size, Image.Resampling.BILINEAR)),
                to_uint8(photo.resize(size, Image.Resampling.BILINEAR)), int(self.labels[i]))


class ImageDataset(Dataset):
    """Single images (queries or gallery) with the evaluation preprocessing: uint8 ``(C, S, S)`` tensors.

    Args: paths: image files; kind: ``"sketch"`` or ``"photo"``; image_size: output side; photo_mode:
    ``rgb``, ``edges`` or ``hed`` (photos only, see ``transforms.photo_input``); image_cache: as in :class:`PairDataset`
    (here the final ``image_size`` image is stored, so a second pass only copies it); crop: as in
    :class:`PairDataset`.
    """

    def __init__(self, paths: Sequence[str | Path], kind: str, image_size: int, photo_mode: str = "rgb",
                 image_cache: str | Path | None = "default", crop: bool = False):
        if kind not in ("sketch", "photo"):
            raise ValueError(f"kind must be 'sketch' or 'photo', got {kind!r}")
        check_photo_mode(photo_mode)
        self.paths, self.kind, self.photo_mode = [str(p) for p in paths], kind, photo_mode
        self.image_size = int(image_size)
        self._images = _Images(sorted(set(self.paths)), kind, self.image_size, photo_mode,
                               _cache_root(image_cache), final=True, crop=crop)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        return to_uint8(self._images.array(self.paths[i]))


def _cache_root(image_cache: str | Path | None) -> Path | None:
    if isinstance(image_cache, str) and image_cache == "default":
        from ..paths import image_cache_dir

        return image_cache_dir()
    return None if image_cache is None else Path(image_cache)


class _Images:
    """Preprocessed images by path: squared to ``size`` (``final=False``: the training base at twice the
    output size) or squared at twice ``size`` and resized to ``size`` (``final=True``: what the model
    sees at evaluation), from an :class:`~.image_store.ImageStore` when ``root`` is set."""

    def __init__(self, paths: list[str], kind: str, size: int, photo_mode: str, root: Path | None,
                 final: bool = False, crop: bool = False):
        self.kind, self.size, self.photo_mode, self.final, self.crop = kind, size, photo_mode, final, crop
        self.slot = {p: j for j, p in enumerate(paths)}
        channels = 1 if (kind == "sketch" or photo_mode != "rgb") else 3
        prep = f"{kind}:{'rgb' if kind == 'sketch' else PHOTO_PREP_NAMES[photo_mode]}:{'final' if final else 'base'}:{size}"
        prep += ":crop" if crop else ""
        self.store = open_store(paths, prep, self.make, size, channels, root)

    def make(self, path: str) -> Image.Image:
        img = load_image(path, kind=self.kind)
        if self.crop:
            img = crop_to_object(img, self.kind)
        side = 2 * self.size if self.final else self.size
        img = square(img, side, "sketch") if self.kind == "sketch" else photo_input(img, side, self.photo_mode)
        if self.final:
            img = img.resize((self.size, self.size), Image.Resampling.BILINEAR)
        return img

    def image(self, path: str) -> Image.Image:
        return self.make(path) if self.store is None else self.store.image(self.slot[path])

    def array(self, path: str) -> np.ndarray:
        """uint8 ``(S, S)`` (mode L) or ``(S, S, 3)`` (RGB)."""
        return np.array(self.make(path)) if self.store is None else self.store.array(self.slot[path])


# ---- batch samplers ----------------------------------------------------------------------------------

def sample_seed(*key: int) -> int:
    """A 63-bit seed for one keyed row, e.g. ``(seed, epoch, row)``: numpy's ``SeedSequence`` of the key, so
    nearby keys give unrelated streams. Negative numbers are taken modulo 2**64."""
    words = [int(k) % 2**64 for k in key]
    return int(np.random.SeedSequence(words).generate_state(1, np.uint64)[0] >> np.uint64(1))


class _EpochBatchSampler(Sampler[list]):
    """Batches of row indices, drawn anew per epoch (``set_epoch``); with ``keyed`` set (by
    :class:`TrainingBatches`) each row comes as ``(seed, epoch, row)``, for :class:`PairDataset`'s per-row
    augmentation seed."""

    def __init__(self, n: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.n, self.batch_size, self.seed = n, int(batch_size), int(seed)
        self.rank, self.world_size, self.epoch = int(rank), int(world_size), 0
        self.keyed = False
        self.global_batch = self.batch_size * self.world_size  # what one step of all ranks together sees

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch])

    def _all_batches(self) -> list[list[int]]:
        raise NotImplementedError

    def _mine(self) -> list[list[int]]:
        """Global batches (``batch_size x world_size`` rows, built as one process would build them) split
        into equal per-rank slices, so that a step of all ranks together sees exactly the batch of a
        single process with the global batch size (no photo twice across ranks either)."""
        batches = self._all_batches()
        if self.world_size == 1:
            return batches
        mine = []
        for batch in batches:
            per = len(batch) // self.world_size
            if per:
                mine.append(batch[self.rank * per:(self.rank + 1) * per])
        return mine

    def __iter__(self) -> Iterator[list]:
        if self.keyed:
            return iter([[(self.seed, self.epoch, i) for i in batch] for batch in self._mine()])
        return iter(self._mine())

    def __len__(self) -> int:
        return len(self._mine())


class RandomBatchSampler(_EpochBatchSampler):
    """Shuffled rows in batches of ``batch_size``; the last incomplete batch is dropped."""

    def _all_batches(self) -> list[list[int]]:
        order = self._rng().permutation(self.n).tolist()
        b = min(self.global_batch, self.n)
        return [order[i:i + b] for i in range(0, len(order) - b + 1, b)]


class PhotoUniqueBatchSampler(_EpochBatchSampler):
    """Batches in which no photo appears twice (``keys`` = photo of each row).

    Rows are shuffled, then each batch takes the first rows whose photo it does not hold yet; a batch
    smaller than ``min(batch_size, number of photos)`` (only at the tail) is dropped.
    """

    def __init__(self, keys: Sequence[str], batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        super().__init__(len(keys), batch_size, seed, rank, world_size)
        self.keys = list(keys)
        self.full = min(self.global_batch, len(set(self.keys)))

    def _all_batches(self) -> list[list[int]]:
        pending = self._rng().permutation(self.n).tolist()
        batches: list[list[int]] = []
        while pending:
            batch: list[int] = []
            seen: set[str] = set()
            rest: list[int] = []
            for r in pending:
                if len(batch) < self.full and self.keys[r] not in seen:
                    batch.append(r)
                    seen.add(self.keys[r])
                else:
                    rest.append(r)
            if len(batch) < self.full:
                break
            batches.append(batch)
            pending = rest
        return batches


class PKBatchSampler(_EpochBatchSampler):
    """``P = batch_size // k`` labels x ``k`` rows per batch (rows drawn without replacement within an
    epoch; labels with fewer than ``k`` rows are topped up by repetition)."""

    def __init__(self, labels: Sequence, batch_size: int, k: int = 4, seed: int = 0, rank: int = 0,
                 world_size: int = 1):
        super().__init__(len(labels), batch_size, seed, rank, world_size)
        self.k = max(1, min(int(k), self.batch_size))
        groups: dict[str, list[int]] = {}
        for i, lab in enumerate(labels):
            groups.setdefault(str(lab), []).append(i)
        self.groups = [groups[key] for key in sorted(groups)]
        self.p = max(1, min(self.global_batch // self.k, len(self.groups)))

    def _all_batches(self) -> list[list[int]]:
        rng = self._rng()
        chunks: list[tuple[int, list[int]]] = []  # (label, k rows)
        for gi, rows in enumerate(self.groups):
            rows = rng.permutation(rows).tolist()
            if len(rows) % self.k:
                rows += rng.choice(rows, self.k - len(rows) % self.k).tolist()
            chunks += [(gi, rows[i:i + self.k]) for i in range(0, len(rows), self.k)]
        pending = [chunks[i] for i in rng.permutation(len(chunks))]
        batches: list[list[int]] = []
        while pending:  # each batch takes the first P chunks of P different labels
            batch: list[int] = []
            used: set[int] = set()
            rest = []
            for gi, rows in pending:
                if len(used) < self.p and gi not in used:
                    batch += rows
                    used.add(gi)
                else:
                    rest.append((gi, rows))
            if len(used) < self.p:
                break
            batches.append(batch)
            pending = rest
        return batches


def make_batch_sampler(
    df: pd.DataFrame, batch_size: int, kind: str = "photo_unique", seed: int = 0, rank: int = 0,
    world_size: int = 1, k: int = 4,
) -> _EpochBatchSampler:
    """The training batch sampler ``kind`` (``photo_unique`` | ``pk`` | ``random``) over ``df``'s rows."""
    if kind == "photo_unique":
        return PhotoUniqueBatchSampler(df["image_file"].astype(str).tolist(), batch_size, seed, rank, world_size)
    if kind == "pk":
        return PKBatchSampler(df["label"].astype(str).tolist(), batch_size, k, seed, rank, world_size)
    if kind == "random":
        return RandomBatchSampler(len(df), batch_size, seed, rank, world_size)
    raise ValueError(f"sampler must be one of {SAMPLERS[1:]}, got {kind!r}")


class TrainingBatches:
    """A run's training batches, epoch by epoch: ``epoch(e)`` sets the sampler's epoch and returns the loader
    that draws epoch ``e``.

    With ``num_workers > 0`` the sampler is made ``keyed`` and one loader serves every epoch: its workers
    persist (no start-up per epoch) and each row's augmentation is seeded by ``(seed, epoch, row)``, so the
    batches are the same for any worker count and after a resume. Without workers a loader seeded with
    ``seed * 1000 + epoch`` is made per epoch (augmentation from the main process's torch generator, which
    the caller re-seeds per epoch), as before workers could persist.
    """

    def __init__(self, dataset: Dataset, sampler: _EpochBatchSampler, num_workers: int = 0, seed: int = 0,
                 pin_memory: bool = False):
        self.dataset, self.sampler, self.num_workers, self.seed = dataset, sampler, int(num_workers), int(seed)
        self.pin_memory = pin_memory
        sampler.keyed = self.num_workers > 0
        self._loader: DataLoader | None = None

    def epoch(self, epoch: int) -> DataLoader:
        """The loader of ``epoch`` (1-based): iterate it once."""
        self.sampler.set_epoch(epoch)
        if self.num_workers == 0:
            return make_loader(self.dataset, batch_sampler=self.sampler, seed=self.seed * 1000 + epoch,
                               pin_memory=self.pin_memory)
        if self._loader is None:
            self._loader = make_loader(self.dataset, batch_sampler=self.sampler, num_workers=self.num_workers,
                                       seed=self.seed, pin_memory=self.pin_memory, persistent_workers=True)
        return self._loader

    def close(self) -> None:
        """Stop the persistent workers (they stop too when this object is collected)."""
        self._loader = None


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: seed numpy and ``random`` from the worker's torch seed (set by the loader)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(dataset: Dataset, *, batch_sampler: Sampler | None = None, batch_size: int = 64,
                num_workers: int = 0, seed: int = 0, pin_memory: bool = False, prefetch_factor: int = 4,
                persistent_workers: bool = False) -> DataLoader:
    """A DataLoader with deterministic worker seeding (``generator`` seeded with ``seed``).

    With ``batch_sampler`` it is a training loader; otherwise it iterates ``dataset`` in order.
    ``pin_memory`` (for a CUDA device): batches in page-locked memory, so that ``normalize_batch``'s
    non-blocking copy overlaps the GPU's work; ``prefetch_factor``: batches each worker prepares ahead;
    ``persistent_workers`` (with ``num_workers > 0``): the workers live as long as the loader (training:
    :class:`TrainingBatches`).
    """
    gen = torch.Generator()
    gen.manual_seed(int(seed))
    common = dict(num_workers=num_workers, worker_init_fn=seed_worker, generator=gen,
                  persistent_workers=bool(persistent_workers and num_workers > 0), pin_memory=pin_memory)
    if num_workers > 0:
        common["prefetch_factor"] = prefetch_factor
    if batch_sampler is not None:
        return DataLoader(dataset, batch_sampler=batch_sampler, **common)
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, **common)
