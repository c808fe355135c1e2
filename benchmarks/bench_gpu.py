#!/usr/bin/env python
"""GPU section of the benchmarks (issue 20): the seeds' full setting on a GPU, and the race against the
ConvNeXt seed's own training loop. One command, a few minutes on a GPU machine; it writes
``benchmarks/results/gpu.json`` and the GPU section of ``BENCHMARKS.md`` (nothing else in that file).

    python benchmarks/bench_gpu.py [--seed_repo build/seed-repo]    # on a GPU machine (make bench-gpu)
    python benchmarks/bench_gpu.py --quick --device cpu             # tiny smoke run, ~1 min on 2 cores
    python benchmarks/bench_gpu.py --render                         # only re-render the section from gpu.json

Per design (AAFG with ResNet-50, ConvNeXt-InfoNCE with ConvNeXt-Small; configs/full.yaml: 224 px, bf16
autocast, its batch sizes; random initial weights, since timing does not depend on them):

1. *compute only*: the engine's training step (``bench_data.Trainer``: uint8 batch normalised on the device,
   forward, loss, backward, AdamW; channels_last on CUDA) on one pre-made batch already on the device,
   ``--steps`` timed steps after warm-up; like the engine, each step reads the previous step's loss.
2. *data path*: the same step fed by the engine's loader (``PairDataset`` + ``make_batch_sampler`` +
   ``TrainingBatches``, ``--num_workers`` persistent workers, pinned memory on CUDA): epoch 1
   *cold* (an empty image store: every image decoded and stored) and epoch 2 *warm*, each a whole epoch
   timed from the loader's start to the device finishing the last step; ratio = pairs/s / compute only.
3. *gallery embedding*: ``engine.encode`` over the training photos, a cold pass (empty store) and warm
   passes, against the same loop on uint8 photos already on the device.
4. *the race*: ``sbir train --model convnext_infonce --backbone convnext_small --amp`` (2 epochs, its own
   pairs/s from metrics.csv) against the seed's train.py on the same folder (``bench_gpu_race``).

Data: unless ``--data_root`` names an FS-COCO-layout folder or an index folder, a synthetic FS-COCO layout
is generated in the work folder (``--pairs`` pairs over 100 users; photos 640x480 JPEG, sketches 512x512 PNG
under FS-COCO's .jpg names; random but compressible content, see ``bench_gpu_data``), with several processes.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import itertools
import json
import math
import os
import platform
import re
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_gpu_data import data_spec, generate
from bench_gpu_race import RACE_TARGET, race
from bench_measure import ROOT, Clock, log

RESULTS = ROOT / "benchmarks" / "results"
TARGETS = {"data_ratio": 0.9, "embed_ratio": 0.9, "race": RACE_TARGET}
DESIGNS = {"aafg": ("resnet50", "resnet18"), "convnext": ("convnext_small", "convnext_atto")}  # (full, --quick)
SECTION = "## 6. GPU"


# ---- one design: compute only, data path, embedding ---------------------------------------------------

def run_steps(tr: Any, batches: Any, n: int | None, device: Any) -> dict[str, Any]:
    """``n`` training steps (None: until ``batches`` ends) timed from the first ``next()`` to the device
    finishing the last step. Like the engine, a step's loss is read once the next step is queued."""
    acc: dict[str, Any] = {"steps": 0, "pairs": 0, "wait_s": 0.0, "first_batch_s": None}
    pending = None
    with Clock(device) as c:
        it = iter(batches)
        while n is None or acc["steps"] < n:
            t = time.perf_counter()
            try:
                s, p, y = next(it)
            except StopIteration:
                break
            dt = time.perf_counter() - t
            acc["wait_s"] += dt
            acc["first_batch_s"] = dt if acc["first_batch_s"] is None else acc["first_batch_s"]
            loss = tr.step(s, p, y)
            if pending is not None and not math.isfinite(float(pending)):
                raise FloatingPointError(f"non-finite loss at step {acc['steps']}")
            pending = loss
            acc["steps"] += 1
            acc["pairs"] += int(y.shape[0])
    acc["seconds"] = c.seconds
    acc["pairs_s"] = acc["pairs"] / max(c.seconds, 1e-9)
    acc["wait_frac"] = acc["wait_s"] / max(c.seconds, 1e-9)
    return acc


def epoch_pass(tr: Any, stream: Any, epoch: int, device: Any) -> dict[str, Any]:
    """One whole training epoch as ``engine._train_epoch`` draws it (``stream.loader.epoch``: persistent
    workers, pinned memory on CUDA), timed with :func:`run_steps`."""
    from sbir_utils import engine

    engine.seed_everything(stream.cfg.seed + epoch)
    return run_steps(tr, stream.loader.epoch(epoch), None, device)


def design_config(family: str, settings: dict[str, Any]) -> Any:
    """configs/full.yaml's settings of ``family`` with random weights (``--quick``: a small backbone at 64 px)."""
    from sbir_utils.config import load_profile

    cfg = getattr(load_profile("full"), family)
    over: dict[str, Any] = {"weights": "random", "num_workers": settings["num_workers"], "amp": settings["amp"]}
    if settings["quick"]:
        over.update(backbone=DESIGNS[family][1], image_size=settings["image_size"], batch_size=settings["batch"])
    return dataclasses.replace(cfg, **over)


def bench_design(family: str, spec: Any, device: Any, work: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Compute-only steps, a cold and a warm data-path epoch and the embedding passes of one design."""
    import torch
    from bench_data import Batches, Trainer, premade_batch

    from sbir_utils import engine
    from sbir_utils.engine.device import prefers_channels_last

    cfg = design_config(family, settings)
    df = engine._sorted_index(spec.csv("train"), spec)
    sampler = "pk" if spec.protocol == "category" else "photo_unique"
    cl = prefers_channels_last(device)
    res: dict[str, Any] = {"family": family, "model": cfg.model, "backbone": cfg.backbone, "image_size": cfg.image_size,
                           "batch_size": cfg.batch_size, "amp": cfg.amp, "channels_last": cl,
                           "num_workers": cfg.num_workers, "train_rows": len(df), "sampler": sampler,
                           "augment_on": getattr(cfg, "augment_on", "loader") if cfg.augment else "none"}
    tr = Trainer(cfg, device, channels_last=cl)
    fixed = tuple(t.to(device) for t in premade_batch(df, cfg, sampler))
    with Clock(device) as w:
        run_steps(tr, itertools.repeat(fixed), settings["warmup"], device)
    res["warmup_s"] = w.seconds
    res["compute"] = run_steps(tr, itertools.repeat(fixed), settings["steps"], device)
    stream = Batches(df, cfg, sampler, cfg.num_workers, image_cache=work / f"store-train-{family}",
                     pin_memory=device.type == "cuda")
    res["steps_per_epoch"] = len(stream)
    res["cold"] = epoch_pass(tr, stream, 1, device)
    res["warm"] = epoch_pass(tr, stream, 2, device)
    stream.loader.close()
    for k in ("cold", "warm"):
        res[f"{k}_ratio"] = res[k]["pairs_s"] / res["compute"]["pairs_s"]
    if device.type == "cuda":
        res["max_memory_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
    photos = list(dict.fromkeys(df["image_file"].astype(str)))[: settings["embed_images"] or None]
    res["embed"] = bench_embed(tr.model, photos, cfg, device, work / f"store-embed-{family}", settings)
    del tr, fixed
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return res


def embed_tensors(model: Any, batches: list, device: Any, amp: bool, cl: bool) -> None:
    """``engine.encode``'s loop without the loader: uint8 batches on the device, normalised, embedded,
    copied to the host without blocking, one synchronisation at the end."""
    import torch

    from sbir_utils import engine
    from sbir_utils.data.transforms import normalize_batch

    was = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for x in batches:
            x = normalize_batch(x, device, cl)
            with engine.autocast(device, amp):
                out.append(model.embed_photo(x).float().to("cpu", non_blocking=True))
    model.train(was)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_embed(model: Any, paths: list[str], cfg: Any, device: Any, store: Path,
                settings: dict[str, Any]) -> dict[str, Any]:
    """``engine.encode`` over ``paths``: a cold pass (a fresh, empty image store) and ``embed_passes`` warm
    ones, against :func:`embed_tensors` on the same number of images already on the device (the first four
    batches decoded once and cycled: compute does not depend on the content), measured before and after."""
    from sbir_utils import engine
    from sbir_utils.data.loading import ImageDataset, make_loader
    from sbir_utils.engine.device import prefers_channels_last

    bs, nw, cl = settings["embed_batch"], cfg.num_workers, prefers_channels_last(device)
    os.environ["SBIR_IMAGE_CACHE_DIR"] = str(store)  # read when encode makes its ImageDataset
    raw = ImageDataset(paths[: 4 * bs], "photo", cfg.image_size, photo_mode=cfg.photo_mode, image_cache=None)
    pre = [x.to(device) for x in make_loader(raw, batch_size=bs, num_workers=min(nw, 4))]
    sizes = [bs] * (len(paths) // bs) + ([len(paths) % bs] if len(paths) % bs else [])
    batches = [pre[i % len(pre)][:n] for i, n in enumerate(sizes)]
    embed_tensors(model, batches[:2], device, cfg.amp, cl)  # warm-up

    def timed(fn: Any) -> float:
        with Clock(device) as c:
            fn()
        return len(paths) / max(c.seconds, 1e-9)

    def through_encode() -> None:
        engine.encode(model, paths, "photo", cfg.image_size, bs, device, amp=cfg.amp, num_workers=nw,
                      photo_mode=cfg.photo_mode)

    compute = [timed(lambda: embed_tensors(model, batches, device, cfg.amp, cl))]
    cold = timed(through_encode)
    warm = [timed(through_encode) for _ in range(settings["embed_passes"])]
    compute.append(timed(lambda: embed_tensors(model, batches, device, cfg.amp, cl)))
    best = max(compute)
    return {"images": len(paths), "batch_size": bs, "num_workers": nw, "warm_passes": len(warm),
            "compute_img_s": best, "compute_img_s_runs": compute, "cold_img_s": cold, "warm_img_s": max(warm),
            "warm_img_s_runs": warm, "cold_ratio": cold / best, "warm_ratio": max(warm) / best}


# ---- orchestration ------------------------------------------------------------------------------------

def git_commit() -> str:
    """``SBIR_COMMIT`` when set (a copy of the tree without .git), else bench.py's (short HEAD, ``-dirty``)."""
    import bench

    return os.environ.get("SBIR_COMMIT") or bench.git_commit()


def machine(device: Any) -> dict[str, Any]:
    import importlib.metadata as md

    import torch

    def version(name: str) -> str | None:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return None

    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {"device": str(device), "gpu": gpu, "torch": torch.__version__, "cuda": torch.version.cuda,
            "timm": version("timm"), "torchvision": version("torchvision"), "python": platform.python_version(),
            "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()}


def plan(args: argparse.Namespace) -> dict[str, Any]:
    q = args.quick
    return {"quick": q, "image_size": 64 if q else 224, "batch": 8 if q else None,
            "num_workers": args.num_workers if args.num_workers is not None else (2 if q else 8),
            "warmup": args.warmup or (2 if q else 5), "steps": args.steps or (3 if q else 30),
            "amp": args.amp if args.amp is not None else not (q and str(args.device).startswith("cpu")),
            "embed_batch": args.embed_batch or (16 if q else 64), "embed_images": args.embed_images,
            "embed_passes": 2, "pairs": args.pairs or (100 if q else 2700), "seed_steps": args.seed_steps or (3 if q else 15),
            "seed_warmup": 1 if q else 2, "seed_batch": 8 if q else 60, "train_timeout": 240, "seed_timeout": 240}


def measure(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    """Every part in turn; ``gpu.json`` is rewritten after each, so a run cut short keeps what it measured."""
    t0 = time.perf_counter()
    settings, parts = plan(args), set(args.parts.split(","))
    work = (Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-gpu-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    res: dict[str, Any] = {"schema": 1, "complete": False, "date": datetime.datetime.now().isoformat(timespec="seconds"),
                           "commit": git_commit(), "command": command_line(argv), "settings": settings,
                           "parts": sorted(parts), "targets": TARGETS}
    try:
        if args.data_root:
            root, res["data"] = Path(args.data_root).resolve(), {"source": "given", "root": args.data_root}
        else:
            root = work / "fscoco"
            log(f"generating {settings['pairs']} pairs in {root}")
            res["data"] = generate(root, settings["pairs"], 0, args.sketch_format, min(16, os.cpu_count() or 1))
        from sbir_utils import engine

        device = engine.resolve_device(args.device)
        res["machine"] = machine(device)
        spec, raw, res["data"]["index"] = data_spec(root)
        save(res, args)
        res["designs"] = []
        for family in ("aafg", "convnext") if "designs" in parts else ():
            log(f"{family}: compute only, data path (cold, warm), embedding")
            t = time.perf_counter()
            try:
                res["designs"].append(bench_design(family, spec, device, work, settings))
            except Exception as exc:  # noqa: BLE001 - reported, the run carries on
                res["designs"].append({"family": family, "error": f"{type(exc).__name__}: {exc}"[:500]})
            res["designs"][-1]["wall_s"] = time.perf_counter() - t
            save(res, args)
        log("race: sbir train, the seed's loop")
        res["race"] = race(args.seed_repo, root, raw, work, device.type, settings, parts)
    finally:
        res["runtime_s"] = time.perf_counter() - t0
        if not args.work and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    res["complete"] = True
    return res


def command_line(argv: list[str]) -> str:
    py = ".venv/bin/python" if ".venv" in sys.executable else Path(sys.executable).name
    cmd = shlex.join([py, os.path.relpath(__file__, ROOT), *argv])
    return f"make bench-gpu ({cmd})" if os.environ.get("MAKELEVEL") else cmd


def save(res: dict[str, Any], args: argparse.Namespace) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu.json").write_text(json.dumps(res, indent=1, default=str) + "\n")


def splice(md: str, section: list[str]) -> str:
    """``md`` with its GPU section replaced by ``section`` (inserted before ``## Reproduce`` when absent)."""
    text = "\n".join(section).rstrip("\n") + "\n\n"
    found = re.search(rf"^{re.escape(SECTION)}.*?(?=^## |\Z)", md, flags=re.S | re.M)
    if found:
        return md[: found.start()] + text + md[found.end():]
    at = re.search(r"^## Reproduce", md, flags=re.M)
    return md[: at.start()] + text + md[at.start():] if at else md.rstrip("\n") + "\n\n" + text


def write_markdown(res: dict[str, Any] | None, args: argparse.Namespace) -> None:
    from bench_sections import gpu_section

    md = args.markdown.read_text() if args.markdown.is_file() else "# Benchmarks\n\n"
    args.markdown.write_text(splice(md, gpu_section(res, os.path.relpath(args.out.resolve(), args.markdown.resolve().parent))))
    log(f"wrote the GPU section of {args.markdown}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny smoke run: 64 px, resnet18 / convnext_atto, a few steps")
    p.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--seed_repo", type=Path, default=None, help="a checkout of the ConvNeXt seed (else its race is skipped)")
    p.add_argument("--data_root", default=None, help="an FS-COCO-layout or index folder instead of the synthetic set")
    p.add_argument("--pairs", type=int, default=None, help="synthetic pairs (default 2700; --quick 100)")
    p.add_argument("--sketch_format", choices=("png", "jpeg"), default="png", help="synthetic sketches' encoding")
    p.add_argument("--num_workers", type=int, default=None, help="loader workers (default 8; --quick 2)")
    p.add_argument("--steps", type=int, default=None, help="timed compute-only steps (default 30)")
    p.add_argument("--warmup", type=int, default=None, help="untimed warm-up steps (default 5)")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast (default on; off for --quick on the CPU)")
    p.add_argument("--embed_batch", type=int, default=None, help="gallery embedding batch (default 64, sbir embed's)")
    p.add_argument("--embed_images", type=int, default=None, help="at most this many gallery photos (default all)")
    p.add_argument("--seed_steps", type=int, default=None, help="batches of each of the seed's 2 epochs (default 15)")
    p.add_argument("--parts", default="designs,train,seed", help="comma-separated: designs, train, seed")
    p.add_argument("--work", default=None, help="work folder, kept (default: a temporary one, deleted)")
    p.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    p.add_argument("--out", type=Path, default=RESULTS, help="folder of gpu.json")
    p.add_argument("--markdown", type=Path, default=ROOT / "BENCHMARKS.md", help="report whose GPU section is written")
    p.add_argument("--render", action="store_true", help="only re-render the GPU section from OUT/gpu.json")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(ROOT))
    if args.render:
        path = args.out / "gpu.json"
        write_markdown(json.loads(path.read_text()) if path.is_file() else None, args)
        return 0
    import torch

    if args.device is None and not torch.cuda.is_available() and not args.quick:
        print("bench_gpu: no CUDA device here; this benchmark is for a GPU machine (a CPU smoke run: --quick "
              "--device cpu)", file=sys.stderr)
        return 2
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    res = measure(args, argv)
    save(res, args)
    write_markdown(res, args)
    failed = [d["family"] for d in res.get("designs", []) if "error" in d]
    failed += ["sbir train"] if "error" in res.get("race", {}).get("ours", {}) else []
    failed += ["seed"] if res.get("race", {}).get("status") == "failed" else []
    log(f"done in {res['runtime_s']:.0f} s" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
