"""Notebook 06's side of the real-data transfer table (:mod:`sbir_utils.transfer`): whether it applies to the
notebook's data, where its runs live, the finished table, and its two figures."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from . import paths
from .data.index import load_spec
from .transfer import GOAL

HOW_TO = """No real fine-grained data was given, so there is nothing to transfer to. With a real set, e.g. the
200-shoe set described in the README:

    sbir index folders PATH/shoes-real-dev --out DATA/shoes-transfer --test_fraction 0.5 --val_fraction 0.2 --seed 0
    make reproduce DATASET=shoes-transfer DATA_ROOT=DATA/shoes-transfer      # or: sbir transfer --real_root ... --out ...
"""


def transfer_dir(profile: str, dataset: str) -> Path:
    """Where notebook 06 keeps the transfer runs and table of ``dataset`` (``runs/<profile>/<dataset>/transfer``)."""
    return paths.runs_dir() / profile / dataset / "transfer"


def applicable(dataset: str, data_root: str | Path | None) -> tuple[bool, str]:
    """Whether the transfer table can be built for this notebook's data, and if not, why."""
    if dataset == "embedded" or data_root is None:
        return False, HOW_TO
    try:
        spec = load_spec(data_root)
    except (FileNotFoundError, ValueError) as exc:
        return False, f"{data_root}: {exc}"
    if spec.protocol != "fine":
        return False, f"{spec.index_dir}: protocol {spec.protocol!r}; the transfer table needs fine-grained data"
    if not spec.csv("test").is_file():
        return False, f"{spec.csv('test')}: missing; the transfer table evaluates on the test split"
    return True, ""


def load_table(out: str | Path) -> pd.DataFrame | None:
    """``transfer.csv`` of a finished table, or None."""
    f = Path(out) / "transfer.csv"
    return pd.read_csv(f) if f.is_file() else None


def plot_table(table: pd.DataFrame) -> plt.Figure:
    """acc@1 and acc@10 per method (mean, error bar = sd over seeds), the goal as a dashed line."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, m in zip(axes, ("acc@1", "acc@10")):
        ax.bar(table["method"], table[m], yerr=table[f"{m}_sd"].fillna(0), capsize=4, color="#4c72b0")
        ax.axhline(GOAL[m], ls="--", color="#c44e52", label=f"goal {GOAL[m]:.2f}")
        ax.set_title(f"{m} on real test shoes (gallery {int(table['n_gallery'].iloc[0])})")
        ax.set_ylim(0, 1)
        ax.tick_params(axis="x", rotation=20)
        ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def learning_curves(out: str | Path, metric: str = "val_mrr") -> plt.Figure:
    """Validation ``metric`` per epoch of the scratch, fine-tuned and (when run) pretrained-init runs, every seed."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, color in (("scratch", "#55a868"), ("fine-tuned", "#4c72b0"), ("pretrained-init", "#dd8452")):
        for i, f in enumerate(sorted((Path(out) / "runs" / name).glob("seed*/metrics.csv"))):
            h = pd.read_csv(f)
            ax.plot(h["epoch"], h[metric], color=color, alpha=0.8, label=name if i == 0 else None)
    ax.set_xlabel("real-data epoch")
    ax.set_ylabel(metric)
    ax.legend()
    fig.tight_layout()
    return fig
