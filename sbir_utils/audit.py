"""Data audit (notebook 01): counts, example pairs, image and stroke statistics, split integrity, and the
human-likeness comparison of procedural sketches with real ones. Works on any index, real or generated."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from PIL import Image

from . import paths
from .baselines import HOG_GRID, retrieval_task  # retrieval_task re-exported here
from .data.images import ink_coverage, load_image
from .data.index import split_integrity
from .data.strokes import stroke_statistics

INK_SIZE = 128  # ink coverage is max-pooled onto this grid, so sketches of any resolution compare


def counts_by_split(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per split: pairs, unique sketches, unique photos, labels, and categories/drawers if known."""
    rows = []
    for split, df in frames.items():
        row = {"split": split, "pairs": len(df), "sketches": df["path_sketch"].nunique(),
               "photos": df["path_image"].nunique(), "labels": df["label"].nunique()}
        for extra, name in (("category", "categories"), ("drawer", "drawers"), ("user", "users")):
            if extra in df.columns:
                row[name] = df[extra].nunique()
        rows.append(row)
    return pd.DataFrame(rows).set_index("split")


def counts_per_class(frames: dict[str, pd.DataFrame], column: str = "category") -> pd.DataFrame:
    """Sketch counts per class (rows) and split (columns); falls back to ``label`` without a category column."""
    long = pd.concat([df.assign(split=s) for s, df in frames.items()])
    col = column if column in long.columns else "label"
    table = long.pivot_table(index=col, columns="split", values="path_sketch", aggfunc="count", fill_value=0)
    return table[[s for s in frames if s in table.columns]]


def pair_grid(df: pd.DataFrame, n: int = 8, seed: int = 0, size: int = 96) -> plt.Figure:
    """Sketch (top) above its photo (bottom) for ``n`` random rows."""
    sample = df.sample(n=min(n, len(df)), random_state=seed)
    fig, axes = plt.subplots(2, len(sample), figsize=(1.5 * len(sample), 3.3), squeeze=False)
    for j, (_, row) in enumerate(sample.iterrows()):
        for i, (col, kind) in enumerate((("sketch_file", "sketch"), ("image_file", "photo"))):
            ax = axes[i, j]
            ax.imshow(load_image(row[col], kind=kind).resize((size, size)), cmap="gray" if kind == "sketch" else None)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, j].set_title(str(row["label"])[-12:], fontsize=7)
    axes[0, 0].set_ylabel("sketch")
    axes[1, 0].set_ylabel("photo")
    fig.tight_layout()
    return fig


def image_statistics(df: pd.DataFrame, sample: int = 200, seed: int = 0) -> pd.DataFrame:
    """Width, height, aspect and file mode of a sample of sketches and photos; ink coverage of the sketches."""
    rows = []
    sub = df.sample(n=min(sample, len(df)), random_state=seed)
    for kind, col in (("sketch", "sketch_file"), ("photo", "image_file")):
        for path in sub[col].drop_duplicates():
            with Image.open(path) as im:
                w, h, mode = im.width, im.height, im.mode
            row = {"kind": kind, "width": w, "height": h, "aspect": w / h, "mode": mode}
            if kind == "sketch":
                row["ink"] = ink_coverage(load_image(path, kind="sketch"), size=INK_SIZE)
            rows.append(row)
    return pd.DataFrame(rows)


def plot_image_statistics(stats: pd.DataFrame) -> plt.Figure:
    import seaborn as sns

    fig, axes = plt.subplots(1, 3, figsize=(11, 3))
    sns.histplot(stats, x="width", hue="kind", ax=axes[0], element="step")
    sns.histplot(stats, x="aspect", hue="kind", ax=axes[1], element="step")
    sns.histplot(stats.dropna(subset=["ink"]), x="ink", ax=axes[2], color="k")
    axes[2].set_xlabel(f"sketch ink coverage (at {INK_SIZE} px)")
    fig.tight_layout()
    return fig


def integrity_verdict(report: pd.DataFrame) -> str:
    """One line: clean, or which checks failed."""
    failed = report[~report["ok"]]
    if failed.empty:
        return "PASS: no photo or sketch in two splits, no duplicate rows, no skipped rows, no empty split."
    return "FAIL: " + "; ".join(f"{r.check} ({r.count})" for r in failed.itertuples())


def stroke_table(sources: dict[str, list[np.ndarray]], canvas: float = 256) -> pd.DataFrame:
    """Per-sketch stroke statistics (see ``strokes.stroke_statistics``) with a ``source`` column."""
    rows = []
    for name, sketches in sources.items():
        for pts in sketches:
            rows.append({"source": name, **stroke_statistics(pts, canvas=canvas)})
    return pd.DataFrame(rows)


def ink_table(sources: dict[str, list[Path]]) -> pd.DataFrame:
    """Ink coverage of raster sketches (resized to ``INK_SIZE``) per source."""
    rows = []
    for name, files in sources.items():
        for f in files:
            rows.append({"source": name, "ink": ink_coverage(load_image(f, kind="sketch"), size=INK_SIZE)})
    return pd.DataFrame(rows)


def summarise_by_source(df: pd.DataFrame) -> pd.DataFrame:
    """Median and interquartile range of every numeric column per source."""
    num = df.select_dtypes("number").columns
    q = df.groupby("source")[list(num)].quantile([0.25, 0.5, 0.75]).unstack()
    out = pd.DataFrame(index=q.index)
    for col in num:
        out[col] = [f"{m:.3g} [{lo:.3g}, {hi:.3g}]" for lo, m, hi in
                    zip(q[(col, 0.25)], q[(col, 0.5)], q[(col, 0.75)])]
    return out.reset_index()


def plot_by_source(df: pd.DataFrame, columns: list[str]) -> plt.Figure:
    """Box plots (no fliers) of ``columns`` per ``source``."""
    names = list(dict.fromkeys(df["source"]))
    fig, axes = plt.subplots(1, len(columns), figsize=(3.6 * len(columns), 3), squeeze=False)
    for ax, col in zip(axes[0], columns):
        ax.boxplot([df.loc[df["source"] == n, col].to_numpy() for n in names], tick_labels=names, showfliers=False)
        ax.set_title(col.replace("_", " "))
        ax.tick_params(axis="x", labelrotation=30)
    fig.tight_layout()
    return fig


def reference_sketches(embedded_objects: Path | None, n: int = 200, seed: int = 0
                       ) -> tuple[dict[str, list[np.ndarray]], dict[str, list[Path]]]:
    """Sketch samples for the human-likeness comparison: stroke arrays and raster files per source.

    Sources: the procedural sketches (all, and chairs alone) of ``embedded_objects``; real QMUL-ChairV2
    strokes and real shoe sketches from ``../shared/data`` when that folder is present (else omitted).
    """
    rng = np.random.default_rng(seed)
    strokes: dict[str, list[np.ndarray]] = {}
    rasters: dict[str, list[Path]] = {}

    def pick(items: list, k: int) -> list:
        items = sorted(items)
        return [items[i] for i in sorted(rng.choice(len(items), size=min(k, len(items)), replace=False))]

    if embedded_objects is not None:
        npys = sorted((embedded_objects / "strokes").glob("*/*.npy"))
        chairs = [p for p in npys if p.parent.name == "chair"]
        strokes["procedural (all)"] = [np.load(p) for p in pick(npys, n)]
        if chairs:
            strokes["procedural chairs"] = [np.load(p) for p in pick(chairs, n)]
        pngs = sorted((embedded_objects / "sketches").glob("*/*.png"))
        rasters["procedural (all)"] = pick(pngs, n)
    chair_dir = paths.shared_data("chairv2-strokes")
    if chair_dir is not None and (chair_dir / "ChairV2_Coordinate").exists():
        from .data.safe_pickle import load as load_pickle

        data = load_pickle(chair_dir / "ChairV2_Coordinate")
        keys = pick(list(data), n)
        strokes["real ChairV2"] = [np.asarray(data[k], dtype=float) for k in keys]
    shoes = paths.shared_data("shoes-real-dev")
    if shoes is not None:
        rasters["real shoes"] = pick(list((shoes / "sketches").glob("*.jpg")), n)
    return strokes, rasters


def human_likeness(embedded_objects: Path | None, n: int = 200, seed: int = 0
                   ) -> tuple[list[pd.DataFrame], plt.Figure | None, str]:
    """Compare procedural sketches with the real reference sketches (see :func:`reference_sketches`).

    Returns summary tables (medians and IQR per source: stroke statistics, ink coverage), a box-plot figure
    of the stroke statistics (None without stroke data) and a note naming the sources that were missing.
    """
    stroke_sources, raster_sources = reference_sketches(embedded_objects, n=n, seed=seed)
    tables: list[pd.DataFrame] = []
    fig = None
    cols = ["n_strokes", "points_per_stroke", "stroke_length"]
    if stroke_sources:
        strokes = stroke_table(stroke_sources)
        tables.append(summarise_by_source(strokes[["source", *cols]]))
        fig = plot_by_source(strokes, cols)
    if raster_sources:
        tables.append(summarise_by_source(ink_table(raster_sources)))
    missing = sorted({"real ChairV2", "real shoes"} - set(stroke_sources) - set(raster_sources))
    note = ("real reference sketches not found beside the checkout (shared/data): " + ", ".join(missing)
            if missing else "all reference sources present")
    return tables, fig, note


def calibration(frames: dict[str, pd.DataFrame], seed: int = 0, grid: dict | None = None,
                max_tuning_queries: int = 300) -> pd.DataFrame:
    """Random ranking and the HOG baseline on the test split; HOG settings are chosen on the train split
    (``baselines.baseline_per_query``, which notebook 04 uses for every test split)."""
    from .baselines import baseline_per_query
    from .metrics import mean_metrics

    per_query, _, n_queries, n_gallery = baseline_per_query(frames["train"], frames["test"], seed,
                                                            grid or HOG_GRID, max_tuning_queries)
    rows = []
    for method, pq in per_query.items():
        values = mean_metrics(pq)
        rows.append({"method": method, **{k: values[k] for k in ("acc@1", "acc@10", "mrr", "mAP@all")},
                     "queries": n_queries, "gallery": n_gallery})
    return pd.DataFrame(rows).set_index("method")


def sample_files(df: pd.DataFrame, column: str, n: int, seed: int = 0) -> list[Path]:
    files = df[column].drop_duplicates()
    return [Path(p) for p in files.sample(n=min(n, len(files)), random_state=seed)]


__all__ = [
    "counts_by_split", "counts_per_class", "pair_grid", "image_statistics", "plot_image_statistics",
    "split_integrity", "integrity_verdict", "stroke_table", "ink_table", "summarise_by_source",
    "plot_by_source", "sample_files", "reference_sketches", "human_likeness", "calibration",
    "retrieval_task",
]
