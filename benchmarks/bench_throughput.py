"""Training and embedding throughput of one model, data path against pre-made tensors (worker side)."""

from __future__ import annotations

import dataclasses
import os
import resource
from typing import Any

from bench_data import (
    Batches,
    Trainer,
    new_acc,
    photo_kw,
    plan_batch,
    premade_batch,
    premade_photos,
    rss_parts_mb,
    setup_run,
    store_kw,
    store_root,
    store_stats,
    timed_steps,
)
from bench_measure import (
    Clock,
    loadavg,
    maxrss_mb,
    mem_available_mb,
)


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
    data, comp = new_acc(), new_acc()
    while data["steps"] < steps:
        k = min(chunk, steps - data["steps"])
        timed_steps(tr, k, None, stream, data)
        timed_steps(tr, k, fixed, None, comp)
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
        prof, cfg, df, sampler = setup_run(profile, family)
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
        cold = new_acc()
        timed_steps(tr, len(stream), None, stream, cold)
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
    cold, cold_comp, warm, warm_comp = new_acc(), new_acc(), new_acc(), new_acc()
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
    out["warm_item_ms"] = per_item_ms(ds.__getitem__, len(ds))  # store copy + tensor (normalised in older versions)
    out["uint8_items"] = str(ds[0].dtype) == "torch.uint8"  # normalisation happens on the batch, in encode's loop
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
