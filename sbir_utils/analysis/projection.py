"""Figure 7: a 2-D projection (PCA or t-SNE) of the stage-1 embeddings of the test split."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch

from .. import engine
from ..data.index import DatasetSpec, read_index


@torch.no_grad()
def embedding_projection(checkpoint: str | Path, spec: DatasetSpec, test_csv: str = "index_test.csv",
                         method: str = "pca", seed: int = 0, color_by: str = "category",
                         batch_size: int = 64) -> pd.DataFrame:
    """Stage-1 embeddings of the test sketches and gallery photos (each once) projected to 2-D.

    Args:
        method: ``pca`` or ``tsne`` (scikit-learn, ``random_state=seed``, perplexity capped for small sets).
        color_by: index column naming each item's group (falls back to ``label``).
    Returns:
        ``x, y, modality (sketch | photo), group, file``.
    """
    if method not in ("pca", "tsne"):
        raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")
    model, cfg, _ = engine.load_model(checkpoint)
    df = read_index(spec.index_dir / test_csv, spec)
    col = color_by if color_by in df.columns else "label"
    sk = df.drop_duplicates("sketch_file")
    ph = df.drop_duplicates("image_file")
    s_emb, _ = engine.encode(model, sk["sketch_file"].tolist(), "sketch", cfg.image_size, batch_size, crop=cfg.crop)
    p_emb, _ = engine.encode(model, ph["image_file"].tolist(), "photo", cfg.image_size, batch_size,
                             photo_mode=cfg.photo_mode, crop=cfg.crop)
    z = torch.cat([s_emb, p_emb]).numpy()
    if method == "pca":
        from sklearn.decomposition import PCA

        xy = PCA(n_components=2, random_state=seed).fit_transform(z)
    else:
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(2.0, (len(z) - 1) / 3)))
        xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(z)
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1],
                         "modality": ["sketch"] * len(sk) + ["photo"] * len(ph),
                         "group": [*sk[col].astype(str), *ph[col].astype(str)],
                         "file": [*sk["sketch_file"], *ph["image_file"]]})


def plot_projection(panels: Mapping[str, pd.DataFrame], max_legend: int = 12) -> plt.Figure:
    """One scatter per title: colour = group, marker = modality (o sketch, ^ photo)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.0), squeeze=False)
    for ax, (title, df) in zip(axes[0], panels.items()):
        groups = sorted(df["group"].unique())
        cmap = plt.get_cmap("tab10" if len(groups) <= 10 else "tab20")
        for i, g in enumerate(groups):
            for modality, marker in (("sketch", "o"), ("photo", "^")):
                d = df[(df["group"] == g) & (df["modality"] == modality)]
                ax.scatter(d["x"], d["y"], s=18 if modality == "sketch" else 40, marker=marker,
                           color=cmap(i % cmap.N), edgecolors="k" if modality == "photo" else "none",
                           linewidths=0.5, alpha=0.8, label=f"{g} ({modality})" if len(groups) <= max_legend else None)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        if len(groups) <= max_legend:
            ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return fig
