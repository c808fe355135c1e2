"""The transfer table's rows and how it is written (:mod:`sbir_utils.transfer` trains and scores them): row
names in table order, ``--rows`` parsing, the mean and sd over seeds, and the Markdown table."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from .config import TrainConfig
    from .transfer import TransferPlan

ROWS = ("random", "HOG", "frozen-trunk", "scratch", "pretrained-init", "pretrained-init+HOG", "pretrained-refit",
        "pretrained-ensemble", "pretrained-ensemble+HOG", "pretrained-ensemble+HOG+frozen", "zero-shot", "fine-tuned")
FROZEN_ROWS = ("frozen-trunk", "pretrained-ensemble+HOG+frozen")  # need the frozen trunk's similarities
OPTIONAL_ROWS = ("frozen-trunk", "pretrained-init", "pretrained-init+HOG", "pretrained-refit", "pretrained-ensemble",
                 "pretrained-ensemble+HOG", "pretrained-ensemble+HOG+frozen")  # need weights
ENSEMBLE_ROWS = ("pretrained-ensemble", "pretrained-ensemble+HOG",
                 "pretrained-ensemble+HOG+frozen")  # need the section's ensemble members
FUSED_ROWS = ("pretrained-init+HOG", "pretrained-ensemble+HOG",
              "pretrained-ensemble+HOG+frozen")  # need HOG's validation and test similarities
HOG_ROWS = ("HOG", "random", *FUSED_ROWS)  # need HOG tuned (random: its query count)
METRICS = ("acc@1", "acc@10", "mrr")
GOAL = {"acc@1": 0.30, "acc@10": 0.75}  # issue 9, on a ~100-photo gallery of unseen shoes


def parse_rows(text: str | None, weights: str = "random") -> tuple[str, ...]:
    """``"HOG,pretrained-init"`` -> the rows in table order; ``None``: every row the weights allow.
    Unknown names and ``pretrained-init`` without weights are a ``ValueError`` naming the problem."""
    if text is None:
        return tuple(r for r in ROWS if r not in OPTIONAL_ROWS or weights != "random")
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in ROWS]
    if unknown or not names:
        raise ValueError(f"--rows: unknown row(s) {unknown or [text]}; choose from {list(ROWS)}")
    needs_weights = [n for n in names if n in OPTIONAL_ROWS]
    if needs_weights and weights == "random":
        raise ValueError(f"--rows {needs_weights[0]} needs pretrained weights (--weights imagenet | efficientnet_lite0 | "
                         "PATH)")
    return tuple(r for r in ROWS if r in names)


def summarise(long: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds per method, in ``ROWS`` order."""
    out = []
    for method in ROWS:
        g = long[long["method"] == method]
        if g.empty:
            continue
        row: dict[str, Any] = {"method": method, "seeds": int(g["seed"].notna().sum()) or 1}
        for m in METRICS:
            row[m] = g[m].mean()
            row[f"{m}_sd"] = g[m].std(ddof=1) if len(g) > 1 else float("nan")
        row["train_minutes"] = g["train_minutes"].mean()
        row["pairs_seen"] = int(g["pairs_seen"].mean())
        row["n_gallery"] = int(g["n_gallery"].iloc[0])
        row["detail"] = g["detail"].iloc[0]
        out.append(row)
    return pd.DataFrame(out)


def markdown(table: pd.DataFrame, plan: TransferPlan, cfg: TrainConfig, n_real: int, n_emb: int) -> str:
    """The table as Markdown, with the settings and the goal."""
    t = plan.settings()
    lines = ["| method | seeds | acc@1 | acc@10 | MRR | CPU training (min) | training pairs seen | detail |",
             "|---|---|---|---|---|---|---|---|"]
    for r in table.to_dict("records"):
        cells = [f"{r[m]:.3f}" + ("" if math.isnan(r[f"{m}_sd"]) else f" ± {r[f'{m}_sd']:.3f}") for m in METRICS]
        lines.append(f"| {r['method']} | {r['seeds']} | {' | '.join(cells)} | {r['train_minutes']:.1f} | "
                     f"{r['pairs_seen']} | {r['detail']} |")
    head = (f"Real-data transfer on `{plan.real_root}` (gallery {int(table['n_gallery'].iloc[0])} test photos; "
            f"{n_real} real / {n_emb} embedded training pairs). Model: {cfg.model}, backbone {cfg.backbone}, "
            f"{cfg.image_size} px, photos {cfg.photo_mode}{', cropped to the object' if cfg.crop else ''}, loss {cfg.loss}, batch {cfg.batch_size}, lr {cfg.lr}, profile `{plan.profile}`. "
            f"Mean ± sd over seeds {list(t.seeds)}. Goal: acc@1 >= {GOAL['acc@1']:.2f}, "
            f"acc@10 >= {GOAL['acc@10']:.2f}.")
    return head + "\n\n" + "\n".join(lines) + "\n"
