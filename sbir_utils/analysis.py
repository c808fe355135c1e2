"""Error analysis of trained models (notebook 05): where retrieval fails and why.

:func:`load_results` reads one trained run's test-split evaluation with per-query details
(``evaluation.evaluate_run``: computed once per checkpoint and cached); the other functions turn a
:class:`RunResults` (or a checkpoint) into a table or a matplotlib figure. Ranks and metrics follow ``sbir_utils.metrics`` (ties
counted against the query; with one relevant photo AP = 1 / rank, so fine-grained mAP@all = MRR).

Which ranking: the worst queries, rank histograms, per-group metrics and attribute confusions use a
model's final ranking (stage 2 for AAFG with a cross-attention re-ranker: its top-K re-ordered, every
rank beyond K as in stage 1). Partial sketches, the embedding projection and the attention maps use the
stage-1 encoder (one image in, one embedding out).
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import matplotlib.ticker as ticker
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from . import engine, evaluation, study
from .config import Profile
from .data.images import load_image
from .data.index import DatasetSpec, read_index
from .data.loading import ImageDataset, crop_to_object, square
from .data.strokes import split_strokes
from .metrics import bootstrap_ci, metric_name, per_query_from_embeddings, unique_gallery

FRACTIONS = tuple(round(0.1 * i, 1) for i in range(1, 11))  # of a sketch's strokes, in drawing order
_INDEX_COLUMNS = ("path_sketch", "path_image", "label", "sketch_file", "image_file")


@dataclass
class RunResults:
    """One model evaluated on a test split.

    ``evaluation``: ``evaluation.evaluate_run``'s result (mean metrics ``stage1``, ``stage2`` or None, ...);
    ``details``: as
    ``engine.evaluate(..., details=True)["details"]`` (``query_files``, ``gallery_files``, ``query_labels``,
    ``gallery_labels``, ``relevant`` (Q, G), ``top`` (Q, <=10) of the final ranking, ``per_query``);
    ``queries`` has one row per query sketch: ``sketch`` (its last two path parts, for display),
    ``sketch_file``, ``label``, the per-query metrics (``rank``, ``rr``, ``acc@1`` ...), ``true_file`` (the
    correct photo; with several, the first in the top 10, else the first in gallery order), ``top1_file`` / ``top1_label`` and the index's extra columns (``category``,
    ``drawer``, ``drawer_unseen`` on the embedded fine-grained set).
    """

    name: str
    checkpoint: Path
    spec: DatasetSpec
    test_csv: str
    evaluation: dict[str, Any]
    details: dict[str, Any]
    queries: pd.DataFrame

    @property
    def n_gallery(self) -> int:
        return len(self.details["gallery_files"])


# ---- loading ----------------------------------------------------------------------------------------

def analysis_runs(profile: Profile, dataset: str = "embedded") -> dict[str, study.Run]:
    """The runs notebook 05 analyses (first seed of each): ``fine`` (full AAFG), ``category`` (embedded
    data only), ``scene-normal`` and ``scene-unseen-user`` (ConvNeXt-InfoNCE)."""
    aafg = study.aafg_runs(profile, dataset)
    data = "fine" if dataset == "embedded" else "real"
    picks = {"fine": next(r for r in aafg if r.name == f"aafg-{data}-SA+CA" and r.group == "ablation")}
    category = [r for r in aafg if r.group == "category"]
    if category:
        picks["category"] = category[0]
    for r in study.convnext_runs(profile, dataset):
        if r.name in ("convnext-normal", "convnext-unseen-user"):
            picks.setdefault("scene-" + r.name.removeprefix("convnext-"), r)
    return picks


def load_results(profile: Profile, run: study.Run, dataset: str = "embedded", data_root: str | None = None
                 ) -> RunResults:
    """``run``'s test-split evaluation with per-query details, from ``evaluation.evaluate_run`` (computed
    once per checkpoint and test index, then cached beside the run; notebook 04 usually did it).

    Raises FileNotFoundError (``evaluation.MissingRunError``) when the run has not been trained (notebooks 02
    and 03 train them).
    """
    ev = evaluation.evaluate_run(profile, run, dataset, data_root, n_resamples=0)
    stage = ev["final_stage"]
    per_query = ev["per_query"][stage].drop(columns=["query_file", "query_label"])
    details = {"query_files": ev["query_files"], "gallery_files": ev["gallery_files"],
               "query_labels": ev["query_labels"], "gallery_labels": ev["gallery_labels"],
               "relevant": ev["relevant"], "top": ev["top"][stage], "ranks": per_query["rank"].to_numpy(),
               "per_query": per_query}
    spec = study.dataset_spec(profile, run, dataset, data_root)
    return RunResults(run.name, Path(ev["checkpoint"]), spec, "index_test.csv", ev, details,
                      query_table(details, spec))


def load_available(profile: Profile, dataset: str = "embedded", data_root: str | None = None
                   ) -> dict[str, RunResults]:
    """:func:`load_results` of every :func:`analysis_runs` entry that has been trained; the others are
    reported and left out."""
    out = {}
    for role, run in analysis_runs(profile, dataset).items():
        try:
            out[role] = load_results(profile, run, dataset, data_root)
        except FileNotFoundError as exc:
            print(f"{role}: skipped ({exc})")
    return out


def query_table(details: dict[str, Any], spec: DatasetSpec, test_csv: str = "index_test.csv") -> pd.DataFrame:
    """One row per query (see :class:`RunResults`) from ``engine.evaluate``'s ``details``."""
    q = details["per_query"].copy()
    gallery = np.asarray(details["gallery_files"], dtype=object)
    g_labels = np.asarray(details["gallery_labels"], dtype=object)
    relevant, top = np.asarray(details["relevant"]), np.asarray(details["top"])
    rows = np.arange(len(q))
    hit = relevant[rows[:, None], top]  # (Q, 10): correct photos among the first ten
    true_idx = np.where(hit.any(axis=1), top[rows, hit.argmax(axis=1)], relevant.argmax(axis=1))
    q.insert(0, "sketch", ["/".join(Path(f).parts[-2:]) for f in details["query_files"]])
    q.insert(1, "sketch_file", details["query_files"])
    q.insert(2, "label", details["query_labels"])
    q["true_file"] = gallery[true_idx]
    q["top1_file"], q["top1_label"] = gallery[top[:, 0]], g_labels[top[:, 0]]
    index = read_index(spec.index_dir / test_csv, spec).drop_duplicates("sketch_file")
    extra = [c for c in index.columns if c not in _INDEX_COLUMNS and c not in q.columns]
    return q.merge(index[["sketch_file", *extra]], on="sketch_file", how="left", validate="one_to_one")


# ---- figure 1: worst queries --------------------------------------------------------------------------

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


# ---- figure 2: rank histograms ------------------------------------------------------------------------

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


# ---- figures 3 and 8: metrics by group -----------------------------------------------------------------

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


# ---- figure 4: attribute confusions -------------------------------------------------------------------

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
    from .data.procedural import shapes

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

    from .data.procedural import shapes

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


# ---- figure 5: partial sketches -----------------------------------------------------------------------

def stroke_file(sketch_file: str | Path) -> Path:
    """The embedded set's stroke-3 file of a raster sketch: ``.../sketches/<cat>/<id>-<k>.png`` ->
    ``.../strokes/<cat>/<id>-<k>.npy``."""
    p = Path(sketch_file)
    parts = list(p.parts)
    if "sketches" not in parts:
        raise ValueError(f"{p}: not under a 'sketches' folder, so no stroke file can be derived")
    i = len(parts) - 1 - parts[::-1].index("sketches")
    parts[i] = "strokes"
    return Path(*parts).with_suffix(".npy")


def has_strokes(spec: DatasetSpec, test_csv: str = "index_test.csv") -> bool:
    """True when every sketch of ``test_csv`` has a stroke file and the generator's manifest is found."""
    try:
        df = read_index(spec.index_dir / test_csv, spec)
        _manifest(spec)
        return all(stroke_file(f).is_file() for f in df["sketch_file"].unique())
    except (ValueError, FileNotFoundError):
        return False


def _manifest(spec: DatasetSpec) -> dict[str, Any]:
    for folder in (spec.index_dir, *spec.index_dir.parents[:3]):
        if (folder / "manifest.json").is_file():
            return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    raise FileNotFoundError(f"{spec.index_dir}: no generator manifest.json above it (not the embedded set)")


def partial_rasters(points: np.ndarray, fractions: Sequence[float], line_width: float, size: int) -> list:
    """The first ``ceil(f * n_strokes)`` strokes (drawing order) of a stroke-3 sketch for each ``f``, drawn
    like the generator's sketches (``procedural.drawers.raster``: 2x supersampled, pens of
    ``line_width`` on the 256 canvas, at least one pixel wide). Returns PIL ``L`` images of ``size``."""
    from .data.procedural.drawers import raster
    from .data.strokes import join_strokes

    strokes = split_strokes(points)
    out = []
    for f in fractions:
        k = max(1, math.ceil(f * len(strokes) - 1e-9))
        out.append(raster(join_strokes(strokes[:k]), [line_width] * k, size))
    return out


@torch.no_grad()
def partial_sketch_curve(checkpoint: str | Path, spec: DatasetSpec, test_csv: str = "index_test.csv",
                         fractions: Sequence[float] = FRACTIONS, batch_size: int = 64, stored_full: bool = True,
                         n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Stage-1 retrieval from partial sketches (on-the-fly FG-SBIR), embedded set only.

    Every test sketch is re-drawn from its stroke file with the first ``f`` of its strokes (see
    :func:`partial_rasters`; the pen width is the drawer's nominal ``line_width`` from the manifest, the
    size the generator's ``sketch_size``), embedded with the checkpoint's sketch encoder through the
    evaluation preprocessing (``engine.encode``) and ranked against the test gallery (each photo once).
    With ``stored_full`` the point ``f = 1`` uses the stored sketch files, so it equals
    ``engine.evaluate``'s stage-1 numbers; without it, it is re-drawn too (the stored sketches have a
    per-stroke width jitter that the stroke files do not record).

    Returns:
        one row per fraction: ``fraction, strokes (mean drawn), acc@1, acc@1_low, acc@1_high, acc@10, mrr,
        n_queries, n_gallery, source`` (``strokes`` | ``stored sketch``).
    """
    model, cfg, _ = engine.load_model(checkpoint)
    df = read_index(spec.index_dir / test_csv, spec)
    df = df.sort_values(["path_sketch", "path_image", "label"], kind="stable").reset_index(drop=True)
    queries = df.drop_duplicates("sketch_file", keep="first")
    g_paths, g_labels, _ = unique_gallery(df["image_file"].tolist(), df["label"].astype(str).tolist())
    g_emb, _ = engine.encode(model, g_paths, "photo", cfg.image_size, batch_size, photo_mode=cfg.photo_mode,
                             crop=cfg.crop)
    manifest = _manifest(spec)
    size = int(manifest["params"]["generator"]["sketch_size"])
    widths = {str(k): float(v["line_width"]) for k, v in manifest["drawers"].items()}
    labels = queries["label"].astype(str).to_numpy()
    rows = []
    with tempfile.TemporaryDirectory(prefix="sbir-partial-") as tmp:
        files: dict[float, list[str]] = {f: [] for f in fractions}
        n_drawn: dict[float, list[int]] = {f: [] for f in fractions}
        for qi, row in enumerate(queries.itertuples()):
            pts = np.load(stroke_file(row.sketch_file), allow_pickle=False)
            lw = widths.get(str(getattr(row, "drawer", "")))
            if lw is None:
                raise ValueError(f"{spec.index_dir / test_csv}: {row.path_sketch}: no drawer with a line width in "
                                 "the manifest (needs the embedded set's drawer column)")
            n = len(split_strokes(pts))
            for f, img in zip(fractions, partial_rasters(pts, fractions, lw, size)):
                path = Path(tmp) / f"{qi:06d}-{f:.3f}.png"
                img.save(path)
                files[f].append(str(row.sketch_file) if (stored_full and f >= 1.0) else str(path))
                n_drawn[f].append(max(1, math.ceil(f * n - 1e-9)))
        for f in fractions:
            q_emb, _ = engine.encode(model, files[f], "sketch", cfg.image_size, batch_size, crop=cfg.crop)
            pq = per_query_from_embeddings(q_emb, g_emb, labels, g_labels)
            mean, low, high = bootstrap_ci(pq["acc@1"].to_numpy(), n_resamples, seed)
            rows.append({"fraction": float(f), "strokes": float(np.mean(n_drawn[f])), "acc@1": mean,
                         "acc@1_low": low, "acc@1_high": high, "acc@10": float(pq["acc@10"].mean()),
                         "mrr": float(pq["rr"].mean()), "n_queries": len(pq), "n_gallery": len(g_paths),
                         "source": "stored sketch" if (stored_full and f >= 1.0) else "strokes"})
    return pd.DataFrame(rows)


def plot_partial_curve(curve: pd.DataFrame, title: str = "") -> plt.Figure:
    """acc@1 (with 95% band) and acc@10 against the fraction of strokes drawn."""
    fig, ax = plt.subplots(figsize=(5.0, 3.3))
    x = curve["fraction"] * 100
    ax.plot(x, curve["acc@1"], marker="o", label="acc@1")
    ax.fill_between(x, curve["acc@1_low"], curve["acc@1_high"], alpha=0.2)
    ax.plot(x, curve["acc@10"], marker="s", label="acc@10")
    g = int(curve["n_gallery"].iloc[0])
    ax.axhline(1 / g, color="tab:blue", linestyle=":", linewidth=1, label=f"acc@1 by chance (1/{g})")
    ax.axhline(min(1.0, 10 / g), color="tab:orange", linestyle=":", linewidth=1, label="acc@10 by chance")
    ax.set_xlabel("strokes drawn (% of the sketch, drawing order)")
    ax.set_ylabel("test accuracy (stage 1)")
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


# ---- figure 6: attention maps -------------------------------------------------------------------------

@torch.no_grad()
def attention_map(model: nn.Module, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
    """Mean attention each key position receives from all query positions, on the key feature map.

    Without ``context``: AAFG's self-attention over the map of ``x``. With ``context``: its cross-attention
    with queries from ``x``'s map and keys from ``context``'s map (both after self-attention, as in the
    pair score). The weights are recomputed by a forward hook from the block's own inputs and layers
    (``softmax(query(x) key(c)^T * scale)``), since the block does not return them.

    Args:
        x: (B, 3, H, W) preprocessed images; context: (B, 3, H, W) or None.
    Returns:
        (B, h, w) weights of the key map (each map sums to 1).
    """
    block = getattr(model, "self_attn" if context is None else "cross_attn", None)
    if block is None:
        raise ValueError(f"{type(model).__name__} has no {'self' if context is None else 'cross'}-attention block")
    captured: list[torch.Tensor] = []

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        xq, xk = inputs[0], inputs[-1]
        q = module.query(xq).flatten(2).transpose(1, 2)  # (B, hw, d)
        k = module.key(xk).flatten(2)  # (B, d, h'w')
        attn = torch.softmax(torch.bmm(q, k) * module.scale, dim=-1)  # (B, hw, h'w')
        captured.append(attn.mean(dim=1).reshape(xk.shape[0], *xk.shape[2:]))

    was_training = model.training
    model.eval()
    handle = block.register_forward_hook(hook)
    try:
        if context is None:
            model.maps(x)
        else:
            block(model.maps(x), model.maps(context))
    finally:
        handle.remove()
        model.train(was_training)
    return captured[-1]


def _overlay(ax: plt.Axes, img: Any, weights: torch.Tensor, title: str) -> None:
    side = img.size[0]
    up = F.interpolate(weights[None, None].float(), size=(side, side), mode="bilinear", align_corners=False)[0, 0]
    ax.imshow(img, cmap="gray" if img.mode == "L" else None, vmin=0, vmax=255)
    ax.imshow(up.numpy(), cmap="inferno", alpha=0.5, vmin=0.0, vmax=float(up.max()))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=7)


def _model_view(img: Any, kind: str, crop: bool) -> Any:
    return crop_to_object(img, kind) if crop else img


def plot_attention(checkpoint: str | Path, pairs: Sequence[tuple[str, str]], size: int = 128) -> plt.Figure:
    """For each (sketch, photo) pair: the sketch's and the photo's self-attention maps and, with
    cross-attention, the photo positions the sketch attends to, upsampled over the images."""
    model, cfg, _ = engine.load_model(checkpoint)
    sketches = torch.stack([ImageDataset([s], "sketch", cfg.image_size, image_cache=None, crop=cfg.crop)[0] for s, _ in pairs])
    photos = torch.stack([ImageDataset([p], "photo", cfg.image_size, cfg.photo_mode, image_cache=None, crop=cfg.crop)[0] for _, p in pairs])
    maps = {"sketch self": attention_map(model, sketches), "photo self": attention_map(model, photos)}
    if getattr(model, "cross_attn", None) is not None:
        maps["sketch -> photo"] = attention_map(model, sketches, photos)
    fig, axes = plt.subplots(len(pairs), 2 + len(maps), figsize=(1.7 * (2 + len(maps)), 1.8 * len(pairs)),
                             squeeze=False)
    for r, (s, p) in enumerate(pairs):
        s_img, p_img = (square(_model_view(load_image(f, kind), kind, cfg.crop), size, kind)
                        for f, kind in ((s, "sketch"), (p, "photo")))  # the framing the maps were computed on
        _show(axes[r, 0], s, "sketch", Path(s).name, size=size)
        _show(axes[r, 1], p, "photo", Path(p).name, size=size)
        for c, (name, m) in enumerate(maps.items(), start=2):
            _overlay(axes[r, c], s_img if name == "sketch self" else p_img, m[r],
                     f"{name} ({float(m[r].min()):.2f}-{float(m[r].max()):.2f})")
    h, w = maps["sketch self"].shape[1:]
    gammas = ", ".join(f"{n} gamma {getattr(model, n).gamma.item():.3g}" for n in ("self_attn", "cross_attn")
                       if getattr(model, n, None) is not None)
    note = " - one position, so nothing to see: use a larger image_size" if h * w == 1 else ""
    fig.suptitle(f"attention over a {h}x{w} feature map{note}, colours scaled per map (uniform = {1 / (h * w):.2f})"
                 f"\n({cfg.image_size} px input; {gammas})", fontsize=9)
    fig.tight_layout()
    return fig


# ---- figure 7: embedding projection -------------------------------------------------------------------

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


def load_attributes_for(spec: DatasetSpec) -> pd.DataFrame | None:
    """The procedural set's attribute table above ``spec``'s index folder, or None for other data."""
    from .data.procedural import load_attributes

    for folder in (spec.index_dir, *spec.index_dir.parents[:2]):
        if (folder / "attributes.csv").is_file():
            return load_attributes(folder)
    return None


