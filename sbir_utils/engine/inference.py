"""Inference: images embedded with the evaluation preprocessing, retrieval metrics of an index (stage 1,
and stage 2 for a model with a pair scorer), and ``evaluate``, a checkpoint measured on the test split."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from ..config import TrainConfig
from ..data.index import DatasetSpec, load_spec, read_index
from ..data.loading import ImageDataset, make_loader
from ..data.transforms import normalize_batch
from ..metrics import evaluate_embeddings, mean_metrics, per_query_metrics
from ..models import rerank, stage2_similarity
from ..retrieval import topk
from ..retrieval_task import retrieval_task, sorted_index
from .checkpoints import load_model
from .device import _unwrap, autocast, prefers_channels_last, resolve_device


def _sorted_index(csv: Path, spec: DatasetSpec, skip_missing: bool = False) -> pd.DataFrame:
    """The index ``csv`` sorted by (sketch, photo, label): the row order never depends on the file's.

    A row naming a missing file stops with every such file listed (``IndexValidationError``), unless
    ``skip_missing``: then those rows are left out, counted in ``df.attrs["skipped"]`` and reported in one
    line on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = read_index(csv, spec, on_missing="skip" if skip_missing else "error")
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr, flush=True)
    return sorted_index(df)


def _resolve_csv(spec: DatasetSpec, name: str | Path) -> Path:
    """``name`` as a path, relative names inside ``spec.index_dir``; the file must exist."""
    path = Path(name)
    path = path if path.is_absolute() else spec.index_dir / path
    if not path.is_file():
        raise FileNotFoundError(f"{path}: index file not found")
    return path


@torch.no_grad()
def encode(model: nn.Module, paths: list[str], kind: str, image_size: int, batch_size: int = 64,
           device: torch.device | str = "cpu", with_maps: bool = False, amp: bool = False,
           num_workers: int = 0, photo_mode: str = "rgb",
           crop: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Embed images with the evaluation preprocessing (photos as ``photo_mode``, see ``transforms.photo_input``;
    ``crop``: cropped to the drawing / object first, ``transforms.crop_to_object``).

    Returns ``(embeddings (N, D) float32 on CPU, maps (N, C, h, w) or None)``; maps (AAFG's
    post-self-attention feature maps, for stage-2 re-ranking) only with ``with_maps``.
    """
    device = torch.device(device)
    model = _unwrap(model)
    was_training = model.training
    model.eval()
    loader = make_loader(ImageDataset(paths, kind, image_size, photo_mode, crop=crop), batch_size=batch_size,
                         num_workers=num_workers, pin_memory=device.type == "cuda")
    channels_last = prefers_channels_last(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    embs, maps = [], []
    try:
        for x in loader:
            x = normalize_batch(x, device, channels_last)
            with autocast(device, amp):
                if with_maps:
                    m = model.maps(x)
                    e = model.embed_maps(m, kind)
                    maps.append(m.float().contiguous().to("cpu", non_blocking=True))
                else:
                    e = model.embed_sketch(x) if kind == "sketch" else model.embed_photo(x)
            embs.append(e.float().to("cpu", non_blocking=True))
    finally:
        model.train(was_training)
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # the non-blocking copies to the host have landed
    return torch.cat(embs), (torch.cat(maps) if with_maps else None)


def retrieval_metrics(model: nn.Module, df: pd.DataFrame, image_size: int, batch_size: int = 64,
                      device: torch.device | str = "cpu", rerank_k: int = 0, amp: bool = False,
                      num_workers: int = 0, details: bool = False, photo_mode: str = "rgb",
                      crop: bool = False) -> dict[str, Any]:
    """Stage-1 (and, for a model with a pair scorer and ``rerank_k`` > 0, stage-2) metrics of an index.

    Queries: every distinct sketch of ``df``; gallery: every distinct photo once; relevant = same label
    (``retrieval_task.retrieval_task``). Returns ``{"stage1": {...}, "stage2": {...} | None, "mean_cos":
    float}`` where ``mean_cos`` is the mean cosine between distinct gallery embeddings (1.0 = collapsed).
    With ``details``, also ``"details"``: ``query_files``, ``gallery_files``, ``query_labels``,
    ``gallery_labels``, ``relevant`` (Q, G) bool, ``top`` (Q, min(10, G)) gallery indices and ``ranks`` (Q,)
    of the final ranking (stage 2 when there is one), ``per_query`` (its per-query metrics DataFrame).
    """
    task = retrieval_task(df)
    q_files, q_labels, relevant = task.query_files, task.query_labels, task.relevant
    g_paths, g_labels = task.gallery_files, task.gallery_labels
    use_maps = bool(getattr(_unwrap(model), "has_pair_scorer", False)) and rerank_k > 0
    q_emb, q_maps = encode(model, q_files, "sketch", image_size, batch_size, device, use_maps, amp, num_workers,
                           crop=crop)
    g_emb, g_maps = encode(model, g_paths, "photo", image_size, batch_size, device, use_maps, amp, num_workers,
                           photo_mode, crop)
    stage1 = evaluate_embeddings(q_emb, g_emb, q_labels, g_labels)
    g = g_emb.shape[0]
    gram = g_emb @ g_emb.T
    mean_cos = float((gram.sum() - gram.diagonal().sum()) / max(g * (g - 1), 1))
    stage2 = None
    sim = q_emb @ g_emb.T  # (Q, G) stage-1 cosines
    final_sim = sim
    if use_maps:
        k = min(int(rerank_k), g)
        _, top = topk(q_emb, g_emb, k)  # deterministic tie order
        new_idx, scores = rerank(_unwrap(model), q_maps, g_maps, top, batch_size=max(batch_size, k))
        final_sim = stage2_similarity(sim, new_idx, scores)
        per_query = per_query_metrics(final_sim.numpy(), relevant)
        stage2 = mean_metrics(per_query)
        stage2.update(n_queries=len(q_labels), n_gallery=g, rerank_k=k)
    out: dict[str, Any] = {"stage1": stage1, "stage2": stage2, "mean_cos": mean_cos}
    if details:
        per_query = per_query_metrics(final_sim.numpy(), relevant)
        order = torch.sort(final_sim, dim=1, descending=True, stable=True).indices[:, : min(10, g)]
        out["details"] = {"query_files": q_files, "gallery_files": list(g_paths),
                          "query_labels": q_labels.tolist(), "gallery_labels": [str(x) for x in g_labels],
                          "relevant": relevant, "top": order.numpy(), "ranks": per_query["rank"].to_numpy(),
                          "per_query": per_query}
    return out


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
    skip_missing: bool = False,
) -> dict[str, Any]:
    """Stage-1 and stage-2 retrieval metrics of a checkpoint on an index (the test split, once).

    Args:
        checkpoint: an engine checkpoint (``best.pt``), or a plain state dict with ``cfg`` saying the model.
        rerank_k: top-K re-ranked by the pair scorer (default: the checkpoint's ``rerank_k``; 0 = none).
        details: add per-query ``details`` (see :func:`retrieval_metrics`), e.g. for ``result.html``.
        skip_missing: leave out rows whose files are missing instead of stopping (see :func:`_sorted_index`).
    Returns:
        ``{"stage1": metrics, "stage2": metrics | None, "mean_cos", "checkpoint", "test_csv", "model",
        "backbone", "epoch", "rerank_k"}`` (and ``"skipped_rows"`` with ``skip_missing``); metrics as
        ``metrics.evaluate_embeddings``.
    """
    device = resolve_device(device)
    model, cfg, meta = load_model(checkpoint, cfg, device)
    spec = load_spec(data_root)
    csv = _resolve_csv(spec, test_csv)
    df = _sorted_index(csv, spec, skip_missing)
    k = cfg.rerank_k if rerank_k is None else int(rerank_k)
    if k < 0:
        raise ValueError(f"rerank_k must be >= 0, got {k}")
    res = retrieval_metrics(model, df, cfg.image_size, batch_size, device, k, False, num_workers, details,
                            cfg.photo_mode, cfg.crop)
    res.update(checkpoint=str(checkpoint), test_csv=str(csv), model=cfg.model, backbone=cfg.backbone,
               epoch=meta.get("epoch"), rerank_k=k if res["stage2"] is not None else 0)
    if skip_missing:
        res["skipped_rows"] = dict(df.attrs.get("skipped", {}))
    return res
