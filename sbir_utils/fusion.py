"""Late fusion of a learned model with HOG: a checkpoint's cosine similarities and HOG's, each z-scored per
query (``baselines.fuse_scores``), HOG's weight chosen on the validation split, the test split read once;
and ensembles of checkpoints, their cosine similarities summed (fused with HOG too). Used by the transfer
table's ``pretrained-init+HOG``, ``pretrained-ensemble`` and ``pretrained-ensemble+HOG`` rows."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .baselines import FUSION_WEIGHTS, fuse_scores, retrieval_task
from .metrics import mean_metrics, per_query_metrics


def learned_scores(ckpt: str, frames: Sequence[pd.DataFrame]) -> list[np.ndarray]:
    """Cosine similarities (Q, G) of the checkpoint's embeddings for each index frame, queries and gallery
    as ``baselines.retrieval_task`` orders them, with the checkpoint's own preprocessing (loaded once)."""
    from .engine.checkpoints import load_model
    from .engine.inference import encode

    model, cfg, _ = load_model(ckpt)
    kw = {"image_size": cfg.image_size, "photo_mode": cfg.photo_mode, "crop": cfg.crop}
    out = []
    for df in frames:
        queries, gallery, _ = retrieval_task(df)
        sketches, _ = encode(model, queries, "sketch", **kw)
        photos, _ = encode(model, gallery, "photo", **kw)
        out.append((sketches @ photos.T).numpy())
    return out


def fused_metrics(ckpts: str | Sequence[str], val_df: pd.DataFrame, test_df: pd.DataFrame, hog_val: np.ndarray,
                  hog_test: np.ndarray, weights: tuple[float, ...] = FUSION_WEIGHTS) -> tuple[dict[str, float], float]:
    """Test metrics (every ``metrics.per_query_metrics`` column, by reported name, plus ``n_queries`` and
    ``n_gallery``) of the checkpoint's scores (several checkpoints: their summed cosine similarities, as in
    :func:`ensemble_metrics`) fused with HOG's (``fuse_scores``), with the HOG weight that gives the best
    validation MRR (the first in ``weights`` on a tie); returns ``(metrics, weight)``.
    ``hog_val`` / ``hog_test``: HOG similarities (Q, G) in ``retrieval_task`` order."""
    _, _, rel_val = retrieval_task(val_df)
    per_ckpt = [learned_scores(c, (val_df, test_df)) for c in ([ckpts] if isinstance(ckpts, str) else ckpts)]
    if not per_ckpt:
        raise ValueError("fused_metrics: no checkpoints")
    learned_val, learned_test = sum(v for v, _ in per_ckpt), sum(t for _, t in per_ckpt)
    val_mrr = [mean_metrics(per_query_metrics(fuse_scores(learned_val, hog_val, w), rel_val))["mrr"] for w in weights]
    weight = weights[int(np.argmax(val_mrr))]
    _, gallery, rel_test = retrieval_task(test_df)
    test = mean_metrics(per_query_metrics(fuse_scores(learned_test, hog_test, weight), rel_test))
    return test | {"n_queries": len(rel_test), "n_gallery": len(gallery)}, weight


def ensemble_metrics(ckpts: Sequence[str], df: pd.DataFrame) -> dict[str, float]:
    """Metrics of several checkpoints on one index frame, their cosine similarities (Q, G) summed with equal
    weights (each checkpoint with its own preprocessing, so members may differ in input size or embedding
    width): every ``metrics.per_query_metrics`` column by reported name, plus ``n_queries`` and ``n_gallery``.
    Nothing is chosen on ``df``."""
    if not ckpts:
        raise ValueError("ensemble_metrics: no checkpoints")
    _, gallery, relevant = retrieval_task(df)
    scores = sum(learned_scores(ckpt, (df,))[0] for ckpt in ckpts)
    return mean_metrics(per_query_metrics(scores, relevant)) | {"n_queries": len(relevant), "n_gallery": len(gallery)}
