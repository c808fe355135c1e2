"""Cheap speed-ups (worker side): variants of the training step, embedding and data path, each timed
next to its own baseline, and thread settings."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from bench_data import (
    Batches,
    Trainer,
    new_acc,
    photo_kw,
    premade_batch,
    premade_photos,
    setup_run,
    timed_steps,
)
from bench_measure import (
    Clock,
    loadavg,
    log,
    maxrss_mb,
)
from bench_throughput import encode_tensors


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
        self.prof, self.cfg, self.df, self.sampler = setup_run(spec["profile"], family)
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
            acc = new_acc()
            timed_steps(tr, self.spec["steps"], batch, None, acc)
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
        """``engine.encode`` cold and warm, and by loader workers."""
        n = len(self.paths)
        b = self.encode_seconds(num_workers=0)  # the first call decodes every image into the store
        v = self.encode_seconds(num_workers=0)  # the later ones read it
        self.add("embedding, data path (baseline: engine.encode, empty image store)", "engine.encode, warm store",
                 n / b, n / v, "images/s")
        for nw in self.spec["workers"]:
            b = self.encode_seconds(num_workers=0)
            v = self.encode_seconds(num_workers=nw)
            self.add("embedding, data path, warm store (baseline: engine.encode, num_workers=0)", f"num_workers={nw}",
                     n / b, n / v, "images/s")


def bench_threads(spec: dict[str, Any]) -> dict[str, Any]:
    """Compute-only training step and embedding rate of both models under this process's OpenMP settings
    (the orchestrator runs it once per setting: the wait policy is read when the OpenMP runtime starts)."""
    import torch

    from sbir_utils import engine

    device = engine.resolve_device(spec.get("device"))
    out: dict[str, Any] = {"threads": torch.get_num_threads(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                           "load_start": loadavg()}
    for family in ("aafg", "convnext"):
        prof, cfg, df, sampler = setup_run(spec["profile"], family)
        tr = Trainer(cfg, device)
        batch = premade_batch(df, cfg, sampler)
        with Clock(device) as first:
            tr.step(*batch)
        n = max(1, min(spec["steps"], int(spec["budget_s"] / max(first.seconds, 1e-3))))
        acc = new_acc()
        timed_steps(tr, n, batch, None, acc)
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
