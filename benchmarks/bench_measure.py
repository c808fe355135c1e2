"""Measurements of the benchmark suite; each ``bench_*`` function runs in its own process (see bench.py)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GB = 2**30
MB = 2**20
K = 10  # recall@K and top-K of the retrieval benchmark
TARGETS = {"ratio": 0.95, "exact_100k_ms": 20.0, "ann_1m_ms": 5.0, "ann_recall": 0.95,
           "reproduce_s": 20 * 60.0, "test_s": 15 * 60.0, "rss_gb": 4.0}
CHUNK_ELEMS = 2**26  # exact search: query chunk x gallery <= 64 M scores (256 MB) per chunk
CLUSTERS = 100  # mixture components, like the categories of a photo collection (each spans many IVF cells)
CLUSTER_SPREAD = 1.0  # gallery item = unit cluster centre + this much Gaussian noise (norm), normalised
QUERY_NOISE = 0.3  # query = gallery item + this much Gaussian noise (norm), normalised


# ---- small helpers ---------------------------------------------------------------------------------

def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def maxrss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def mem_available_mb() -> float | None:
    """MemAvailable of /proc/meminfo in MB (None where there is none)."""
    try:
        line = next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemAvailable:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        return None


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Clock:
    """Wall and CPU time of a block; ``cpu_share`` = CPU seconds / wall seconds (at most the thread
    count; lower means the threads waited, e.g. for cores taken by other processes)."""

    def __init__(self, device: Any = None):
        self.device = device

    def __enter__(self) -> Clock:
        self._sync()
        self.t0, self.c0 = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._sync()
        self.seconds = time.perf_counter() - self.t0
        self.cpu_share = (cpu_seconds() - self.c0) / max(self.seconds, 1e-9)

    def _sync(self) -> None:
        if self.device is not None and getattr(self.device, "type", "cpu") == "cuda":
            import torch

            torch.cuda.synchronize()


# ---- training and embedding (worker side) -------------------------------------------------------------

def _setup(profile: str, family: str, **overrides: Any) -> tuple[Any, Any, Any, str]:
    """(profile, TrainConfig with random weights, training index DataFrame, sampler) as engine._fit sees them."""
    from sbir_utils import engine
    from sbir_utils.config import load_profile
    from sbir_utils.data import sources

    prof = load_profile(profile)
    cfg = dataclasses.replace(getattr(prof, family), weights="random", **overrides)
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
        self.objective = engine._objective(1, cfg, cfg.warmup_epochs, cfg.warmup_loss, "hard")

    def step(self, sketch: Any, photo: Any, labels: Any) -> float:
        import torch

        from sbir_utils import engine

        d = self.device
        sketch = sketch.to(d).contiguous(memory_format=self.fmt)
        photo, labels = photo.to(d).contiguous(memory_format=self.fmt), labels.to(d)
        with engine.autocast(d, self.cfg.amp):
            out = self.forward(sketch, photo, labels)
            loss, _ = engine.compute_loss(out, labels, self.cfg, self.objective)
        if not bool(torch.isfinite(loss)):
            raise FloatingPointError(f"non-finite loss {float(loss)}")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return float(loss.detach())  # the engine reads the loss every step (a device sync)


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
    return torch.stack([ds[i] for i in range(len(paths))])


class Batches:
    """Training batches drawn as ``engine._fit`` draws them: one seeded loader per epoch over one dataset.
    ``image_cache``: the dataset's image store (``"default"``: the process's, as the engine uses it; None:
    decode every time; a folder: a store of its own)."""

    def __init__(self, df: Any, cfg: Any, sampler: str, num_workers: int, image_cache: Any = "default"):
        from sbir_utils.data.loading import PairDataset, make_batch_sampler

        self.dataset = PairDataset(df, cfg.image_size, train=True, augment=cfg.augment, **photo_kw(cfg),
                                   **store_kw(PairDataset, image_cache))
        self.sampler = make_batch_sampler(df, cfg.batch_size, sampler, seed=cfg.seed)
        self.cfg, self.num_workers, self.epoch, self._it = cfg, num_workers, 0, None

    def __len__(self) -> int:
        return len(self.sampler)

    def next(self) -> Any:
        from sbir_utils import engine
        from sbir_utils.data.loading import make_loader

        while True:
            if self._it is None:
                self.epoch += 1
                engine.seed_everything(self.cfg.seed + self.epoch)
                self.sampler.set_epoch(self.epoch)
                self._it = iter(make_loader(self.dataset, batch_sampler=self.sampler, num_workers=self.num_workers,
                                            seed=self.cfg.seed * 1000 + self.epoch))
            try:
                return next(self._it)
            except StopIteration:
                self._it = None


def premade_batch(df: Any, cfg: Any, sampler: str, batch_size: int | None = None) -> tuple[Any, Any, Any]:
    """One real training batch, decoded once (from a separate dataset outside the image store, so the
    measured one and the store stay cold)."""
    b = Batches(df, dataclasses.replace(cfg, batch_size=batch_size or cfg.batch_size), sampler, 0, image_cache=None)
    s, p, y = b.next()
    return s.clone(), p.clone(), y.clone()


def _timed_steps(tr: Trainer, n: int, batch: tuple | None, stream: Batches | None, acc: dict) -> None:
    """Run ``n`` steps on ``batch`` (pre-made) or from ``stream`` (data path) and add to ``acc``."""
    wait = 0.0
    with Clock(tr.device) as c:
        for _ in range(n):
            if stream is not None:
                t = time.perf_counter()
                s, p, y = stream.next()
                wait += time.perf_counter() - t
            else:
                s, p, y = batch
            tr.step(s, p, y)
            acc["pairs"] += int(y.shape[0])
    acc["steps"] += n
    acc["seconds"] += c.seconds
    acc["wait_s"] += wait
    acc["cpu_s"] += c.cpu_share * c.seconds


def _acc() -> dict[str, float]:
    return {"steps": 0, "pairs": 0, "seconds": 0.0, "wait_s": 0.0, "cpu_s": 0.0}


def plan_batch(profile: str, family: str, cap_mb: float, device: Any) -> dict[str, Any]:
    """Peak RSS of one step at batch 4 and 8, extrapolated linearly to the profile's batch size; the
    batch size to run is the profile's if the estimate fits ``cap_mb``, else the largest power of two
    that does (estimates only; the measured peak of the real run is reported separately)."""
    import gc

    _, cfg, df, sampler = _setup(profile, family)
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


def _first_step(df: Any, cfg: Any, sampler: str, device: Any, res: dict[str, Any]) -> tuple[Any, Trainer, tuple, float]:
    """The first training step on a pre-made batch: ``(cfg, trainer, batch, seconds)``. bf16 autocast failing on
    CPU (then fp32) or memory running out (then half the batch) are results too, recorded in ``res``."""
    while True:
        fixed = premade_batch(df, cfg, sampler)
        tr = Trainer(cfg, device)
        try:
            with Clock(device) as first:
                tr.step(*fixed)
            return cfg, tr, fixed, first.seconds
        except RuntimeError as exc:
            msg = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            del tr
            if "allocate" in msg and cfg.batch_size > 2:
                res.setdefault("oom_batches", []).append(cfg.batch_size)
                cfg = dataclasses.replace(cfg, batch_size=cfg.batch_size // 2)
            elif cfg.amp and "allocate" not in msg:
                res["amp_error"], res["amp"] = msg, False
                cfg = dataclasses.replace(cfg, amp=False)
            else:
                raise


def _interleaved(tr: Trainer, steps: int, chunk: int, stream: Batches, fixed: tuple) -> tuple[dict, dict]:
    """``steps`` timed data-path steps and as many pre-made ones, in alternating chunks, so that load from
    other processes hits both alike: ``(data, compute)`` accumulators."""
    data, comp = _acc(), _acc()
    while data["steps"] < steps:
        k = min(chunk, steps - data["steps"])
        _timed_steps(tr, k, None, stream, data)
        _timed_steps(tr, k, fixed, None, comp)
    return data, comp


def bench_model(spec: dict[str, Any]) -> dict[str, Any]:
    """Training throughput (data path vs pre-made tensors), embedding throughput, peak RSS of one model."""
    import torch

    from sbir_utils import engine

    profile, family = spec["profile"], spec["family"]
    device = engine.resolve_device(spec.get("device"))
    res: dict[str, Any] = {"profile": profile, "family": family, "device": str(device),
                           "threads": torch.get_num_threads(), "load_start": loadavg()}
    with Clock() as setup:
        prof, cfg, df, sampler = _setup(profile, family)
    res["data_setup_s"] = setup.seconds  # includes generating the embedded set if it was missing
    if spec.get("plan_memory"):
        plan = plan_batch(profile, family, spec["cap_mb"], device)
        res["memory_plan"] = plan
        cfg = dataclasses.replace(cfg, batch_size=plan["batch_size_run"])
    workers = min(cfg.num_workers, os.cpu_count() or 1)
    res.update(backbone=cfg.backbone, image_size=cfg.image_size, embed_dim=cfg.embed_dim,
               batch_size=cfg.batch_size, batch_size_profile=getattr(prof, family).batch_size,
               num_workers=workers, num_workers_profile=cfg.num_workers, amp=cfg.amp, rows=len(df), sampler=sampler)
    cfg, tr, fixed, first_s = _first_step(df, cfg, sampler, device, res)
    res["batch_size"] = cfg.batch_size
    with Clock(device) as w:
        for _ in range(max(spec["warmup"] - 1, 0)):
            tr.step(*fixed)
    step_s = w.seconds / (spec["warmup"] - 1) if spec["warmup"] > 1 else first_s
    steps = spec["steps"]
    if step_s and spec.get("budget_s"):  # slow profiles: as many timed steps as the budget allows
        steps = max(1, min(steps, int(spec["budget_s"] / (2 * step_s))))
    stream = Batches(df, cfg, sampler, workers)
    res["steps_per_epoch"] = len(stream)
    if spec.get("cold_epoch"):  # epoch 1 through a fresh dataset and an empty image store: every image decoded once
        cold = _acc()
        _timed_steps(tr, len(stream), None, stream, cold)
        res["cold"] = cold
    res["mem_available_mb_before_train"] = mem_available_mb()
    res["data"], res["compute"] = _interleaved(tr, steps, spec["chunk"], stream, fixed)
    res["train_epochs_seen"] = stream.epoch
    if workers > 0:  # the same steps with the loader in the training process, for comparison
        # The loader workers wrote the images of the steps above into the shared store, and this loader
        # draws the same batches: a store of its own, empty, keeps the comparison cold against cold.
        root = store_root()
        stream0 = Batches(df, cfg, sampler, 0, image_cache=None if root is None else root / "workers0")
        data0, comp0 = _interleaved(tr, steps, spec["chunk"], stream0, fixed)
        res["workers0"] = {"data": data0, "compute": comp0}
    res["train_peak_rss_mb"] = maxrss_mb()
    # loader workers (forked from this process) are children; their peak RSS and the machine's free memory
    res["loader_children_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    res["mem_available_mb_after_train"] = mem_available_mb()
    res["load_after_train"] = loadavg()
    res["rss_after_train"] = rss_parts_mb()  # the mapped store's pages are in ru_maxrss, as file-backed RSS
    res["image_store_after_train"] = store_stats()
    res["embed"] = bench_embed(spec, prof, cfg, df, tr.model, device, workers)
    res["image_store"] = store_stats()
    res["image_store_mb"] = res["image_store"]["mb"] if res["image_store"]["dir"] else None
    res["peak_rss_mb"] = maxrss_mb()
    res["load_end"] = loadavg()
    return res


def bench_embed(spec: dict[str, Any], prof: Any, cfg: Any, df: Any, model: Any, device: Any,
                workers: int) -> dict[str, Any]:
    """``engine.encode`` over the photos (data path) vs the same loop on pre-made tensors, interleaved pass
    by pass. Pass 1 is *cold*: the image store is empty and every image is decoded once and written to it;
    the later passes are *warm* (``data_img_s`` / ``ratio``): the store is read, as by the validation pass
    of every epoch and every evaluation. Then, without the model, the per-image cost of ``ImageDataset[i]``
    on the filled store, of the store copy alone and of decoding without the store."""
    from sbir_utils import engine
    from sbir_utils.data.loading import ImageDataset

    paths = list(dict.fromkeys(df["image_file"].astype(str)))[: spec["embed_images"]]
    bs = prof.evaluation.batch_size
    pre = list(premade_photos(paths, cfg).split(bs))
    encode_tensors(model, pre[:1], device, cfg.amp)  # warm-up
    passes = max(2, int(spec["embed_passes"]))  # a cold pass and at least one warm one
    cold, cold_comp, warm, warm_comp = _acc(), _acc(), _acc(), _acc()
    for k in range(passes):
        d_acc, c_acc = (cold, cold_comp) if k == 0 else (warm, warm_comp)
        with Clock(device) as c:
            engine.encode(model, paths, "photo", cfg.image_size, bs, device, amp=cfg.amp, num_workers=workers,
                          **photo_kw(cfg))
        d_acc["seconds"] += c.seconds
        d_acc["pairs"] += len(paths)
        with Clock(device) as c:
            encode_tensors(model, pre, device, cfg.amp)
        c_acc["seconds"] += c.seconds
        c_acc["pairs"] += len(paths)
    out: dict[str, Any] = {
        "images": len(paths), "passes": passes, "warm_passes": passes - 1, "batch_size": bs,
        "num_workers": workers,
        "cold_img_s": cold["pairs"] / cold["seconds"], "cold_compute_img_s": cold_comp["pairs"] / cold_comp["seconds"],
        "data_img_s": warm["pairs"] / warm["seconds"], "compute_img_s": warm_comp["pairs"] / warm_comp["seconds"]}
    out["cold_ratio"] = out["cold_img_s"] / out["cold_compute_img_s"]
    out["ratio"] = out["data_img_s"] / out["compute_img_s"]

    def per_item_ms(get: Any, n: int) -> float:
        with Clock() as c:
            for i in range(n):
                get(i)
        return 1000 * c.seconds / max(n, 1)

    ds = ImageDataset(paths, "photo", cfg.image_size, **photo_kw(cfg))  # the store engine.encode filled
    out["warm_item_ms"] = per_item_ms(ds.__getitem__, len(ds))  # store copy + PIL image + to-tensor/normalise
    store = getattr(getattr(ds, "_images", None), "store", None)
    out["store_read_ms"] = per_item_ms(store.array, len(store)) if store is not None else None
    raw = ImageDataset(paths, "photo", cfg.image_size, **photo_kw(cfg), **store_kw(ImageDataset, None))
    out["decode_item_ms"] = per_item_ms(raw.__getitem__, len(raw))  # decode + pad + resize + to-tensor
    return out


def encode_tensors(model: Any, batches: list, device: Any, amp: bool, mode: str = "no_grad",
                   channels_last: bool = False, fn: Any = None) -> Any:
    """``engine.encode``'s inner loop on pre-made tensors (``mode``: no_grad like encode, or inference_mode)."""
    import torch

    from sbir_utils import engine

    fn = fn or model.embed_photo
    ctx = torch.inference_mode if mode == "inference_mode" else torch.no_grad
    was = model.training
    model.eval()
    out = []
    with ctx():
        for x in batches:
            x = x.to(device)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with engine.autocast(device, amp):
                out.append(fn(x).float().cpu())
    model.train(was)
    return torch.cat(out)


# ---- cheap speed-ups (worker side) --------------------------------------------------------------------

def bench_tweaks(spec: dict[str, Any]) -> dict[str, Any]:
    """Each variant next to a baseline measured just before it (same process, adjacent in time)."""
    import torch

    from sbir_utils import engine

    device = engine.resolve_device(spec.get("device"))
    threads = torch.get_num_threads()
    rows: list[dict[str, Any]] = []
    for family in ("aafg", "convnext"):
        rows += _tweaks_family(family, spec, device, threads)
    return {"profile": spec["profile"], "threads": threads, "rows": rows, "peak_rss_mb": maxrss_mb()}


def _tweaks_family(family: str, spec: dict[str, Any], device: Any, threads: int) -> list[dict[str, Any]]:
    """One model's speed-up trials: training-step and embedding variants on pre-made tensors, then the data
    path alone (loader, ``engine.encode``)."""
    t = _Tweaks(family, spec, device, threads)
    t.train_variants()
    t.embed_variants()
    t.loader_variants()
    t.encode_variants()
    return t.rows


def _error_text(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"


class _Tweaks:
    """The trials of one model family; each variant is timed right after its own baseline."""

    def __init__(self, family: str, spec: dict[str, Any], device: Any, threads: int):
        self.family, self.spec, self.device, self.threads = family, spec, device, threads
        self.rows: list[dict[str, Any]] = []
        self.prof, self.cfg, self.df, self.sampler = _setup(spec["profile"], family)
        self.base_model = Trainer(self.cfg, device).model
        self.paths = list(dict.fromkeys(self.df["image_file"].astype(str)))[: spec["embed_images"]]
        self.imgs = premade_photos(self.paths, self.cfg)

    def add(self, kind: str, variant: str, base: float, value: float, unit: str, first_s: float | None = None) -> None:
        self.rows.append({"model": self.family, "kind": kind, "variant": variant, "baseline": base, "value": value,
                          "speedup": value / base, "unit": unit, "first_call_s": first_s, "load": loadavg()[0]})
        log(f"tweaks {self.family} {kind} {variant}: {value:.1f} {unit} (baseline {base:.1f}, x{value / base:.2f})")

    def failed(self, kind: str, variant: str, base: float, unit: str, exc: Exception) -> None:
        self.rows.append({"model": self.family, "kind": kind, "variant": variant, "baseline": base, "value": None,
                          "speedup": None, "unit": unit, "error": _error_text(exc)})

    def train_rate(self, c: Any, channels_last: bool = False, compile_model: bool = False, n_threads: int | None = None,
                   bs: int | None = None) -> tuple[float, float]:
        """Pairs/s of timed training steps on one pre-made batch, and the first step's seconds."""
        import torch

        torch.set_num_threads(self.threads if n_threads is None else n_threads)
        try:
            c = dataclasses.replace(c, batch_size=bs or c.batch_size)
            tr = Trainer(c, self.device, channels_last, compile_model)
            batch = premade_batch(self.df, c, self.sampler)
            with Clock(self.device) as first:
                tr.step(*batch)
            for _ in range(self.spec["warmup"] - 1):
                tr.step(*batch)
            acc = _acc()
            _timed_steps(tr, self.spec["steps"], batch, None, acc)
            return acc["pairs"] / acc["seconds"], first.seconds
        finally:
            torch.set_num_threads(self.threads)

    def embed_rate(self, bs: int | None = None, mode: str = "no_grad", channels_last: bool = False, amp: bool = False,
                   n_threads: int | None = None, compiled: bool = False) -> tuple[float, float]:
        """Images/s of embedding the pre-made photos (``bs``: the evaluation batch size by default), and the
        first batch's seconds."""
        import torch

        torch.set_num_threads(self.threads if n_threads is None else n_threads)
        try:
            model = self.base_model
            if channels_last:
                model = Trainer(self.cfg, self.device, channels_last=True).model
            fn = torch.compile(model.embed_photo) if compiled else None
            batches = list(self.imgs.split(self.prof.evaluation.batch_size if bs is None else bs))
            with Clock(self.device) as first:
                encode_tensors(model, batches[:1], self.device, amp, mode, channels_last, fn)
            encode_tensors(model, batches[:1], self.device, amp, mode, channels_last, fn)
            with Clock(self.device) as c:
                for _ in range(self.spec["embed_passes"]):
                    encode_tensors(model, batches, self.device, amp, mode, channels_last, fn)
            return len(self.paths) * self.spec["embed_passes"] / c.seconds, first.seconds
        finally:
            torch.set_num_threads(self.threads)

    def train_variants(self) -> None:
        cfg, bsz, kind = self.cfg, self.cfg.batch_size, "train step (pre-made tensors)"
        variants: list[tuple[str, dict[str, Any]]] = [
            ("channels_last", {"channels_last": True}),
            ("bf16 autocast", {"amp": True}),
            (f"batch {max(2, bsz // 2)} (profile {bsz})", {"bs": max(2, bsz // 2)}),
            (f"batch {bsz * 2} (profile {bsz})", {"bs": bsz * 2}),
        ]
        if self.spec.get("few"):  # --quick
            variants = [variants[0], variants[3]]
        if self.family in self.spec["compile"]:
            variants.append(("torch.compile (inductor)", {"compile_model": True}))
        for name, kw in variants:
            c = dataclasses.replace(cfg, amp=bool(kw.pop("amp", False)))
            base, _ = self.train_rate(cfg)
            try:
                value, first = self.train_rate(c, **kw)
                self.add(kind, name, base, value, "pairs/s", first)
            except Exception as exc:  # noqa: BLE001 - a variant that fails is a result too
                self.failed(kind, name, base, "pairs/s", exc)

    def embed_variants(self) -> None:
        ebs, kind = self.prof.evaluation.batch_size, "embedding (pre-made tensors)"
        variants: list[tuple[str, dict[str, Any]]] = [
            ("inference_mode (encode uses no_grad)", {"mode": "inference_mode"}),
            ("channels_last", {"channels_last": True}),
            ("bf16 autocast", {"amp": True}),
            (f"batch {ebs // 2} (eval {ebs})", {"bs": ebs // 2}),
            (f"batch {ebs * 2} (eval {ebs})", {"bs": ebs * 2}),
        ]
        if self.spec.get("few"):
            variants = [variants[0], variants[4]]
        if self.family in self.spec["compile"]:
            variants.append(("torch.compile (inductor)", {"compiled": True}))
        for name, kw in variants:
            base, _ = self.embed_rate()
            try:
                value, first = self.embed_rate(**kw)
                self.add(kind, name, base, value, "images/s", first)
            except Exception as exc:  # noqa: BLE001
                self.failed(kind, name, base, "images/s", exc)

    def loader_rate(self, nw: int) -> float:
        """Pairs/s of one epoch 1 of a new loader (the same seeded batches every call)."""
        stream = Batches(self.df, self.cfg, self.sampler, nw)
        acc = 0
        with Clock() as c:
            for _ in range(len(stream)):
                acc += int(stream.next()[2].shape[0])
        return acc / c.seconds

    def loader_variants(self) -> None:
        """The data path alone (no model): how fast the loader supplies pairs, cold and warm store, by workers."""
        cold0 = self.loader_rate(0)  # fills this process's (fresh) image store with the epoch's images
        self.add("loader only, no model (baseline: workers=0, empty image store)", "workers=0, warm store", cold0,
                 self.loader_rate(0), "pairs/s")
        for nw in self.spec["workers"]:  # workers read the store the main process filled (one file, shared)
            self.add("loader only, no model, warm store (baseline: workers=0)", f"workers={nw}", self.loader_rate(0),
                     self.loader_rate(nw), "pairs/s")

    def encode_seconds(self, **kw: Any) -> float:
        """Seconds of one ``engine.encode`` of the photos (``kw``: e.g. ``num_workers``)."""
        from sbir_utils import engine

        cfg = self.cfg
        with Clock(self.device) as c:
            engine.encode(self.base_model, self.paths, "photo", cfg.image_size, self.prof.evaluation.batch_size,
                          self.device, **kw, **photo_kw(cfg))
        return c.seconds

    def encode_variants(self) -> None:
        """``engine.encode`` cold and warm, by loader workers, and against ``retrieval.embed``."""
        from sbir_utils.data.loading import ImageDataset, make_loader
        from sbir_utils.retrieval import embed

        n, cfg, ebs = len(self.paths), self.cfg, self.prof.evaluation.batch_size
        b = self.encode_seconds(num_workers=0)  # the first call decodes every image into the store
        v = self.encode_seconds(num_workers=0)  # the later ones read it
        self.add("embedding, data path (baseline: engine.encode, empty image store)", "engine.encode, warm store",
                 n / b, n / v, "images/s")
        for nw in self.spec["workers"]:
            b = self.encode_seconds(num_workers=0)
            v = self.encode_seconds(num_workers=nw)
            self.add("embedding, data path, warm store (baseline: engine.encode, num_workers=0)", f"num_workers={nw}",
                     n / b, n / v, "images/s")
        b = self.encode_seconds()
        with Clock(self.device) as c:
            embed(self.base_model.eval().embed_photo,
                  make_loader(ImageDataset(self.paths, "photo", cfg.image_size, **photo_kw(cfg)), batch_size=ebs),
                  self.device)
        self.add("embedding, data path, warm store (baseline: engine.encode)", "retrieval.embed (inference_mode)",
                 n / b, n / c.seconds, "images/s")


def bench_threads(spec: dict[str, Any]) -> dict[str, Any]:
    """Compute-only training step and embedding rate of both models under this process's OpenMP settings
    (the orchestrator runs it once per setting: the wait policy is read when the OpenMP runtime starts)."""
    import torch

    from sbir_utils import engine

    device = engine.resolve_device(spec.get("device"))
    out: dict[str, Any] = {"threads": torch.get_num_threads(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                           "load_start": loadavg()}
    for family in ("aafg", "convnext"):
        prof, cfg, df, sampler = _setup(spec["profile"], family)
        tr = Trainer(cfg, device)
        batch = premade_batch(df, cfg, sampler)
        with Clock(device) as first:
            tr.step(*batch)
        n = max(1, min(spec["steps"], int(spec["budget_s"] / max(first.seconds, 1e-3))))
        acc = _acc()
        _timed_steps(tr, n, batch, None, acc)
        paths = list(dict.fromkeys(df["image_file"].astype(str)))[: spec["embed_images"]]
        bs = prof.evaluation.batch_size
        imgs = premade_photos(paths, cfg)
        batches = list(imgs.split(bs))
        encode_tensors(tr.model, batches[:1], device, False)
        with Clock(device) as c:
            encode_tensors(tr.model, batches, device, False)
        out[family] = {"train_pairs_s": acc["pairs"] / acc["seconds"], "train_steps": n,
                       "cpu_share": acc["cpu_s"] / acc["seconds"], "embed_img_s": len(paths) / c.seconds}
        log(f"threads {out['threads']} policy {out['omp_wait_policy']} {family}: {out[family]}")
    out["load_end"] = loadavg()
    return out


# ---- retrieval (worker side) --------------------------------------------------------------------------

def clustered(n: int, d: int, n_queries: int, seed: int) -> tuple[Any, Any]:
    """``n`` unit vectors from a Gaussian mixture of ``CLUSTERS`` clusters, and noisy copies of random
    gallery items as queries (all float32, unit rows); generated in blocks to bound memory."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    k = min(CLUSTERS, n)
    centres = F.normalize(torch.randn(k, d, generator=g), dim=1)
    out = torch.empty(n, d)
    for s in range(0, n, 100_000):
        m = min(n, s + 100_000) - s
        x = centres[torch.randint(0, k, (m,), generator=g)]
        x += CLUSTER_SPREAD / math.sqrt(d) * torch.randn(m, d, generator=g)
        out[s:s + m] = F.normalize(x, dim=1)
    qi = torch.randint(0, n, (n_queries,), generator=g)
    q = F.normalize(out[qi] + QUERY_NOISE / math.sqrt(d) * torch.randn(n_queries, d, generator=g), dim=1)
    return out, q


def recall_at_k(found: Any, truth: Any) -> float:
    """Mean over queries of |found top-K ∩ true top-K| / K."""
    import numpy as np

    f, t = np.asarray(found), np.asarray(truth)
    return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / t.shape[1] for a, b in zip(f, t)]))


def single_ms(search: Any, q: Any, max_n: int, budget_s: float) -> tuple[float, int]:
    """Median ms of one-query searches (after one warm-up), at most ``max_n`` or ``budget_s`` seconds."""
    import statistics

    search(q[:1])
    times: list[float] = []
    t_start = time.perf_counter()
    for i in range(min(max_n, q.shape[0])):
        t = time.perf_counter()
        search(q[i:i + 1])
        times.append(time.perf_counter() - t)
        if time.perf_counter() - t_start > budget_s and len(times) >= 3:
            break
    return 1000 * statistics.median(times), len(times)


class RetrievalBench:
    """Exact, exact-raw and faiss flat / IVF / HNSW at one gallery size after another."""

    def __init__(self, spec: dict[str, Any]):
        import torch

        try:
            import faiss
        except ImportError:
            faiss = None
        self.faiss, self.spec = faiss, spec
        self.threads = torch.get_num_threads()
        if faiss is not None:
            faiss.omp_set_num_threads(self.threads)
        self.d, self.nq = spec["dim"], spec["queries"]
        self.rows: list[dict[str, Any]] = []
        self.sweep: list[dict[str, Any]] = []
        self.hnsw_last: tuple[int, float] | None = None

    def row(self, method: str, n: int, **kw: Any) -> None:
        r = {"method": method, "n": n, "dim": self.d, "build_s": None, "memory_bytes": None, "batched_ms": None,
             "single_ms": None, "single_n": None, "recall": None, "setting": "", "note": "", "load": loadavg()[0]}
        r.update(kw)
        self.rows.append(r)
        log(f"retrieval n={n} {method}: batched {fmt(r['batched_ms'], 3)} ms/q, one query {fmt(r['single_ms'], 2)} ms, "
            f"recall {fmt(r['recall'], 3)}, build {fmt(r['build_s'])} s {r['note']}")

    def single(self, search: Any, q: Any) -> tuple[float, int]:
        return single_ms(search, q, self.spec["single_max"], self.spec["single_budget_s"])

    def tune(self, kind: str, n: int, index: Any, values: list[int], q: Any, truth: Any) -> tuple[int, float, float]:
        """Smallest nprobe / ef_search reaching the recall target (else the best): (value, recall, batched ms)."""

        def set_knob(v: int) -> None:
            if kind == "ivf":
                index.index.nprobe = v
            else:
                index.index.hnsw.efSearch = v

        chosen: tuple[int, float, float] | None = None
        for v in values:
            set_knob(v)
            with Clock() as c:
                _, idx = index.search(q, K)
            rec, ms = recall_at_k(idx, truth), 1000 * c.seconds / self.nq
            self.sweep.append({"method": kind, "n": n, "knob": "nprobe" if kind == "ivf" else "ef_search",
                               "value": v, "recall": rec, "batched_ms": ms})
            if chosen is None or (chosen[1] < TARGETS["ann_recall"] and rec > chosen[1]):
                chosen = (v, rec, ms)
            if rec >= TARGETS["ann_recall"]:
                break
        assert chosen is not None
        set_knob(chosen[0])
        return chosen

    def size(self, n: int) -> None:
        import torch

        from sbir_utils.retrieval import build_index

        gal, q = clustered(n, self.d, self.nq, self.spec["seed"])
        chunk = max(1, min(1024, CHUNK_ELEMS // n))
        with Clock() as b:
            exact = build_index(gal, "exact", chunk_size=chunk)
        with Clock() as c:
            _, truth = exact.search(q, K)
        s_ms, s_n = self.single(lambda x: exact.search(x, K), q)
        # exact vs itself: its one-query results against its batched results (chunking must not matter)
        ones = torch.cat([exact.search(q[i:i + 1], K)[1] for i in range(min(s_n, self.nq))])
        self.row("exact", n, build_s=b.seconds, memory_bytes=exact.gallery.numel() * 4,
                 batched_ms=1000 * c.seconds / self.nq, single_ms=s_ms, single_n=s_n,
                 recall=recall_at_k(ones, truth[: len(ones)]), setting=f"retrieval.topk, chunk_size={chunk}",
                 note=f"+{chunk * n * 5 / MB:.0f} MB transient per query chunk (scores + tie mask)")
        gn = exact.gallery

        def raw(x: Any) -> Any:
            return torch.topk(x @ gn.T, K, dim=1)

        with Clock() as c:
            raw_idx = torch.cat([raw(q[s:s + chunk]).indices for s in range(0, self.nq, chunk)])
        s_ms, s_n = self.single(raw, q)
        self.row("exact-raw", n, build_s=0.0, memory_bytes=gn.numel() * 4, batched_ms=1000 * c.seconds / self.nq,
                 single_ms=s_ms, single_n=s_n, recall=recall_at_k(raw_idx, truth),
                 setting="q @ g.T + torch.topk, lower bound", note="no per-call checks, normalisation or tie order")
        if self.faiss is None:
            return
        for kind in ("flat", "ivf", "hnsw"):
            self.approximate(kind, n, gal, q, truth)

    def approximate(self, kind: str, n: int, gal: Any, q: Any, truth: Any) -> None:
        from sbir_utils.retrieval import build_index

        params: dict[str, Any] = {}
        if kind == "ivf":
            params["nlist"] = max(1, min(n // 39, round(math.sqrt(n))))
        if kind == "hnsw" and self.hnsw_last is not None:
            n0, t0 = self.hnsw_last
            est = t0 * n / n0 * math.log(n) / math.log(n0)
            if est > self.spec["hnsw_max_build_s"]:
                self.row("hnsw", n, note=f"skipped: build estimated at {est:.0f} s from {t0:.0f} s at n={n0:,} "
                                         f"(n log n), over the {self.spec['hnsw_max_build_s']:.0f} s cap")
                return
        with Clock() as b:
            index = build_index(gal, kind, **params)
        if kind == "hnsw":
            self.hnsw_last = (n, b.seconds)
        if kind == "flat":
            with Clock() as c:
                _, idx = index.search(q, K)
            rec, batched, setting = recall_at_k(idx, truth), 1000 * c.seconds / self.nq, "faiss.IndexFlatIP"
        elif kind == "ivf":
            nl = params["nlist"]
            probes = [p for p in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512) if p <= nl] or [1]
            v, rec, batched = self.tune("ivf", n, index, probes, q, truth)
            setting = f"IVFFlat nlist={nl}, nprobe={v}"
        else:
            v, rec, batched = self.tune("hnsw", n, index, [16, 32, 64, 128, 256, 512], q, truth)
            setting = f"HNSWFlat M=32, ef_construction=200, ef_search={v}"
        s_ms, s_n = self.single(lambda x: index.search(x, K), q)
        mem = len(self.faiss.serialize_index(index.index))
        self.row(kind, n, build_s=b.seconds, memory_bytes=mem, batched_ms=batched, single_ms=s_ms, single_n=s_n,
                 recall=rec, setting=setting)


def bench_retrieval(spec: dict[str, Any]) -> dict[str, Any]:
    rb = RetrievalBench(spec)
    for n in spec["sizes"]:
        rb.size(n)
    return {"rows": rb.rows, "sweep": rb.sweep, "dim": rb.d, "queries": rb.nq, "threads": rb.threads,
            "peak_rss_mb": maxrss_mb(), "faiss": getattr(rb.faiss, "__version__", None)}


WORKERS = {"model": bench_model, "tweaks": bench_tweaks, "threads": bench_threads, "retrieval": bench_retrieval}


def worker_main(kind: str, spec_json: str, result: str) -> int:
    import warnings

    warnings.filterwarnings("ignore")
    try:
        out = WORKERS[kind](json.loads(spec_json))
    except BaseException as exc:  # noqa: BLE001 - reported to the orchestrator, which carries on
        out = {"error": f"{type(exc).__name__}: {str(exc)[:500]}", "traceback": traceback.format_exc()[-3000:],
               "peak_rss_mb": maxrss_mb()}
    Path(result).write_text(json.dumps(out, default=float))
    return 0




def fmt(x: Any, nd: int = 1) -> str:
    """A number for the report: no decimals from 100, ``nd`` from 1, two below 1, 2-3 significant below 0.1."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, float):
        if abs(x) >= 100:
            return f"{x:,.0f}"
        if abs(x) >= 1 or x == 0:
            return f"{x:.{nd}f}"
        return f"{x:.{max(nd, 2)}f}" if abs(x) >= 0.1 else f"{x:.{max(nd - 1, 2)}g}"
    return str(x)
