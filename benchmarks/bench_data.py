"""Training and embedding set-up shared by the throughput and speed-up measurements (worker side): the
profile's data and model, the image store, pre-made batches, the training loader, timed steps."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from bench_measure import (
    MB,
    Clock,
    maxrss_mb,
)


def setup_run(profile: str, family: str, **overrides: Any) -> tuple[Any, Any, Any, str]:
    """(profile, TrainConfig with random weights, training index DataFrame, sampler) as engine._fit sees them."""
    from sbir_utils import engine
    from sbir_utils.config import load_profile
    from sbir_utils.data import sources

    prof = load_profile(profile)
    cfg = dataclasses.replace(getattr(prof, family), weights="random", **overrides)
    sources.prepare_embedded(profile)  # generated when missing or stale; the lookups below only read
    spec = (sources.object_spec(profile, "embedded", protocol="fine") if family == "aafg"
            else sources.scene_spec(profile, "embedded", split="normal"))
    df = engine._sorted_index(spec.csv("train"), spec)  # the engine's own (sorted) row order
    sampler = "pk" if spec.protocol == "category" else "photo_unique"
    return prof, cfg, df, sampler


class Trainer:
    """Model, optimiser and one training step as ``engine._fit`` runs them (loss via ``compute_loss``)."""

    def __init__(self, cfg: Any, device: Any, channels_last: bool = False, compile_model: bool = False):
        import torch

        from sbir_utils import engine
        from sbir_utils.models import build_model

        engine.seed_everything(cfg.seed)
        torch.use_deterministic_algorithms(True, warn_only=True)
        self.cfg, self.device = cfg, device
        self.model = build_model(cfg).to(device)
        self.fmt = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model.train()
        self.forward = torch.compile(self.model) if compile_model else self.model
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.objective = engine._objective(1, cfg)
        self.augment, self.steps = device_augment(cfg), 0

    def step(self, sketch: Any, photo: Any, labels: Any) -> Any:
        """One step as the engine's: uint8 batches normalised on the device (where this version of the library
        hands out uint8), forward, loss, backward, AdamW. Returns the loss, detached and not read: the engine
        reads a step's numbers only after queuing the next step (no per-step wait for the device)."""
        import torch

        from sbir_utils import engine

        d, cl = self.device, self.fmt is torch.channels_last
        if self.augment is not None and sketch.shape[-1] != self.cfg.image_size:  # the base: augment it there
            from sbir_utils.data.batch_augment import step_generator

            self.steps += 1
            sketch, photo = self.augment(sketch.to(d, non_blocking=True), photo.to(d, non_blocking=True),
                                         self.cfg.image_size, step_generator(d, self.cfg.seed, self.steps))
        if sketch.dtype == torch.uint8:
            from sbir_utils.data.transforms import normalize_batch

            sketch, photo = normalize_batch(sketch, d, cl), normalize_batch(photo, d, cl)
        else:
            sketch = sketch.to(d).contiguous(memory_format=self.fmt)
            photo = photo.to(d).contiguous(memory_format=self.fmt)
        labels = labels.to(d)
        with engine.autocast(d, self.cfg.amp):
            out = self.forward(sketch, photo, labels)
            loss, _ = engine.compute_loss(out, labels, self.cfg, self.objective)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.detach()


def device_augment(cfg: Any) -> Any:
    """``BatchAugment()`` where the library has it and ``cfg`` asks for augmentation on the device, else None."""
    if not (cfg.augment and getattr(cfg, "augment_on", "loader") == "device"):
        return None
    from sbir_utils.data.batch_augment import BatchAugment

    return BatchAugment()


def photo_kw(cfg: Any) -> dict[str, Any]:
    """The engine's ``photo_mode`` argument where this version of the library has it."""
    return {"photo_mode": cfg.photo_mode} if hasattr(cfg, "photo_mode") else {}


def store_kw(cls: Any, image_cache: Any) -> dict[str, Any]:
    """``image_cache=...`` for a dataset class of a library version that has the decode-once image store
    (``"default"``: the store in ``SBIR_IMAGE_CACHE_DIR``, which bench.py makes fresh for every worker;
    None: decode every time), else nothing."""
    import inspect

    return {"image_cache": image_cache} if "image_cache" in inspect.signature(cls).parameters else {}


def store_root() -> Path | None:
    """The folder of this process's image store (None: the library has none, or it is off)."""
    try:
        from sbir_utils.paths import image_cache_dir
    except ImportError:
        return None
    return image_cache_dir()


def store_stats(root: Path | None = None) -> dict[str, Any]:
    """Size on disk of the image store under ``root`` (default: this process's): the ``*.u8`` files, their
    slots (images) and how many of them were written (flag bytes set; see ``data.image_store``)."""
    import numpy as np

    root = root or store_root()
    out: dict[str, Any] = {"dir": None if root is None else str(root), "files": 0, "mb": 0.0, "slots": 0, "filled": 0}
    if root is None or not root.is_dir():
        return out
    for f in sorted(root.rglob("*.u8")):
        out["files"] += 1
        out["mb"] += f.stat().st_size / MB
        try:
            n = int(json.loads(f.with_suffix(".json").read_text())["n"])
            out["slots"] += n
            out["filled"] += int(np.count_nonzero(np.fromfile(f, dtype=np.uint8, count=n)))
        except (OSError, ValueError, KeyError):
            pass
    return out


def rss_parts_mb() -> dict[str, float]:
    """Current anonymous / file-backed / shared-memory resident memory (/proc/self/status), in MB: the
    memory-mapped image store's pages count as file-backed RSS (page cache the kernel can reclaim)."""
    out: dict[str, float] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(("RssAnon:", "RssFile:", "RssShmem:")):
                key, val = line.split(":", 1)
                out[key[3:].lower() + "_mb"] = int(val.split()[0]) / 1024
    except (OSError, ValueError):
        pass
    return out


def premade_photos(paths: list[str], cfg: Any) -> Any:
    """The photos decoded once with the evaluation preprocessing, (N, 3, H, W) (not through the image
    store, so that the store measured afterwards starts empty)."""
    import torch

    from sbir_utils.data.loading import ImageDataset

    ds = ImageDataset(paths, "photo", cfg.image_size, **photo_kw(cfg), **store_kw(ImageDataset, None))
    x = torch.stack([ds[i] for i in range(len(paths))])
    if x.dtype == torch.uint8:  # this version of the library hands out uint8: the model's input is float
        from sbir_utils.data.transforms import normalize_batch

        x = normalize_batch(x)
    return x


class Batches:
    """Training batches drawn as ``engine._fit`` draws them: ``loading.TrainingBatches`` over one dataset
    (persistent workers with ``num_workers > 0``, else one seeded loader per epoch). ``image_cache``: the
    dataset's image store (``"default"``: the process's, as the engine uses it; None: decode every time; a
    folder: a store of its own); ``pin_memory``: as the engine on a CUDA device."""

    def __init__(self, df: Any, cfg: Any, sampler: str, num_workers: int, image_cache: Any = "default",
                 pin_memory: bool = False):
        from sbir_utils.data.loading import PairDataset, TrainingBatches, make_batch_sampler

        base = {"base": True} if device_augment(cfg) is not None else {}  # the step augments on the device
        self.dataset = PairDataset(df, cfg.image_size, train=True, augment=cfg.augment, **photo_kw(cfg),
                                   **store_kw(PairDataset, image_cache), **base)
        self.sampler = make_batch_sampler(df, cfg.batch_size, sampler, seed=cfg.seed)
        self.loader = TrainingBatches(self.dataset, self.sampler, num_workers, cfg.seed, pin_memory=pin_memory)
        self.cfg, self.num_workers, self.epoch, self._it = cfg, num_workers, 0, None

    def __len__(self) -> int:
        return len(self.sampler)

    def next(self) -> Any:
        from sbir_utils import engine

        while True:
            if self._it is None:
                self.epoch += 1
                engine.seed_everything(self.cfg.seed + self.epoch)
                self._it = iter(self.loader.epoch(self.epoch))
            try:
                return next(self._it)
            except StopIteration:
                self._it = None


def premade_batch(df: Any, cfg: Any, sampler: str, batch_size: int | None = None) -> tuple[Any, Any, Any]:
    """One real training batch, decoded once (from a separate dataset outside the image store, so the
    measured one and the store stay cold)."""
    if hasattr(cfg, "augment_on"):  # the model's input size: compute only, no augmentation on the device
        cfg = dataclasses.replace(cfg, augment_on="loader")
    b = Batches(df, dataclasses.replace(cfg, batch_size=batch_size or cfg.batch_size), sampler, 0, image_cache=None)
    s, p, y = b.next()
    return s.clone(), p.clone(), y.clone()


def timed_steps(tr: Trainer, n: int, batch: tuple | None, stream: Batches | None, acc: dict) -> None:
    """Run ``n`` steps on ``batch`` (pre-made) or from ``stream`` (data path) and add to ``acc``."""
    import torch

    wait, loss = 0.0, None
    with Clock(tr.device) as c:
        for _ in range(n):
            if stream is not None:
                t = time.perf_counter()
                s, p, y = stream.next()
                wait += time.perf_counter() - t
            else:
                s, p, y = batch
            loss = tr.step(s, p, y)
            acc["pairs"] += int(y.shape[0])
    acc["steps"] += n
    acc["seconds"] += c.seconds
    acc["wait_s"] += wait
    if loss is not None and not bool(torch.isfinite(loss)):  # read once, after the clock stopped
        raise FloatingPointError(f"non-finite loss {float(loss)}")
    acc["cpu_s"] += c.cpu_share * c.seconds


def new_acc() -> dict[str, float]:
    return {"steps": 0, "pairs": 0, "seconds": 0.0, "wait_s": 0.0, "cpu_s": 0.0}


def plan_batch(profile: str, family: str, cap_mb: float, device: Any) -> dict[str, Any]:
    """Peak RSS of one step at batch 4 and 8, extrapolated linearly to the profile's batch size; the
    batch size to run is the profile's if the estimate fits ``cap_mb``, else the largest power of two
    that does (estimates only; the measured peak of the real run is reported separately)."""
    import gc

    _, cfg, df, sampler = setup_run(profile, family)
    rss = []
    for b in (4, 8):  # AAFG's pair loss takes min(3, B - 1) negatives: linear in B from B = 4 on
        c = dataclasses.replace(cfg, batch_size=b, amp=False)
        tr = Trainer(c, device)
        tr.step(*premade_batch(df, c, sampler))
        rss.append(maxrss_mb())
        del tr
        gc.collect()
    per_pair = max((rss[1] - rss[0]) / 4, 1.0)

    def est(b: int) -> float:
        return rss[1] + per_pair * (b - 8)

    run = cfg.batch_size
    if est(run) > cap_mb:
        run = 4
        while run * 2 < cfg.batch_size and est(run * 2) <= 0.8 * cap_mb:
            run *= 2
    return {"probe_rss_mb": rss, "per_pair_mb": per_pair, "est_profile_rss_mb": est(cfg.batch_size),
            "batch_size_run": run, "fits": run == cfg.batch_size}
