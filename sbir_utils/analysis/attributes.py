"""Figure 4: attribute confusions, how the wrong top-1 photos differ from the correct ones."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .loading import RunResults


def _differs(a: pd.Series, b: pd.Series, continuous: bool, tol: float) -> np.ndarray:
    """Element-wise "attribute differs" of two series of equal length, by position (NaN where either is
    not applicable)."""
    a, b = a.reset_index(drop=True), b.reset_index(drop=True)
    both = (a.notna() & b.notna()).to_numpy()
    if continuous:
        diff = np.abs(pd.to_numeric(a, errors="coerce") - pd.to_numeric(b, errors="coerce")).to_numpy() > tol
    else:
        diff = a.astype(str).to_numpy() != b.astype(str).to_numpy()
    return np.where(both, diff.astype(np.float64), np.nan)


def _is_continuous(name: str, categories: Sequence[str]) -> bool:
    from ..data.procedural import shapes

    return any(isinstance(shapes.CATEGORY_SPECS.get(c, {}).get(name), shapes.Continuous) for c in categories)


def confusions(res: RunResults, attributes: pd.DataFrame) -> pd.DataFrame:
    """The queries whose top-1 photo is wrong but of the query's category (``attributes``: photo id ->
    ``category``, from ``procedural.load_attributes``; the index's labels must be photo ids)."""
    attrs = attributes.drop_duplicates("photo_id").set_index("photo_id")
    q = res.queries
    missing = sorted(set(q["label"]).union(q["top1_label"]) - set(attrs.index))
    if missing:
        raise ValueError(f"attributes: no row for photo id(s) {missing[:5]} (is the index fine-grained, label = photo id?)")
    err = q[q["top1_label"] != q["label"]]
    same = attrs.loc[err["top1_label"], "category"].to_numpy() == attrs.loc[err["label"], "category"].to_numpy()
    return err[same]


def attribute_confusion(res: RunResults, attributes: pd.DataFrame, continuous_tol: float | None = None
                        ) -> pd.DataFrame:
    """Which attribute differences go with top-1 confusions inside a category (fine-grained, procedural set).

    For every query whose top-1 photo is wrong but of the same category, each attribute either differs
    between the retrieved and the true photo or not. The expected rate is how often it differs between two
    distinct gallery photos of that category (all such pairs, exactly), averaged over the same errors;
    ``lift = observed / expected``: above 1, the model confuses photos that differ in that attribute more
    often than chance; below 1, such differences protect against confusion. ``lift_low`` / ``lift_high``:
    the 95% Wilson score interval of the observed rate (a proportion of errors) divided by the expected
    rate, which is exact given the errors' categories.

    Args:
        attributes: ``procedural.load_attributes(root)``: ``photo_id, category, attr_*`` (label = photo id).
        continuous_tol: continuous attributes differ when ``|a - b| > tol`` (default: just above the
            generator's jitter between members of one family, ``2 * CONTINUOUS_JITTER + 0.005``).
    Returns:
        one row per ``attr_*`` column: ``attribute, n_errors, observed, expected, lift, lift_low, lift_high``
        (NaN where no same-category error has the attribute).
    """
    from scipy.stats import binomtest

    from ..data.procedural import shapes

    tol = 2 * shapes.CONTINUOUS_JITTER + 0.005 if continuous_tol is None else float(continuous_tol)
    attrs = attributes.drop_duplicates("photo_id").set_index("photo_id")
    cols = [c for c in attrs.columns if c.startswith("attr_")]
    err = confusions(res, attributes)
    gallery = attrs.loc[sorted(set(res.details["gallery_labels"]) & set(attrs.index))]
    cats = sorted(gallery["category"].unique())
    rows = []
    for col in cols:
        cont = _is_continuous(col.removeprefix("attr_"), cats)
        expected_by_cat = {}
        for cat, g in gallery.groupby("category"):
            i, j = np.triu_indices(len(g), k=1)
            d = _differs(g[col].iloc[i], g[col].iloc[j], cont, tol)
            expected_by_cat[cat] = float(np.nanmean(d)) if np.isfinite(d).any() else np.nan
        obs = _differs(attrs.loc[err["top1_label"], col], attrs.loc[err["label"], col], cont, tol)
        exp = np.asarray([expected_by_cat.get(c, np.nan) for c in attrs.loc[err["label"], "category"]])
        ok = np.isfinite(obs) & np.isfinite(exp)
        row = {"attribute": col.removeprefix("attr_"), "kind": "continuous" if cont else "discrete",
               "n_errors": int(ok.sum()), "observed": np.nan, "expected": np.nan, "lift": np.nan,
               "lift_low": np.nan, "lift_high": np.nan}
        if ok.any():
            k, n = int(obs[ok].sum()), int(ok.sum())
            ci = binomtest(k, n).proportion_ci(0.95, method="wilson")
            mean, low, high = k / n, float(ci.low), float(ci.high)
            e = float(exp[ok].mean())
            row.update(observed=mean, expected=e)
            if e > 0:
                row.update(lift=mean / e, lift_low=low / e, lift_high=high / e)
        rows.append(row)
    return pd.DataFrame(rows)


def plot_attribute_confusion(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """Horizontal bars of lift per attribute (95% whiskers), 1 = chance; attributes without errors left out."""
    t = table.dropna(subset=["lift"]).sort_values("lift")
    fig, ax = plt.subplots(figsize=(5.5, 0.25 * max(len(t), 4) + 1.2))
    if len(t):
        err = np.vstack([t["lift"] - t["lift_low"], t["lift_high"] - t["lift"]])
        ax.barh(t["attribute"], t["lift"], xerr=err, capsize=2, color="tab:orange")
        for y, n in enumerate(t["n_errors"]):
            ax.text(0.02, y, f"n={n}", va="center", fontsize=6, transform=ax.get_yaxis_transform())
    else:
        ax.text(0.5, 0.5, "no same-category top-1 errors", ha="center", va="center", transform=ax.transAxes)
    ax.axvline(1.0, color="k", linestyle="--", linewidth=1)
    ax.set_xlabel("lift: P(differs | confused) / P(differs | random same-category pair)")
    ax.tick_params(axis="y", labelsize=7)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
