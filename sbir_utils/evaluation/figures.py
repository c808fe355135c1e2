"""The test-results figure: bar charts with 95% CI error bars."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def _bars(ax: plt.Axes, labels: list[str], rows: list[pd.Series | None], color: str, offset: float, width: float,
          label: str) -> None:
    """Bars at ``arange(len(labels)) + offset`` with asymmetric CI error bars; missing rows are left out."""
    keep = [i for i, r in enumerate(rows) if r is not None]
    vals = np.array([rows[i]["value"] for i in keep], dtype=float)
    err = np.array([[rows[i]["value"] - rows[i]["ci_low"], rows[i]["ci_high"] - rows[i]["value"]] for i in keep],
                   dtype=float).reshape(-1, 2).T
    ax.bar(np.asarray(keep, dtype=float) + offset, vals, width, yerr=err, capsize=3, color=color, label=label)


def _pick(results: pd.DataFrame, run: str, stage: str, metric: str) -> pd.Series | None:
    hit = results[(results["run"] == run) & (results["stage"] == stage) & (results["metric"] == metric)]
    return hit.iloc[0] if len(hit) else None  # the first seed: runs are listed in seed order


def plot_test_results(results: pd.DataFrame) -> plt.Figure:
    """Bar charts with 95% CI error bars (first seed): the AAFG ablation's acc@1 (stage 1 and stage 2,
    with the random and HOG baselines of the same split as lines), and the scene models' R@1 and R@10 on
    the normal split against the unseen-drawer split."""
    ablation = list(dict.fromkeys(results.loc[results["group"] == "ablation", "run"]))
    scene = [r for r in dict.fromkeys(results.loc[results["family"] == "convnext", "run"])
             if r in ("convnext-normal", "convnext-unseen-user")]
    panels = [p for p, ok in (("ablation", ablation), ("scene", scene)) if ok]
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(5.2 * max(1, len(panels)), 3.6), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        if panel == "ablation":
            labels = [r.split("-")[-1] if r.count("-") >= 2 else r for r in ablation]
            _bars(ax, labels, [_pick(results, r, "stage1", "acc@1") for r in ablation], "#4c72b0", -0.2, 0.4,
                  "stage 1")
            s2 = [_pick(results, r, "stage2", "acc@1") for r in ablation]
            if any(r is not None for r in s2):
                _bars(ax, labels, s2, "#dd8452", 0.2, 0.4, "stage 2 (re-ranked)")
            data = results.loc[results["run"] == ablation[0], "data"].iloc[0]
            base = results[(results["family"] == "baseline") & (results["data"] == data) & (results["metric"] == "acc@1")]
            for (name, g), style in zip(base.groupby("run", sort=False), (":", "--")):
                ax.axhline(g["value"].iloc[0], color="k", ls=style, lw=1, label=f"{name} baseline")
            ax.set_xticks(np.arange(len(labels)), labels)
            ax.set_ylabel("acc@1 (test)")
            ax.set_title(f"AAFG ablation, {data} test split")
        else:
            labels = ["R@1", "R@10"]
            for i, (run, color) in enumerate(zip(scene, ("#4c72b0", "#55a868"))):
                rows = [_pick(results, run, "stage1", m) for m in ("acc@1", "acc@10")]
                name = "normal split" if run == "convnext-normal" else "unseen drawers"
                n = next((int(r["n_queries"]) for r in rows if r is not None), 0)
                _bars(ax, labels, rows, color, -0.2 + 0.4 * i, 0.4, f"{name} ({n} queries)")
            ax.set_xticks(np.arange(len(labels)), labels)
            ax.set_ylabel("recall (test)")
            ax.set_title("ConvNeXt-InfoNCE, scene-level")
        ax.set_ylim(0, 1)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig
