"""The per-model gallery pages (top 10 per query sketch) and the HTML list linking them.

Calls to the package's public functions go through ``sbir_utils.evaluation`` (imported late), so a patch of
``evaluation.X`` reaches every caller of ``X`` as it did when this was one module."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from .. import paths, study
from ..config import Profile
from ..data.index import DatasetSpec, read_index
from ..metrics import metric_name
from .common import HEADLINE_METRICS, _profile


def _captions(spec: DatasetSpec, query_files: Sequence[str]) -> list[str] | None:
    """FS-COCO-style captions (``caption_file`` column, relative to the sketch root) of the queries."""
    df = read_index(spec.csv("test"), spec)
    if "caption_file" not in df.columns:
        return None
    by_sketch = dict(zip(df["sketch_file"], df["caption_file"]))
    out = []
    for q in query_files:
        rel = by_sketch.get(q, "")
        path = spec.sketch_root / rel if rel else None
        out.append(path.read_text(encoding="utf-8", errors="replace").strip()[:300]
                   if path is not None and path.is_file() else "")
    return out if any(out) else None


def write_galleries(profile: Profile | str, runs: Sequence[study.Run], dataset: str = "embedded",
                    data_root: str | None = None) -> list[Path]:
    """``reports_dir()/galleries/<run name>/result.html`` for each model (first seed): top 10 per query
    sketch of its final ranking (stage 2 for AAFG with cross-attention), correct photo in red, rank of
    misses; ``profile.evaluation.gallery_rows`` queries (seeded sample). Also ``galleries/index.html``."""
    from .. import evaluation
    from ..gallery import write_gallery_index, write_result_html

    profile = _profile(profile)
    root = paths.reports_dir() / "galleries"
    pages = []
    for run in evaluation.first_seed_runs(runs):
        res = evaluation.evaluate_run(profile, run, dataset, data_root, n_resamples=0)
        stage = res["final_stage"]
        pq = res["per_query"][stage]
        spec = study.dataset_spec(profile, run, dataset, data_root)
        how = (f"stage 2: the stage-1 top {res['rerank_k']} re-ranked by cross-attention" if stage == "stage2"
               else "stage 1: cosine of the embeddings")
        shown = HEADLINE_METRICS.get(res["protocol"], HEADLINE_METRICS["fine"])
        pages.append(write_result_html(
            root / run.name, res["query_files"], res["gallery_files"], res["top"][stage],
            pq["rank"].to_numpy(), title=f"{run.name} (seed {run.seed}), {run.data} test split, {how}",
            relevant=res["relevant"], captions=_captions(spec, res["query_files"]),
            metrics={c: float(pq[_column(m)].mean()) for m, c in shown if _column(m) in pq.columns},
            model=f"{res['model']} ({res['backbone']}), checkpoint epoch {res['epoch']}",
            max_rows=profile.evaluation.gallery_rows, seed=0))
    write_gallery_index(root)
    return pages


def _column(metric: str) -> str:
    """Per-query column of a reported metric name (inverse of ``metrics.metric_name``)."""
    for col in ("rr", "ap"):
        if metric_name(col) == metric:
            return col
    if metric.startswith("mAP@"):
        return "ap@" + metric[4:]
    if metric.startswith("P@"):
        return "p@" + metric[2:]
    return metric


def gallery_links_html(pages: Sequence[Path]) -> str:
    """An HTML list of relative links (from ``reports_dir()``) to the gallery pages, escaped and URL-quoted."""
    root = paths.reports_dir()
    items = []
    for page in pages:
        rel = Path(page).resolve().relative_to(root.resolve()).as_posix()
        items.append(f'<li><a href="{html.escape(quote(rel))}">{html.escape(Path(rel).parent.name)}</a></li>')
    return "<ul>" + "".join(items) + "</ul>" if items else "<p>no galleries written</p>"
