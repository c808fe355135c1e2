"""The training engine shared by AAFG and ConvNeXt-InfoNCE: ``fit`` and ``evaluate``.

A run directory holds::

    config.json            the resolved settings (TrainConfig + engine options + data paths)
    metrics.csv            one row per epoch: loss, lr, validation metrics, throughput, wall time
    tb/                    TensorBoard scalars (tensorboard --logdir RUN_DIR/tb)
    checkpoints/epoch_XX.pt, checkpoints/best.pt
    model.pth              (with save_state_dict=True) a plain state dict of the best model, seed format

Determinism: python/numpy/torch are seeded from ``cfg.seed`` at the start and re-seeded from
``cfg.seed + epoch`` at the start of every epoch (so ``resume`` continues exactly), batch order comes
from ``seed + epoch``, data-loader workers are seeded from a generator seeded per epoch,
``torch.use_deterministic_algorithms(True, warn_only=True)`` is on and index rows are sorted.

Model selection: ``best.pt`` is the epoch with the highest validation retrieval metric (default
``acc@1`` for fine-grained / scene data, ``mAP@all`` for category-level data, computed on the
stage-2 ranking when the model has a cross-attention re-ranker); the test split is never read here.

Objective: ``cfg.loss`` (``triplet`` = batch-hard triplet, ``infonce``) on the stage-1 embeddings, plus
for AAFG with cross-attention ``pair_weight`` x the pair-ranking loss (``losses.pair_ranking_loss``).
``warmup_epochs`` > 0 with ``warmup_loss`` (``infonce`` | ``semihard``) trains the first epochs with an
easier objective. From random initialisation all pooled features point the same way (mean cosine
~0.99 between different images) and batch-hard triplet collapses (every embedding alike, the triplet
term pinned at the margin, ``val_mean_cos`` -> 1.00 in metrics.csv); neither semi-hard mining nor an
InfoNCE warm-up prevented that on the real shoes. A BN neck (``head_bn``; by default on for AAFG, and
for ConvNeXt-InfoNCE from random initialisation) does: it centres the embeddings (see ``models.aafg``).

Distributed: under ``torchrun`` (``WORLD_SIZE`` > 1) a process group is initialised (gloo on CPU, nccl
on GPU), the model is wrapped in DistributedDataParallel and rank 0 validates, logs and writes
checkpoints. ``batch_size`` is per process: all ranks draw the same global batch of ``batch_size x
world_size`` rows and each takes a slice; the embeddings are gathered before the loss
(:func:`gather_batch`), so InfoNCE negatives and batch-hard mining range over the global batch, and on
GPUs BatchNorm is synchronised (SyncBatchNorm). A step of N processes then updates the model as one
process with the global batch would (tested on CPU with a model without BatchNorm, which cannot be
synchronised there); only AAFG's pair-ranking term and the sketch augmentation draws stay per rank.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch import nn

from .config import TrainConfig
from .data.index import DatasetSpec, load_spec, read_index
from .data.loading import PHOTO_MODES, ImageDataset, PairDataset, make_batch_sampler, make_loader
from .fileio import atomic_path, atomic_write, atomic_write_text
from .losses import MININGS, batch_hard_triplet, info_nce, pair_ranking_loss
from .metrics import evaluate_embeddings, metric_name, per_query_metrics, unique_gallery
from .models import build_model, read_state_dict, rerank, stage2_similarity
from .retrieval import topk

WARMUP_LOSSES = ("infonce", "semihard")
CKPT_FORMAT = 1


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss; the run stopped and the last good checkpoint was kept."""


# ---- small helpers ---------------------------------------------------------------------------------

def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """RNG states as tensors and plain python values (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def resolve_device(device: str | torch.device | None = None, no_cuda: bool = False) -> torch.device:
    """``device`` if given, else CUDA when available (and not ``no_cuda``), else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() and not no_cuda else "cpu")


def autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """Mixed precision: bf16 where supported (CPU, recent GPUs), fp16 on older GPUs; off when not ``amp``."""
    if not amp:
        return contextlib.nullcontext()
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _sorted_index(csv: Path, spec: DatasetSpec) -> pd.DataFrame:
    df = read_index(csv, spec)
    return df.sort_values(["path_sketch", "path_image", "label"], kind="stable").reset_index(drop=True)


def _resolve_csv(spec: DatasetSpec, name: str | Path) -> Path:
    path = Path(name)
    path = path if path.is_absolute() else spec.index_dir / path
    if not path.is_file():
        raise FileNotFoundError(f"{path}: index file not found")
    return path


def train_config_from_dict(values: dict[str, Any], where: str = "checkpoint") -> TrainConfig:
    """A TrainConfig from a stored dict; unknown keys (from a newer version) are dropped with a warning."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    extra = sorted(set(values) - known)
    if extra:
        warnings.warn(f"{where}: ignoring unknown config key(s) {extra}", stacklevel=2)
    return TrainConfig(**{k: v for k, v in values.items() if k in known})


# ---- encoding and retrieval metrics -------------------------------------------------------------------

@torch.no_grad()
def encode(model: nn.Module, paths: list[str], kind: str, image_size: int, batch_size: int = 64,
           device: torch.device | str = "cpu", with_maps: bool = False, amp: bool = False,
           num_workers: int = 0, photo_mode: str = "rgb",
           crop: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Embed images with the evaluation preprocessing (photos as ``photo_mode``, see ``loading.photo_input``;
    ``crop``: cropped to the drawing / object first, ``loading.crop_to_object``).

    Returns ``(embeddings (N, D) float32 on CPU, maps (N, C, h, w) or None)``; maps (AAFG's
    post-self-attention feature maps, for stage-2 re-ranking) only with ``with_maps``.
    """
    device = torch.device(device)
    model = _unwrap(model)
    was_training = model.training
    model.eval()
    loader = make_loader(ImageDataset(paths, kind, image_size, photo_mode, crop=crop), batch_size=batch_size,
                         num_workers=num_workers)
    embs, maps = [], []
    try:
        for x in loader:
            x = x.to(device)
            with autocast(device, amp):
                if with_maps:
                    m = model.maps(x)
                    e = model.embed_maps(m, kind)
                    maps.append(m.float().cpu())
                else:
                    e = model.embed_sketch(x) if kind == "sketch" else model.embed_photo(x)
            embs.append(e.float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(embs), (torch.cat(maps) if with_maps else None)


def retrieval_metrics(model: nn.Module, df: pd.DataFrame, image_size: int, batch_size: int = 64,
                      device: torch.device | str = "cpu", rerank_k: int = 0, amp: bool = False,
                      num_workers: int = 0, details: bool = False, photo_mode: str = "rgb",
                      crop: bool = False) -> dict[str, Any]:
    """Stage-1 (and, for a model with a pair scorer and ``rerank_k`` > 0, stage-2) metrics of an index.

    Queries: every distinct sketch of ``df``; gallery: every distinct photo once (``unique_gallery``);
    relevant = same label. Returns ``{"stage1": {...}, "stage2": {...} | None, "mean_cos": float}``
    where ``mean_cos`` is the mean cosine between distinct gallery embeddings (1.0 = collapsed).
    With ``details``, also ``"details"``: ``query_files``, ``gallery_files``, ``query_labels``,
    ``gallery_labels``, ``relevant`` (Q, G) bool, ``top`` (Q, min(10, G)) gallery indices and ``ranks`` (Q,)
    of the final ranking (stage 2 when there is one), ``per_query`` (its per-query metrics DataFrame).
    """
    queries = df.drop_duplicates("sketch_file", keep="first")
    g_paths, g_labels, _ = unique_gallery(df["image_file"].tolist(), df["label"].astype(str).tolist())
    q_labels = queries["label"].astype(str).to_numpy()
    use_maps = bool(getattr(_unwrap(model), "has_pair_scorer", False)) and rerank_k > 0
    q_emb, q_maps = encode(model, queries["sketch_file"].tolist(), "sketch", image_size, batch_size, device,
                           use_maps, amp, num_workers, crop=crop)
    g_emb, g_maps = encode(model, g_paths, "photo", image_size, batch_size, device, use_maps, amp, num_workers,
                           photo_mode, crop)
    stage1 = evaluate_embeddings(q_emb, g_emb, q_labels, g_labels)
    g = g_emb.shape[0]
    gram = g_emb @ g_emb.T
    mean_cos = float((gram.sum() - gram.diagonal().sum()) / max(g * (g - 1), 1))
    stage2 = None
    sim = q_emb @ g_emb.T  # (Q, G) stage-1 cosines
    relevant = q_labels[:, None] == np.asarray(g_labels, dtype=object).astype(str)[None, :]
    final_sim = sim
    if use_maps:
        k = min(int(rerank_k), g)
        _, top = topk(q_emb, g_emb, k)  # deterministic tie order
        new_idx, scores = rerank(_unwrap(model), q_maps, g_maps, top, batch_size=max(batch_size, k))
        final_sim = stage2_similarity(sim, new_idx, scores)
        per_query = per_query_metrics(final_sim.numpy(), relevant)
        stage2 = {metric_name(c): float(per_query[c].mean()) for c in per_query.columns if c != "rank"}
        stage2.update(n_queries=len(q_labels), n_gallery=g, rerank_k=k)
    out: dict[str, Any] = {"stage1": stage1, "stage2": stage2, "mean_cos": mean_cos}
    if details:
        per_query = per_query_metrics(final_sim.numpy(), relevant)
        order = torch.sort(final_sim, dim=1, descending=True, stable=True).indices[:, : min(10, g)]
        out["details"] = {"query_files": queries["sketch_file"].tolist(), "gallery_files": list(g_paths),
                          "query_labels": q_labels.tolist(), "gallery_labels": [str(x) for x in g_labels],
                          "relevant": relevant, "top": order.numpy(), "ranks": per_query["rank"].to_numpy(),
                          "per_query": per_query}
    return out


# ---- checkpoints -------------------------------------------------------------------------------------

def save_checkpoint(state: dict[str, Any], path: Path) -> Path:
    """``torch.save`` atomically (a crash never leaves a half-written checkpoint); a failed write (a full
    disk) leaves the previous file in place and raises an ``OSError`` naming ``path``."""
    try:
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    except OSError as exc:
        raise OSError(exc.errno, f"{path}: could not write the checkpoint ({exc.strerror or exc}); "
                                 "the previous one is unchanged") from exc
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint (or a plain state dict) with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt files raise many types
        raise ValueError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = sorted(Path(run_dir, "checkpoints").glob("epoch_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    return found[-1] if found else None


def load_model(checkpoint: str | Path, cfg: TrainConfig | None = None,
               device: torch.device | str = "cpu") -> tuple[nn.Module, TrainConfig, dict[str, Any]]:
    """A model ready for evaluation from an engine checkpoint, or from a plain state dict plus ``cfg``
    (the ConvNeXt-InfoNCE seed's ``torch.save(model.state_dict())`` files). Returns (model, cfg, meta)."""
    obj = load_checkpoint(checkpoint)
    if isinstance(obj, dict) and "model" in obj and "config" in obj:
        cfg = train_config_from_dict(obj["config"], str(checkpoint))
        state, meta = obj["model"], {k: obj.get(k) for k in ("epoch", "best", "options")}
    else:
        if cfg is None:
            raise ValueError(f"{checkpoint}: a plain state dict, not an engine checkpoint: say which model it is "
                             "(--model, --backbone, --embed_dim)")
        state = read_state_dict(checkpoint)
        if cfg.model == "convnext_infonce":  # the projection head is optional: follow the file
            cfg = dataclasses.replace(cfg, embed_dim=int(state["head.weight"].shape[0]) if "head.weight" in state else 0)
        meta = {"epoch": None, "best": None, "options": None}
    head_bn = any(k.startswith("neck.") for k in state)  # the file says whether the model has a BN neck
    model = build_model(cfg, weights="random", head_bn=head_bn)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:3]
        raise ValueError(f"{checkpoint}: does not fit a {cfg.model} with backbone {cfg.backbone} "
                         f"({' '.join(first)})") from None
    return model.to(device).eval(), cfg, meta


# ---- distributed ------------------------------------------------------------------------------------

def _init_distributed(device: torch.device) -> tuple[int, int, torch.device, bool]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device, False
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise RuntimeError(f"LOCAL_RANK {local} but this machine has {torch.cuda.device_count()} GPU(s): start "
                               "one process per GPU (torchrun --nproc_per_node=<GPUs>) or pass --no_cuda for CPU ranks")
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    created = False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        created = True
    return rank, world, device, created


class _GatherWithGrad(torch.autograd.Function):
    """``all_gather`` whose backward hands each rank the summed gradient of its own rows (all_reduce, which
    gloo and NCCL both have; torch's own autograd all_gather needs all-to-all or reduce-scatter)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # (B, D) -> (world x B, D)
        ctx.rank, ctx.rows = dist.get_rank(), x.shape[0]
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.rows:(ctx.rank + 1) * ctx.rows]


def gather_batch(out: dict[str, torch.Tensor], labels: torch.Tensor,
                 world: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Under DDP: every rank's ``sketch`` / ``photo`` embeddings (B, D) and labels (B,) concatenated in rank
    order (world x B rows), so that in-batch negatives and batch-hard mining see the global batch.

    Every rank then computes the same global loss; the backward gives each rank ``world`` times the
    gradient of its rows, and DDP's gradient averaging divides it back: the update equals that of one
    process on the global batch (AAFG's pair scores stay per rank). ``world == 1``: unchanged."""
    if world <= 1:
        return out, labels
    gathered = dict(out)
    for key in ("sketch", "photo"):
        gathered[key] = _GatherWithGrad.apply(out[key])
    parts = [torch.empty_like(labels) for _ in range(world)]
    dist.all_gather(parts, labels.contiguous())
    return gathered, torch.cat(parts)


def _all_mean(values: list[float], world: int, device: torch.device) -> list[float]:
    if world <= 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return (t / world).tolist()


# ---- training ---------------------------------------------------------------------------------------

def cosine_lr(base_lr: float, epoch: int, epochs: int) -> float:
    """Learning rate of ``epoch`` (1-based): cosine decay from ``base_lr`` over ``epochs`` epochs, in
    closed form so that a resumed (or extended) run needs no scheduler state."""
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / max(epochs, 1)))


def _objective(epoch: int, cfg: TrainConfig, warmup_epochs: int, warmup_loss: str, mining: str) -> str:
    if cfg.loss == "infonce" or (epoch <= warmup_epochs and warmup_loss == "infonce"):
        return "infonce"
    if epoch <= warmup_epochs and warmup_loss == "semihard":
        return "triplet-semihard"
    return f"triplet-{mining}"


def compute_loss(out: dict[str, torch.Tensor], labels: torch.Tensor, cfg: TrainConfig, objective: str,
                 symmetric: bool = False, pair_weight: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss of a batch and its parts (``loss_embed``, ``loss_pair``)."""
    if objective == "infonce":
        embed = info_nce(out["sketch"], out["photo"], cfg.temperature, symmetric, labels)
    else:
        embed = batch_hard_triplet(out["sketch"], out["photo"], labels, labels.clone(), cfg.margin,
                                   mining=objective.split("-", 1)[1])
    total, parts = embed, {"loss_embed": float(embed.detach())}
    if "pair_scores" in out and pair_weight > 0:
        pair = pair_ranking_loss(out["pair_scores"], out["pair_valid"], cfg.temperature)
        total = total + pair_weight * pair
        parts["loss_pair"] = float(pair.detach())
    return total, parts


def _check_config(cfg: TrainConfig) -> None:
    problems = []
    for name, low in (("epochs", 1), ("batch_size", 2), ("image_size", 16), ("attn_reduction", 1)):
        if getattr(cfg, name) < low:
            problems.append(f"{name} must be >= {low}, got {getattr(cfg, name)}")
    if not cfg.lr > 0:
        problems.append(f"lr must be > 0, got {cfg.lr}")
    if not cfg.temperature > 0:
        problems.append(f"temperature must be > 0, got {cfg.temperature}")
    if cfg.margin < 0:
        problems.append(f"margin must be >= 0, got {cfg.margin}")
    if cfg.loss not in ("triplet", "infonce"):
        problems.append(f"loss must be 'triplet' or 'infonce', got {cfg.loss!r}")
    if cfg.photo_mode not in PHOTO_MODES:
        problems.append(f"photo_mode must be one of {PHOTO_MODES}, got {cfg.photo_mode!r}")
    if problems:
        raise ValueError("; ".join(problems))


def fit(
    cfg: TrainConfig,
    data_root: str | Path,
    run_dir: str | Path,
    train_csv: str = "index_train.csv",
    val_csv: str = "index_val.csv",
    resume: bool = False,
    *,
    sampler: str = "auto",
    warmup_epochs: int | None = None,
    warmup_loss: str | None = None,
    mining: str = "hard",
    symmetric: bool = False,
    pair_weight: float = 1.0,
    pair_negatives: int = 3,
    head_bn: bool | None = None,
    select_metric: str | None = None,
    device: str | torch.device | None = None,
    model_path: str | Path | None = None,
    save_state_dict: bool = False,
    keep_last: int = 3,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``cfg.model`` on ``data_root/train_csv``, validate on ``val_csv`` every epoch.

    Args:
        cfg: model and optimisation settings (epochs, batch_size per process, lr, loss, margin, ...).
        data_root: index folder (``index_*.csv`` + optional ``dataset.json``).
        run_dir: output folder (see the module docstring).
        resume: continue from the newest ``checkpoints/epoch_XX.pt`` of ``run_dir`` up to ``cfg.epochs``.
        sampler: ``auto`` (PK for category-level data, else photo-unique) | ``photo_unique`` | ``pk`` | ``random``.
        warmup_epochs, warmup_loss: first epochs trained with ``infonce`` or semi-hard triplet (default: the
            config's ``warmup_epochs`` / ``warmup_loss``).
        mining: ``hard`` | ``semihard`` for the triplet loss after warm-up.
        symmetric: InfoNCE in both directions.
        pair_weight, pair_negatives: AAFG pair-ranking loss weight and negatives per anchor.
        head_bn: BN neck before L2 normalisation (see ``models.aafg.AAFG``; off reproduces the batch-hard
            triplet collapse from random initialisation). ``None``: always on for AAFG; on for
            ConvNeXt-InfoNCE only from random initialisation (where InfoNCE otherwise sits at log(batch)).
        select_metric: validation metric choosing ``best.pt`` (``acc@1``, ``mAP@all``, ``s2_acc@1`` ...).
        model_path: start from this state dict (a plain ``model.state_dict()`` or an engine checkpoint).
        save_state_dict: also write ``run_dir/model.pth``, the best model's plain state dict (seed's ``--save``).
        keep_last: keep only the newest ``keep_last`` ``epoch_XX.pt`` files (0 keeps all).
        overwrite: when not resuming and ``run_dir`` already holds a run, replace it (its checkpoints,
            metrics.csv, tb/ and model.pth are deleted); without it that is an error.
        progress: show a tqdm bar (stderr, redrawn at most every 5 s).
    Returns:
        summary dict: run_dir, best_epoch, best_metric, best_value, best_checkpoint, last_checkpoint,
        epochs_run, final validation metrics, pairs_per_s, wall_time_s.
    """
    _check_config(cfg)
    warmup_epochs = cfg.warmup_epochs if warmup_epochs is None else warmup_epochs
    warmup_loss = cfg.warmup_loss if warmup_loss is None else warmup_loss
    if warmup_loss not in WARMUP_LOSSES:
        raise ValueError(f"warmup_loss must be one of {WARMUP_LOSSES}, got {warmup_loss!r}")
    if warmup_epochs < 0:
        raise ValueError(f"warmup_epochs must be >= 0, got {warmup_epochs}")
    if mining not in MININGS:
        raise ValueError(f"mining must be one of {MININGS}, got {mining!r}")
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    device = resolve_device(device)
    rank, world, device, created_pg = _init_distributed(device)
    try:
        return _fit(cfg, Path(data_root), Path(run_dir), train_csv, val_csv, resume, sampler, warmup_epochs,
                    warmup_loss, mining, symmetric, pair_weight, pair_negatives, head_bn, select_metric, device,
                    model_path, save_state_dict, keep_last, overwrite, progress, rank, world)
    finally:
        if created_pg and dist.is_initialized():
            dist.destroy_process_group()


def _fit(cfg, data_root, run_dir, train_csv, val_csv, resume, sampler, warmup_epochs, warmup_loss, mining,
         symmetric, pair_weight, pair_negatives, head_bn, select_metric, device, model_path, save_state_dict, keep_last,
         overwrite, progress, rank, world) -> dict[str, Any]:
    from tqdm import tqdm

    main = rank == 0
    spec = load_spec(data_root)
    train_path, val_path = _resolve_csv(spec, train_csv), _resolve_csv(spec, val_csv)
    train_df, val_df = _sorted_index(train_path, spec), _sorted_index(val_path, spec)
    if train_df["label"].nunique() < 2:
        raise ValueError(f"{train_path}: every row has the label {train_df['label'].iloc[0]!r}; training needs at "
                         "least two labels (photos or classes), so that a batch holds negatives")
    if sampler == "auto":
        sampler = "pk" if spec.protocol == "category" else "photo_unique"
    if select_metric is None:
        select_metric = "mAP@all" if spec.protocol == "category" else "acc@1"
        if cfg.model == "aafg" and cfg.cross_attention and cfg.rerank_k > 0:
            select_metric = "s2_" + select_metric
    options = dict(sampler=sampler, warmup_epochs=warmup_epochs, warmup_loss=warmup_loss, mining=mining,
                   symmetric=symmetric, pair_weight=pair_weight, pair_negatives=pair_negatives,
                   head_bn=head_bn, select_metric=select_metric, world_size=world, data_root=str(spec.index_dir),
                   train_csv=str(train_path), val_csv=str(val_path), protocol=spec.protocol,
                   model_path=str(model_path) if model_path else None)

    seed_everything(cfg.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
    state = None
    if model_path:
        obj = load_checkpoint(model_path)
        state = obj["model"] if isinstance(obj, dict) and "model" in obj and "config" in obj else read_state_dict(model_path)
        if head_bn is None:  # follow the file (the seed's state dicts have no BN neck)
            head_bn = any(k.startswith("neck.") for k in state)
    model = build_model(cfg, pair_negatives=pair_negatives, head_bn=head_bn)
    options["head_bn"] = getattr(model, "neck", None) is not None  # as resolved (None: the model's default)
    if state is not None:
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ValueError(f"{model_path}: does not fit a {cfg.model} with backbone {cfg.backbone} and "
                             f"embed_dim {cfg.embed_dim} ({str(exc).splitlines()[1].strip()[:300]})") from None
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    fp16 = cfg.amp and device.type == "cuda" and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler("cuda", enabled=fp16)

    ckpt_dir = run_dir / "checkpoints"
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"metric": select_metric, "value": None, "epoch": None}
    start_epoch = 1
    if resume:
        last = latest_checkpoint(run_dir)
        if last is None:
            raise FileNotFoundError(f"{ckpt_dir}: no epoch_XX.pt checkpoint to resume from")
        ckpt = load_checkpoint(last)
        free = ("epochs", "num_workers")  # may change on resume
        stored = {k: v for k, v in ckpt["config"].items() if k not in free}
        now = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in free}
        if stored != now:
            diff = sorted(k for k in set(stored) | set(now) if stored.get(k) != now.get(k))
            raise ValueError(f"{last}: was trained with different settings ({diff}); resume with the same ones")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"])
        history, best = list(ckpt["history"]), dict(ckpt["best"])
        start_epoch = int(ckpt["epoch"]) + 1

    if not resume:  # every rank checks (so all fail together), rank 0 deletes
        old = sorted(ckpt_dir.glob("*.pt")) + [p for p in (run_dir / "metrics.csv", run_dir / "model.pth") if p.exists()]
        if old and not overwrite:
            raise FileExistsError(f"{run_dir}: already holds a run ({old[0].name}, ...); resume it, choose another "
                                  "log dir, or overwrite it")
        for p in old if main else []:
            p.unlink(missing_ok=True)
        if main and (run_dir / "tb").is_dir():
            import shutil

            shutil.rmtree(run_dir / "tb")
    train_model: nn.Module = model
    if world > 1:
        if device.type == "cuda":  # BatchNorm statistics of the global batch (SyncBatchNorm needs a GPU)
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        train_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            # AAFG's pair scorer and the timm ConvNeXt's classifier-head norm (kept for the seed's state-dict
            # layout, never used for embeddings) get no gradient in some or all steps.
            find_unused_parameters=True)

    writer = None
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        resolved = {"train": dataclasses.asdict(cfg), "options": options, "device": str(device)}
        atomic_write_text(run_dir / "config.json", json.dumps(resolved, indent=2, default=str) + "\n")
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(run_dir / "tb"), purge_step=start_epoch)
        except ImportError:  # pragma: no cover - tensorboard is a pinned dependency
            warnings.warn("tensorboard is not installed: no TensorBoard logs", stacklevel=2)

    dataset = PairDataset(train_df, cfg.image_size, train=True, augment=cfg.augment, photo_mode=cfg.photo_mode,
                          crop=cfg.crop)
    batches = make_batch_sampler(train_df, cfg.batch_size, sampler, seed=cfg.seed, rank=rank, world_size=world)
    prior_wall = float(history[-1]["wall_time_s"]) if history else 0.0
    t_start = time.perf_counter()
    last_good = latest_checkpoint(run_dir) if main else None

    for epoch in range(start_epoch, cfg.epochs + 1):
        seed_everything(cfg.seed + epoch)
        batches.set_epoch(epoch)
        if len(batches) == 0:
            raise ValueError(f"{train_path}: too few rows for one batch of {cfg.batch_size} "
                             f"({len(train_df)} rows, sampler {sampler}, {world} process(es))")
        loader = make_loader(dataset, batch_sampler=batches, num_workers=cfg.num_workers, seed=cfg.seed * 1000 + epoch)
        objective = _objective(epoch, cfg, warmup_epochs, warmup_loss, mining)
        lr = cosine_lr(cfg.lr, epoch, cfg.epochs)
        for group in optimizer.param_groups:
            group["lr"] = lr
        train_model.train()
        sums: dict[str, float] = {"loss": 0.0, "loss_embed": 0.0, "loss_pair": 0.0}
        n_steps, n_pairs = 0, 0
        t0 = time.perf_counter()
        bar = tqdm(loader, desc=f"epoch {epoch}/{cfg.epochs}", file=sys.stderr, mininterval=5.0,
                   disable=not (progress and main), leave=False)
        for step, (sketch, photo, labels) in enumerate(bar, 1):
            sketch, photo, labels = sketch.to(device), photo.to(device), labels.to(device)
            with autocast(device, cfg.amp):
                out = train_model(sketch, photo, labels)
                out, batch_labels = gather_batch(out, labels, world)
                loss, parts = compute_loss(out, batch_labels, cfg, objective, symmetric, pair_weight)
            bad = torch.tensor(0.0 if torch.isfinite(loss) else 1.0, device=device)
            if world > 1:
                dist.all_reduce(bad, op=dist.ReduceOp.MAX)
            if bad.item() > 0:
                where = f"{last_good}" if last_good else "none written yet"
                raise NonFiniteLossError(
                    f"epoch {epoch}, batch {step}: the loss is not finite ({float(loss.detach())}); training stopped. "
                    f"Last good checkpoint: {where}. Try a lower --lr, or turn --amp off.")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            sums["loss"] += float(loss.detach())
            for k, v in parts.items():
                sums[k] += v
            n_steps += 1
            n_pairs += sketch.shape[0]
            if step % 10 == 0:
                bar.set_postfix(loss=f"{sums['loss'] / n_steps:.4f}", refresh=False)
        bar.close()
        train_time = time.perf_counter() - t0
        means = _all_mean([sums[k] / n_steps for k in ("loss", "loss_embed", "loss_pair")], world, device)

        row: dict[str, Any] = {"epoch": epoch, "objective": objective, "train_loss": means[0],
                               "loss_embed": means[1], "loss_pair": means[2] if "pair_scores" in out else float("nan"),
                               "lr": lr}
        if main:
            val = retrieval_metrics(model, val_df, cfg.image_size, max(cfg.batch_size, 32), device, cfg.rerank_k,
                                    cfg.amp, cfg.num_workers, photo_mode=cfg.photo_mode, crop=cfg.crop)
            row.update({f"val_{k}": v for k, v in val["stage1"].items() if not k.startswith("n_")})
            if val["stage2"] is not None:
                row.update({f"val_s2_{k}": v for k, v in val["stage2"].items()
                            if not k.startswith("n_") and k != "rerank_k"})
            row["val_mean_cos"] = val["mean_cos"]
            row["pairs_per_s"] = n_pairs * world / max(train_time, 1e-9)
            row["epoch_time_s"] = time.perf_counter() - t0
            row["wall_time_s"] = prior_wall + time.perf_counter() - t_start
            value = row.get(f"val_{select_metric}")
            if value is None:
                raise ValueError(f"select_metric {select_metric!r} is not a validation metric; choose one of "
                                 f"{sorted(k[4:] for k in row if k.startswith('val_'))}")
            improved = best["value"] is None or (not math.isnan(value) and (math.isnan(best["value"]) or value > best["value"]))
            if improved:
                best = {"metric": select_metric, "value": float(value), "epoch": epoch}
            row["best"] = improved
            history.append(row)
            state = {"format": CKPT_FORMAT, "epoch": epoch, "model": model.state_dict(),
                     "optimizer": optimizer.state_dict(),
                     "scheduler": {"kind": "cosine", "base_lr": cfg.lr, "epochs": cfg.epochs, "next_epoch": epoch + 1},
                     "scaler": scaler.state_dict(), "rng": rng_state(), "config": dataclasses.asdict(cfg),
                     "options": options, "history": history, "best": best}
            # best.pt (and model.pth) before epoch_XX.pt: a run killed in between resumes from the previous
            # epoch and writes them again, instead of keeping a best.pt older than the "best" it records.
            if improved:
                save_checkpoint(state, ckpt_dir / "best.pt")
                if save_state_dict:
                    with atomic_path(run_dir / "model.pth") as tmp:
                        torch.save(model.state_dict(), tmp)
            last_good = save_checkpoint(state, ckpt_dir / f"epoch_{epoch:02d}.pt")
            if keep_last > 0:
                for old in sorted(ckpt_dir.glob("epoch_*.pt"), key=lambda p: int(p.stem.split("_")[1]))[:-keep_last]:
                    old.unlink()
            frame = pd.DataFrame(history)
            atomic_write(run_dir / "metrics.csv", lambda p, f=frame: f.to_csv(p, index=False, lineterminator="\n"))
            if writer is not None:
                for k, v in row.items():
                    if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "epoch":
                        writer.add_scalar(k.replace("val_", "val/").replace("train_", "train/"), v, epoch)
                writer.flush()
            s2 = f" s2 acc@1 {row['val_s2_acc@1']:.3f}" if "val_s2_acc@1" in row else ""
            print(f"epoch {epoch}/{cfg.epochs} [{objective}] loss {row['train_loss']:.4f} | val acc@1 "
                  f"{row['val_acc@1']:.3f} acc@10 {row['val_acc@10']:.3f} mAP {row['val_mAP@all']:.3f}{s2} "
                  f"mean cos {row['val_mean_cos']:.2f} | {row['pairs_per_s']:.1f} pairs/s "
                  f"{row['epoch_time_s']:.0f} s" + (" *" if improved else ""), file=sys.stderr, flush=True)
        if world > 1:
            dist.barrier()

    if writer is not None:
        writer.close()
    summary: dict[str, Any] = {"run_dir": str(run_dir), "rank": rank, "world_size": world}
    if main:
        final = history[-1] if history else {}
        summary.update(
            best_metric=best["metric"], best_value=best["value"], best_epoch=best["epoch"],
            best_checkpoint=str(ckpt_dir / "best.pt"), last_checkpoint=str(last_good) if last_good else None,
            epochs_run=len(history), final={k: v for k, v in final.items() if k.startswith("val_")},
            pairs_per_s=float(np.mean([h["pairs_per_s"] for h in history])) if history else float("nan"),
            wall_time_s=final.get("wall_time_s", 0.0), options=options)
    return summary


# ---- evaluation -------------------------------------------------------------------------------------

def evaluate(
    checkpoint: str | Path,
    data_root: str | Path,
    test_csv: str = "index_test.csv",
    batch_size: int = 64,
    rerank_k: int | None = None,
    *,
    cfg: TrainConfig | None = None,
    device: str | torch.device | None = None,
    num_workers: int = 0,
    details: bool = False,
) -> dict[str, Any]:
    """Stage-1 and stage-2 retrieval metrics of a checkpoint on an index (the test split, once).

    Args:
        checkpoint: an engine checkpoint (``best.pt``), or a plain state dict with ``cfg`` saying the model.
        rerank_k: top-K re-ranked by the pair scorer (default: the checkpoint's ``rerank_k``; 0 = none).
        details: add per-query ``details`` (see :func:`retrieval_metrics`), e.g. for ``result.html``.
    Returns:
        ``{"stage1": metrics, "stage2": metrics | None, "mean_cos", "checkpoint", "test_csv", "model",
        "backbone", "epoch", "rerank_k"}``; metrics as ``metrics.evaluate_embeddings``.
    """
    device = resolve_device(device)
    model, cfg, meta = load_model(checkpoint, cfg, device)
    spec = load_spec(data_root)
    csv = _resolve_csv(spec, test_csv)
    df = _sorted_index(csv, spec)
    k = cfg.rerank_k if rerank_k is None else int(rerank_k)
    if k < 0:
        raise ValueError(f"rerank_k must be >= 0, got {k}")
    res = retrieval_metrics(model, df, cfg.image_size, batch_size, device, k, False, num_workers, details,
                            cfg.photo_mode, cfg.crop)
    res.update(checkpoint=str(checkpoint), test_csv=str(csv), model=cfg.model, backbone=cfg.backbone,
               epoch=meta.get("epoch"), rerank_k=k if res["stage2"] is not None else 0)
    return res
