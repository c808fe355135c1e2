"""Figures 1 and 2: the worst queries (sketch, correct photo, top 5) and the rank histograms."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import matplotlib.ticker as ticker
import numpy as np
import pandas as pd

from ..data.images import load_image
from ..data.transforms import square
from .loading import RunResults


def _show(ax: plt.Axes, path: str | Path, kind: str, title: str = "", red: bool = False, size: int = 128) -> None:
    ax.imshow(square(load_image(path, kind=kind), size, kind), cmap="gray" if kind == "sketch" else None,
              vmin=0, vmax=255)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(red)
        if red:
            spine.set_edgecolor("red")
            spine.set_linewidth(4)
    if title:
        ax.set_title(title, fontsize=7)


def worst_queries(res: RunResults, n: int = 6) -> pd.DataFrame:
    """The ``n`` queries with the largest rank of their correct photo (ties: lower query index first)."""
    return res.queries.sort_values("rank", ascending=False, kind="stable").head(n)


def plot_worst_queries(res: RunResults, n: int = 6, top: int = 5) -> plt.Figure:
    """Grid: one row per worst query: the sketch, its top-``top`` photos (correct ones outlined in red)
    and the true photo with its rank."""
    rows = worst_queries(res, n)
    relevant, tops = np.asarray(res.details["relevant"]), np.asarray(res.details["top"])
    gallery = res.details["gallery_files"]
    k = min(top, tops.shape[1])
    fig, axes = plt.subplots(len(rows), k + 2, figsize=(1.45 * (k + 2), 1.6 * len(rows)), squeeze=False)
    for r, (qi, row) in enumerate(rows.iterrows()):
        _show(axes[r, 0], row["sketch_file"], "sketch", f"query {Path(row['sketch_file']).name}")
        for j in range(k):
            g = int(tops[qi, j])
            _show(axes[r, j + 1], gallery[g], "photo", f"#{j + 1}", red=bool(relevant[qi, g]))
        _show(axes[r, k + 1], row["true_file"], "photo", f"true, rank {int(row['rank'])}/{res.n_gallery}", red=True)
    fig.suptitle(f"{res.name}: worst {len(rows)} test queries (red = correct photo)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_rank_histograms(panels: Mapping[str, Mapping[str, RunResults]]) -> plt.Figure:
    """One panel per title, one step histogram per legend label: the fraction of queries whose first
    correct photo is at each rank, log-spaced bins from 1 to the gallery size, log-scale x."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
    for ax, (title, entries) in zip(axes[0], panels.items()):
        for label, res in entries.items():
            ranks = res.queries["rank"].to_numpy()
            edges = np.unique(np.round(np.geomspace(1, res.n_gallery + 1, 25)))
            ax.hist(ranks, bins=edges, weights=np.full(len(ranks), 1 / len(ranks)), histtype="step", linewidth=1.6,
                    label=f"{label} (G={res.n_gallery}, median {np.median(ranks):g})")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel("rank of the first correct photo")
        ax.set_ylabel("fraction of queries")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
