"""The transfer table's non-learned references and the rows that fuse them with learned scores
(:mod:`sbir_utils.transfer` builds the table): ``random`` and ``HOG`` (HOG tuned on the real training split
only), ``frozen-trunk`` (the pretrained trunk untrained, ``baselines.frozen_trunk_baseline``), and one
fused row of a seed (``pretrained-init+HOG``, ``pretrained-ensemble+HOG``, ``pretrained-ensemble+HOG+frozen``)."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import numpy as np
import pandas as pd

from .baselines import frozen_trunk_baseline, hog_baseline, random_scores, retrieval_task
from .config import TrainConfig, TransferConfig
from .data.index import DatasetSpec, read_index
from .fusion import fuse_on_validation, scores_metrics
from .metrics import mean_metrics, per_query_metrics
from .models.frozen_shape import GRID, PHOTO_MODE, STRIDE
from .transfer_table import FUSED_ROWS, HOG_ROWS, METRICS


@dataclasses.dataclass
class HogReference:
    """HOG as tuned on the real training split: its label, and its validation / test similarities (Q, G) in
    ``retrieval_task`` order (only when the fused row needs them); the frozen trunk's too (``frozen``)."""
    label: str
    val_df: pd.DataFrame | None = None
    sims: tuple[np.ndarray, np.ndarray] | None = None
    frozen: tuple[np.ndarray, np.ndarray] | None = None


def baseline_rows(t: TransferConfig, wanted: tuple[str, ...], real: DatasetSpec, train_df: pd.DataFrame,
                   test_df: pd.DataFrame) -> tuple[list[dict[str, Any]], HogReference | None]:
    """The ``random`` and ``HOG`` rows that are wanted, and HOG for the fused rows; HOG is tuned (once, on the
    training shoes) only when a row of ``HOG_ROWS`` is wanted."""
    from . import baselines  # looked up at call time (tests spy on baseline_per_query)

    if not set(HOG_ROWS) & set(wanted):
        return [], None
    _, _, relevant = retrieval_task(test_df)
    grid = {**baselines.HOG_GRID, "crop": [False, True]}
    per_query, hog_best, nq, ng = baselines.baseline_per_query(train_df, test_df, seed=t.seeds[0], grid=grid)
    hog = HogReference(next(label for label in per_query if label != "random"))
    if set(FUSED_ROWS) & set(wanted):
        hog.val_df = read_index(real.csv("val"), real)
        hog.sims = tuple(hog_baseline(*retrieval_task(df)[:2], **hog_best) for df in (hog.val_df, test_df))
    frames = [("HOG", None, per_query[hog.label], hog.label)]
    frames += [("random", seed, per_query_metrics(random_scores(nq, ng, seed), relevant), "uniform random scores")
               for seed in t.seeds]
    rows = []
    for name, seed, frame, detail in (f for f in frames if f[0] in wanted):
        vals = mean_metrics(frame)
        rows.append({"method": name, "seed": seed, **{m: vals[m] for m in METRICS}, "n_queries": nq,
                     "n_gallery": ng, "train_minutes": 0.0, "pairs_seen": 0, "detail": detail})
    return rows, hog


def frozen_rows(t: TransferConfig, init_cfg: TrainConfig, wanted: tuple[str, ...], test_df: pd.DataFrame,
                 hog: HogReference | None) -> list[dict[str, Any]]:
    """The ``frozen-trunk`` row, if wanted; the frozen trunk's validation and test similarities go to
    ``hog.frozen`` when the fused row needs them (``hog`` made by :func:`baseline_rows` for it)."""
    frames = (test_df,) if hog is None or hog.val_df is None else (hog.val_df, test_df)
    sims = [frozen_trunk_baseline(*retrieval_task(df)[:2], init_cfg.backbone, t.weights, init_cfg.image_size,
                                  crop=init_cfg.crop) for df in frames]
    if hog is not None and len(sims) == 2:
        hog.frozen = (sims[0], sims[1])
    if "frozen-trunk" not in wanted:
        return []
    m = scores_metrics(sims[-1], test_df)
    return [{"method": "frozen-trunk", "seed": None, **{k: m[k] for k in (*METRICS, "n_queries", "n_gallery")},
             "train_minutes": 0.0, "pairs_seen": 0,
             "detail": f"{init_cfg.backbone} with {t.weights} weights, frozen: stride-{STRIDE} maps of sketches and "
                       f"{PHOTO_MODE.upper()} photos on a {GRID} x {GRID} grid, {init_cfg.image_size} px, cosine; nothing trained"}]


def fused_row(method: str, learned: list[np.ndarray], seed: int, minutes: float, pairs: int, what: str,
              hog: HogReference | None, test_df: pd.DataFrame, best_epoch: int | None = None) -> dict[str, Any]:
    """A HOG-fused row of one seed (``pretrained-init+HOG``, ``pretrained-ensemble+HOG``; ``...+frozen``: HOG and
    the frozen trunk, one weight for both): learned similarities ``[validation, test]`` (``what`` says whose)
    fused with HOG's (and the frozen trunk's), the weight chosen on validation MRR (``hog``: :func:`baseline_rows`)."""
    assert hog is not None and hog.sims is not None and hog.val_df is not None  # baseline_rows made them
    others = [hog.sims, *([hog.frozen] if method.endswith("+frozen") else [])]  # each (validation, test)
    scores, weight = fuse_on_validation(*learned, hog.val_df, test_df, [o[0] for o in others], [o[1] for o in others])
    m = {k: scores[k] for k in (*METRICS, "n_queries", "n_gallery")}
    print(f"{method} seed {seed}: acc@1 {m['acc@1']:.3f} acc@10 {m['acc@10']:.3f} "
          f"mrr {m['mrr']:.3f} (weight {weight:g})", file=sys.stderr)
    return {"method": method, "seed": seed, **m, "train_minutes": minutes, "pairs_seen": pairs,
            **({} if best_epoch is None else {"best_epoch": best_epoch}),
            "detail": f"{what} fused with {hog.label}{' and frozen-trunk' if len(others) > 1 else ''} at test time, "
                      f"{'HOG weight' if len(others) == 1 else 'one weight for both,'} {weight:g} chosen on validation MRR"}
