"""Figures 3 and 8: metrics by group (category, drawer) with bootstrap CIs, and seen against unseen drawers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..metrics import bootstrap_ci, metric_name
from .loading import RunResults


def metric_table(groups: Mapping[str, pd.DataFrame], metrics: Sequence[str] = ("acc@1", "rr"),
                 n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Mean and 95% bootstrap interval of per-query ``metrics`` in each group of queries.

    Args:
        groups: name -> per-query rows (e.g. ``RunResults.queries`` or a subset of it).
        metrics: per-query columns (``acc@1``, ``acc@10``, ``rr``, ``ap`` ...).
    Returns:
        long table ``group, metric, value, ci_low, ci_high, n`` (metric names as reported: ``rr`` -> ``mrr``).
    """
    rows = []
    for name, df in groups.items():
        for m in metrics:
            mean, low, high = bootstrap_ci(df[m].to_numpy(dtype=np.float64), n_resamples, seed)
            rows.append({"group": name, "metric": metric_name(m), "value": mean, "ci_low": low, "ci_high": high,
                         "n": len(df)})
    return pd.DataFrame(rows, columns=["group", "metric", "value", "ci_low", "ci_high", "n"])


def per_group(res: RunResults, by: str = "category", metrics: Sequence[str] = ("acc@1", "rr"),
              n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """:func:`metric_table` with one group per value of the query column ``by`` (e.g. ``category``)."""
    if by not in res.queries.columns:
        raise ValueError(f"{res.spec.csv('test')}: no column {by!r} to group the queries by "
                         f"(columns: {list(res.queries.columns)})")
    groups = {str(k): g for k, g in res.queries.groupby(by, sort=True)}
    return metric_table(groups, metrics, n_resamples, seed)


def has_drawers(res: RunResults) -> bool:
    """True when :func:`drawer_split` can tell seen from unseen drawers."""
    q = res.queries
    return "drawer_unseen" in q.columns or ("drawer" in q.columns and "unseen_drawers" in res.spec.info)


def drawer_split(res: RunResults, metrics: Sequence[str] = ("acc@1", "rr"), n_resamples: int = 1000,
                 seed: int = 0) -> pd.DataFrame:
    """:func:`metric_table` of queries by seen vs unseen drawers (``drawer_unseen`` column of the index,
    else ``drawer`` against ``unseen_drawers`` of ``dataset.json``)."""
    q = res.queries
    if not has_drawers(res):
        raise ValueError(f"{res.spec.index_dir}: the index has no drawer_unseen (or drawer + dataset.json "
                         "unseen_drawers) information")
    if "drawer_unseen" in q.columns:
        unseen = q["drawer_unseen"].astype(str).str.strip().isin(("1", "True", "true"))
    elif "drawer" in q.columns and "unseen_drawers" in res.spec.info:
        unseen = q["drawer"].astype(str).isin({str(d) for d in res.spec.info["unseen_drawers"]})
    return metric_table({"seen drawers": q[~unseen], "unseen drawers": q[unseen]}, metrics, n_resamples, seed)


def plot_metric_tables(panels: Mapping[str, pd.DataFrame], ylabel: str = "value") -> plt.Figure:
    """One panel per :func:`metric_table`: grouped bars (x = group, one bar per metric) with 95% interval
    whiskers and the number of queries of each group."""
    widths = [max(1, table["group"].nunique() * table["metric"].nunique()) for table in panels.values()]
    fig, axes = plt.subplots(1, len(panels), figsize=(max(4.0, 0.9 * sum(widths) + 1.5 * len(panels)), 3.3),
                             squeeze=False, gridspec_kw={"width_ratios": widths})
    for ax, (title, table) in zip(axes[0], panels.items()):
        groups, metrics = list(dict.fromkeys(table["group"])), list(dict.fromkeys(table["metric"]))
        width = 0.8 / max(1, len(metrics))
        x = np.arange(len(groups))
        for i, m in enumerate(metrics):
            t = table[table["metric"] == m].set_index("group").reindex(groups)
            err = np.vstack([t["value"] - t["ci_low"], t["ci_high"] - t["value"]])
            ax.bar(x + (i - (len(metrics) - 1) / 2) * width, t["value"], width, yerr=err, capsize=3, label=m)
        counts = table.drop_duplicates("group").set_index("group").reindex(groups)["n"]
        ax.set_xticks(x, [f"{g}\n(n={n})" for g, n in zip(groups, counts)], fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
        ax.grid(axis="y", alpha=0.3)
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
