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


def summed_scores(ckpts: Sequence[str], frames: Sequence[pd.DataFrame]) -> list[np.ndarray]:
    """Each frame's cosine similarities (Q, G) summed over ``ckpts`` with equal weights (each checkpoint with its
    own preprocessing, so members may differ in input size or embedding width); :func:`learned_scores` order."""
    if not ckpts:
        raise ValueError("no checkpoints given")
    per_ckpt = [learned_scores(ckpt, frames) for ckpt in ckpts]
    return [sum(scores[i] for scores in per_ckpt) for i in range(len(frames))]


def scores_metrics(scores: np.ndarray, df: pd.DataFrame) -> dict[str, float]:
    """Metrics of similarities (Q, G) on ``df`` (``retrieval_task`` order): every ``metrics.per_query_metrics``
    column by reported name, plus ``n_queries`` and ``n_gallery``."""
    _, gallery, relevant = retrieval_task(df)
    return mean_metrics(per_query_metrics(scores, relevant)) | {"n_queries": len(relevant), "n_gallery": len(gallery)}


def fuse_on_validation(learned_val: np.ndarray, learned_test: np.ndarray, val_df: pd.DataFrame, test_df: pd.DataFrame,
                       hog_val: np.ndarray | Sequence[np.ndarray], hog_test: np.ndarray | Sequence[np.ndarray],
                       weights: tuple[float, ...] = FUSION_WEIGHTS) -> tuple[dict[str, float], float]:
    """Test metrics (:func:`scores_metrics`) of learned similarities fused with HOG's (``fuse_scores``), with the
    HOG weight that gives the best validation MRR (the first in ``weights`` on a tie); returns ``(metrics,
    weight)``. All similarities (Q, G) in ``retrieval_task`` order; ``hog_val`` / ``hog_test`` may be several
    matrices each (e.g. HOG's and the frozen trunk's), fused with one weight."""
    _, _, rel_val = retrieval_task(val_df)
    val_mrr = [mean_metrics(per_query_metrics(fuse_scores(learned_val, hog_val, w), rel_val))["mrr"] for w in weights]
    weight = weights[int(np.argmax(val_mrr))]
    return scores_metrics(fuse_scores(learned_test, hog_test, weight), test_df), weight


def fused_metrics(ckpts: str | Sequence[str], val_df: pd.DataFrame, test_df: pd.DataFrame, hog_val: np.ndarray,
                  hog_test: np.ndarray, weights: tuple[float, ...] = FUSION_WEIGHTS) -> tuple[dict[str, float], float]:
    """:func:`fuse_on_validation` of the checkpoint's scores (several checkpoints: their summed scores, as in
    :func:`ensemble_metrics`)."""
    learned = summed_scores([ckpts] if isinstance(ckpts, str) else ckpts, (val_df, test_df))
    return fuse_on_validation(*learned, val_df, test_df, hog_val, hog_test, weights)


def ensemble_metrics(ckpts: Sequence[str], df: pd.DataFrame) -> dict[str, float]:
    """:func:`scores_metrics` of several checkpoints' summed similarities on one index frame (:func:`summed_scores`).
    Nothing is chosen on ``df``."""
    return scores_metrics(summed_scores(ckpts, (df,))[0], df)
