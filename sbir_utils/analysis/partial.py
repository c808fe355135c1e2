"""Figure 5: partial sketches, retrieval from the first strokes (in drawing order) of each query sketch."""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from .. import engine
from ..data.index import DatasetSpec, read_index
from ..data.strokes import split_strokes
from ..metrics import bootstrap_ci, per_query_from_embeddings
from ..retrieval_task import retrieval_task, sorted_index

FRACTIONS = tuple(round(0.1 * i, 1) for i in range(1, 11))  # of a sketch's strokes, in drawing order


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
    from ..data.procedural.drawers import raster
    from ..data.strokes import join_strokes

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
    task = retrieval_task(sorted_index(read_index(spec.index_dir / test_csv, spec)))  # as engine.evaluate's
    queries, labels, g_paths, g_labels = task.queries, task.query_labels, task.gallery_files, task.gallery_labels
    g_emb, _ = engine.encode(model, g_paths, "photo", cfg.image_size, batch_size, photo_mode=cfg.photo_mode,
                             crop=cfg.crop)
    manifest = _manifest(spec)
    size = int(manifest["params"]["generator"]["sketch_size"])
    widths = {str(k): float(v["line_width"]) for k, v in manifest["drawers"].items()}
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
