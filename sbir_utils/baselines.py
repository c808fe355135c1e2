"""Non-learned baselines that calibrate the learned models' numbers: random scores, HOG descriptors of
sketches against HOG descriptors of photos (as greyscale, or as edge maps so they look drawn), and a frozen
pretrained trunk's mid-level feature maps compared the same way (``frozen_trunk_baseline``).

Every baseline returns a similarity matrix (Q, G), higher = closer, ready for ``sbir_utils.metrics``.
HOG features are plain vectors, so ``metrics.evaluate_embeddings`` can also take them as embeddings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from skimage.feature import hog
from sklearn.model_selection import ParameterGrid

from .data.images import load_image
from .data.transforms import crop_to_object, photo_to_sketchlike, square_grey
from .metrics import mean_metrics, per_query_metrics
from .retrieval_task import retrieval_task as build_task

HOG_DEFAULTS: dict[str, Any] = {
    "orientations": 9,
    "pixels_per_cell": (8, 8),
    "cells_per_block": (2, 2),
    "block_norm": "L2-Hys",
}
# Parameters of the image preparation (not of skimage's hog) that hog_baseline and tune_hog accept.
_PREP_KEYS = ("size", "photo_mode", "edge_sigma", "edge_size", "crop")


def random_scores(n_queries: int, n_gallery: int, seed: int = 0) -> np.ndarray:
    """(Q, G) scores uniform in [0, 1), the chance baseline (expected acc@1 = #relevant / G)."""
    return np.random.default_rng(seed).random((n_queries, n_gallery))


def _hog_kwargs(hog_params: Mapping[str, Any]) -> dict[str, Any]:
    params = {**HOG_DEFAULTS, **hog_params}
    for key in ("pixels_per_cell", "cells_per_block"):
        if isinstance(params[key], int):
            params[key] = (params[key], params[key])
    return params


def hog_features(images: Sequence[Image.Image], size: int = 64, **hog_params: Any) -> np.ndarray:
    """HOG descriptors of greyscale versions of ``images`` (padded square, resized to ``size``).

    Args:
        images: N PIL images (sketches, or photos already passed through ``photo_to_sketchlike``).
        **hog_params: ``skimage.feature.hog`` arguments; defaults ``HOG_DEFAULTS`` (ints are accepted for
            ``pixels_per_cell`` and ``cells_per_block``).
    Returns:
        (N, F) float32.
    """
    params = _hog_kwargs(hog_params)
    feats = [
        hog(np.asarray(square_grey(img, size), dtype=np.float64) / 255.0, feature_vector=True, **params)
        for img in images
    ]
    if not feats:
        raise ValueError("no images given")
    return np.stack(feats).astype(np.float32)


FUSION_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)  # HOG weights that fused rows choose from on validation


def fuse_scores(learned: np.ndarray, other: np.ndarray | Sequence[np.ndarray], weight: float) -> np.ndarray:
    """Late fusion of similarity matrices (Q, G): each row z-scored (mean 0, sd 1 over the gallery, so
    neither score's scale dominates), then ``z(learned) + weight * z(other)``; ``other`` may be several
    matrices, each z-scored and summed (``weight`` applies to each). ``weight`` 0 ranks as ``learned``
    does; a large one as ``other`` does. Rows with no spread count as all zeros."""
    def z(sim: np.ndarray) -> np.ndarray:
        sim = np.asarray(sim, dtype=np.float64)
        sd = sim.std(axis=1, keepdims=True)
        return (sim - sim.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0)

    others = [other] if isinstance(other, np.ndarray) else list(other)
    for o in others:
        if np.shape(learned) != np.shape(o):
            raise ValueError(f"fuse_scores: shapes differ, {np.shape(learned)} and {np.shape(o)}")
    return z(learned) + float(weight) * sum((z(o) for o in others), np.zeros(np.shape(learned)))


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def _load_all(items: Sequence[str | Path | Image.Image], kind: str) -> list[Image.Image]:
    return [x if isinstance(x, Image.Image) else load_image(x, kind=kind) for x in items]


def _hog_sim(
    sketches: Sequence[Image.Image],
    photos: Sequence[Image.Image],
    size: int,
    photo_mode: str,
    edge_sigma: float,
    edge_size: int | None,
    hog_params: Mapping[str, Any],
    crop: bool = False,
) -> np.ndarray:
    if crop:
        sketches = [crop_to_object(s, "sketch") for s in sketches]
        photos = [crop_to_object(p, "photo") for p in photos]
    prepared = [photo_to_sketchlike(p, photo_mode, size, edge_sigma, edge_size) for p in photos]
    return _cosine(hog_features(sketches, size, **hog_params), hog_features(prepared, size, **hog_params))


def hog_baseline(
    query_sketch_paths: Sequence[str | Path],
    gallery_photo_paths: Sequence[str | Path],
    size: int = 64,
    photo_mode: str = "edges",
    edge_sigma: float = 1.0,
    edge_size: int | None = None,
    crop: bool = False,
    **hog_params: Any,
) -> np.ndarray:
    """Cosine similarity (Q, G) of HOG descriptors of query sketches and gallery photos.

    Sketches are loaded with ``load_image(kind="sketch")``, photos with ``kind="photo"`` and then made
    sketch-like by ``photo_to_sketchlike(photo_mode, edge_sigma, edge_size)``; with ``crop`` both are
    first cropped to their drawing / object (``data.transforms.crop_to_object``). Paths may also be PIL images.
    """
    sketches = _load_all(query_sketch_paths, "sketch")
    photos = _load_all(gallery_photo_paths, "photo")
    return _hog_sim(sketches, photos, size, photo_mode, edge_sigma, edge_size, hog_params, crop)


def tune_hog(
    train_queries: Sequence[str | Path | Image.Image],
    train_gallery: Sequence[str | Path | Image.Image],
    train_relevant: np.ndarray,
    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Sequence[Any]]],
    metric: str = "mrr",
    return_table: bool = False,
) -> dict[str, Any] | tuple[dict[str, Any], pd.DataFrame]:
    """Pick HOG baseline settings on training data only (never the test split).

    Args:
        train_queries: Q sketch paths (or PIL images); train_gallery: G photo paths (or images).
        train_relevant: (Q, G) bool.
        grid: ``sklearn.model_selection.ParameterGrid`` input over ``size``, ``photo_mode``,
            ``edge_sigma``, ``edge_size``, ``crop`` and ``skimage.feature.hog`` arguments, e.g.
            ``{"size": [64], "photo_mode": ["grey", "edges"], "pixels_per_cell": [8, 16]}``.
        metric: a reported metric name (``mrr``, ``acc@1``, ``mAP@all``, ...) to maximise; the first
            setting in grid order wins ties.
        return_table: also return a DataFrame with every setting and its score.
    Returns:
        The best settings as keyword arguments for ``hog_baseline`` (and the table if asked).
    """
    sketches = _load_all(train_queries, "sketch")
    photos = _load_all(train_gallery, "photo")
    rows = []
    for params in ParameterGrid(grid):
        prep = {"size": 64, "photo_mode": "edges", "edge_sigma": 1.0, "edge_size": None, "crop": False}
        prep.update({k: v for k, v in params.items() if k in _PREP_KEYS})
        hog_params = {k: v for k, v in params.items() if k not in _PREP_KEYS}
        sim = _hog_sim(
            sketches,
            photos,
            prep["size"],
            prep["photo_mode"],
            prep["edge_sigma"],
            prep["edge_size"],
            hog_params,
            prep["crop"],
        )
        per_query = per_query_metrics(sim, np.asarray(train_relevant, dtype=bool), p_ks=())
        scores = mean_metrics(per_query)
        if metric not in scores:
            raise ValueError(f"metric must be one of {sorted(scores)}, got {metric!r}")
        rows.append({**prep, **hog_params, "score": scores[metric]})
    if not rows:
        raise ValueError("the grid is empty")
    table = pd.DataFrame(rows)
    best = {k: v for k, v in rows[int(np.argmax(table["score"].to_numpy()))].items() if k != "score"}
    return (best, table) if return_table else best


# ---- the baselines' evaluation core (notebook 04 for every test split, the audit's calibration, the
# transfer table) -----------------------------------------------------------------------------------

HOG_GRID: dict[str, list] = {"size": [64], "photo_mode": ["grey", "edges"], "pixels_per_cell": [(8, 8), (16, 16)]}


def frozen_trunk_baseline(query_sketch_paths: Sequence[str], gallery_photo_paths: Sequence[str], backbone: str,
                          weights: str, image_size: int, photo_mode: str | None = None, crop: bool = True
                          ) -> np.ndarray:
    """Cosine similarity (Q, G) of a frozen pretrained trunk's mid-level shape descriptors
    (``models.frozen_shape.FrozenShape``) of query sketches and gallery photos (photos as ``photo_mode``,
    ``transforms.photo_input``; default ``frozen_shape.PHOTO_MODE``; ``crop``: both cropped to the drawing /
    object first). Nothing is trained."""
    from .engine.inference import encode
    from .models.frozen_shape import PHOTO_MODE, FrozenShape

    photo_mode = photo_mode or PHOTO_MODE
    model = FrozenShape(backbone, weights)
    sketches, _ = encode(model, list(query_sketch_paths), "sketch", image_size, photo_mode=photo_mode, crop=crop)
    photos, _ = encode(model, list(gallery_photo_paths), "photo", image_size, photo_mode=photo_mode, crop=crop)
    return (sketches @ photos.T).numpy()


def retrieval_task(df: pd.DataFrame) -> tuple[list[str], list[str], np.ndarray]:
    """Queries (every row's sketch), gallery (each photo once) and ``relevant`` (Q, G): same label
    (``retrieval_task.retrieval_task`` with every row a query)."""
    task = build_task(df, distinct_queries=False)
    return task.query_files, task.gallery_files, task.relevant


def baseline_per_query(train: pd.DataFrame, test: pd.DataFrame, seed: int = 0, grid: dict | None = None,
                       max_tuning_queries: int = 300) -> tuple[dict[str, pd.DataFrame], dict[str, Any], int, int]:
    """Per-query metrics of the random ranking and of HOG on ``test``; HOG settings tuned on ``train`` only.

    Tuning uses at most ``max_tuning_queries`` training rows (seeded sample) against their photos.
    Returns ``({method label: per-query DataFrame}, best HOG settings, n_queries, n_gallery)``; the HOG
    label names its settings, e.g. ``"HOG size=64, photo_mode=edges, pixels_per_cell=(8, 8)"``.
    """
    if len(train) > max_tuning_queries:
        train = train.sample(n=max_tuning_queries, random_state=seed)
    tq, tg, trel = retrieval_task(train)
    best = tune_hog(tq, tg, trel, grid or HOG_GRID)
    queries, gallery, relevant = retrieval_task(test)
    hog_label = "HOG " + ", ".join(f"{k}={v}" for k, v in best.items()
                                   if v is not None and not (k == "crop" and v is False))
    out = {}
    for method, sim in (("random", random_scores(len(queries), len(gallery), seed)),
                        (hog_label, hog_baseline(queries, gallery, **best))):
        out[method] = per_query_metrics(sim, relevant)
    return out, best, len(queries), len(gallery)
