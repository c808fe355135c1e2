"""Test-split evaluation of the study's runs (notebook 04; notebook 05 reuses the cached results).

Each run's ``checkpoints/best.pt`` (the epoch the engine chose on the **validation** split) is evaluated
once on the **test** split of its dataset with ``engine.evaluate``: stage 1 (query-independent
embeddings, exact cosine ranking of the whole gallery) and, for AAFG with cross-attention, stage 2 (each
query's stage-1 top K re-ranked by the pair scorer). The per-query results are cached beside the run::

    RUN_DIR/test_eval.json             cache key (checkpoint sha256, test CSV path + sha256, format),
                                       the engine's mean metrics, gallery files and labels
    RUN_DIR/test_eval_stage1.csv       one row per query sketch: file, label, rank, rr, acc@K, ap,
    RUN_DIR/test_eval_stage2.csv       ap@200, p@K and the top-10 gallery indices of that ranking

so notebooks 04 and 05 and reruns never recompute; a new checkpoint or a changed test index does.
Confidence intervals are 95% percentile bootstraps over queries (``metrics.summarise``) of the cached rows.

Baselines (random scores; HOG with settings tuned on the **train** split only) are evaluated on the same
test splits and cached in ``runs_dir()/<profile>/<dataset>/baselines/<data>/``. Metric definitions are
those of ``sbir_utils.metrics``; scene-level R@K is acc@K (the tables call it R@K for scene data).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import paths, study
from .baselines import HOG_GRID, baseline_per_query, retrieval_task
from .config import Profile, load_profile
from .data.index import DatasetSpec, read_index, read_splits, split_integrity
from .fileio import atomic_write, atomic_write_text
from .metrics import metric_name, summarise

EVAL_FORMAT = 1  # bump when the cached files change meaning
STAGES = ("stage1", "stage2")
BASELINE_STAGE = "-"
NOT_APPLICABLE = "–"  # headline cells of metrics that are not the row's protocol's
TOP_SHOWN = 10
# Headline metrics per protocol: (metric name in the results table, column name in the headline table).
HEADLINE_METRICS: dict[str, tuple[tuple[str, str], ...]] = {
    "fine": (("acc@1", "acc@1"), ("acc@5", "acc@5"), ("acc@10", "acc@10"), ("mrr", "MRR")),
    "category": (("mAP@all", "mAP@all"), ("mAP@200", "mAP@200 (SAKE)"), ("P@100", "P@100"), ("P@200", "P@200")),
    "scene": (("acc@1", "R@1"), ("acc@5", "R@5"), ("acc@10", "R@10")),
}
RESULT_COLUMNS = ["run", "family", "group", "data", "seed", "stage", "protocol", "split", "metric", "value",
                  "ci_low", "ci_high", "n_queries", "n_gallery", "epoch", "notes"]
PUBLISHED_COLUMNS = ["method", "dataset", "split", "metric", "value", "unit", "backbone", "pretraining", "source",
                     "notes"]


class MissingRunError(FileNotFoundError):
    """A run to evaluate has no ``checkpoints/best.pt``: notebooks 02/03 have not trained it yet."""


def _profile(profile: Profile | str) -> Profile:
    return load_profile(profile) if isinstance(profile, str) else profile


def _json_safe(value: Any) -> Any:
    """NaN -> None (strict JSON), numpy scalars -> python."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _nan_back(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if metrics is None else {k: (float("nan") if v is None else v) for k, v in metrics.items()}


# ---- one run -----------------------------------------------------------------------------------------

def checkpoint_path(profile: Profile | str, run: study.Run, dataset: str = "embedded") -> Path:
    """``RUN_DIR/checkpoints/best.pt`` of ``run``."""
    return study.run_dir(_profile(profile), run, dataset) / "checkpoints" / "best.pt"


def missing_runs(profile: Profile | str, runs: Sequence[study.Run], dataset: str = "embedded") -> list[str]:
    """One line per run without a best checkpoint, naming the notebook that trains it (empty = all there)."""
    out = []
    for run in runs:
        ckpt = checkpoint_path(profile, run, dataset)
        if not ckpt.is_file():
            nb = "02 (AAFG)" if run.family == "aafg" else "03 (ConvNeXt-InfoNCE)"
            out.append(f"{run.name} seed {run.seed}: {ckpt} not found; run notebook {nb} first")
    return out


def _cache_key(ckpt: Path, spec: DatasetSpec) -> dict[str, Any]:
    from .retrieval import file_fingerprint

    csv = spec.csv("test")
    if not csv.is_file():
        raise FileNotFoundError(f"{csv}: test index not found (the dataset has no test split)")
    return {"format": EVAL_FORMAT, "checkpoint": file_fingerprint(ckpt), "test_csv": str(csv.resolve()),
            "test_csv_content": file_fingerprint(csv), "sketch_root": str(spec.sketch_root),
            "image_root": str(spec.image_root)}


def _per_query_frame(details: dict[str, Any]) -> pd.DataFrame:
    """The engine's per-query metrics with the query file, label and top-10 gallery indices."""
    pq = details["per_query"].reset_index(drop=True)
    top = np.asarray(details["top"])
    return pd.concat([pd.DataFrame({"query_file": details["query_files"], "query_label": details["query_labels"]}),
                      pq, pd.DataFrame({"top": [" ".join(str(int(i)) for i in row) for row in top]})], axis=1)


def _files(directory: Path) -> dict[str, Path]:
    return {"json": directory / "test_eval.json", "stage1": directory / "test_eval_stage1.csv",
            "stage2": directory / "test_eval_stage2.csv"}


def _read_cache(directory: Path, key: dict[str, Any]) -> tuple[dict[str, Any], dict[str, pd.DataFrame]] | None:
    files = _files(directory)
    if not files["json"].is_file():
        return None
    try:
        meta = json.loads(files["json"].read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None
    if meta.get("key") != key:
        return None
    frames = {}
    for stage in meta["stages"]:
        if not files[stage].is_file():
            return None
        frames[stage] = pd.read_csv(files[stage], dtype={"query_file": str, "query_label": str, "top": str},
                                    keep_default_na=False, na_values=[""])
    return meta, frames


def _write_cache(directory: Path, meta: dict[str, Any], frames: dict[str, pd.DataFrame]) -> None:
    files = _files(directory)
    files["json"].unlink(missing_ok=True)  # the JSON is written last: it marks a complete cache
    for stage in STAGES:
        if stage in frames:
            atomic_write(files[stage], lambda p, f=frames[stage]: f.to_csv(p, index=False, lineterminator="\n"))
        else:
            files[stage].unlink(missing_ok=True)
    atomic_write_text(files["json"], json.dumps(_json_safe(meta), indent=1) + "\n")


def _compute(ckpt: Path, spec: DatasetSpec, batch_size: int, device: str | None
             ) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """Run ``engine.evaluate`` on the test split: once, and once more with ``rerank_k=0`` when the model has a
    stage 2 (the engine's per-query details describe the final ranking only)."""
    from . import engine

    res = engine.evaluate(ckpt, spec.index_dir, "index_test.csv", batch_size=batch_size, device=device,
                          details=True)
    final = res.pop("details")
    frames = {"stage1": _per_query_frame(final)}
    if res["stage2"] is not None:
        first = engine.evaluate(ckpt, spec.index_dir, "index_test.csv", batch_size=batch_size, device=device,
                                rerank_k=0, details=True)["details"]
        if first["query_files"] != final["query_files"] or first["gallery_files"] != final["gallery_files"]:
            raise RuntimeError(f"{ckpt}: stage-1 and stage-2 evaluations disagree on the queries or the gallery")
        frames = {"stage1": _per_query_frame(first), "stage2": frames["stage1"]}
    meta = {k: res[k] for k in ("stage1", "stage2", "mean_cos", "model", "backbone", "epoch", "rerank_k")}
    meta.update(gallery_files=list(final["gallery_files"]), gallery_labels=list(final["gallery_labels"]),
                stages=list(frames))
    return meta, frames


def _unpack(frames: dict[str, pd.DataFrame]) -> tuple[dict[str, pd.DataFrame], dict[str, np.ndarray]]:
    per_query, top = {}, {}
    for stage, df in frames.items():
        top[stage] = np.array([[int(x) for x in str(s).split()] for s in df["top"]], dtype=np.int64)
        per_query[stage] = df.drop(columns=["top"])
    return per_query, top


def metric_columns(per_query: pd.DataFrame) -> list[str]:
    """The per-query metric columns (``rank``, ``rr``, ``acc@K``, ``ap``, ...) of a cached frame."""
    return [c for c in per_query.columns if c not in ("query_file", "query_label", "top")]


def _summary(per_query: pd.DataFrame, n_resamples: int) -> pd.DataFrame:
    """``metrics.summarise``; with ``n_resamples=0`` the means only (CI columns NaN), no bootstrap."""
    if n_resamples > 0:
        return summarise(per_query, n_resamples=n_resamples, seed=0)
    cols = [c for c in per_query.columns if c != "rank"]
    return pd.DataFrame({"metric": [metric_name(c) for c in cols], "value": [per_query[c].mean() for c in cols],
                         "ci_low": np.nan, "ci_high": np.nan, "n": [int(per_query[c].notna().sum()) for c in cols]})


def evaluate_run(profile: Profile | str, run: study.Run, dataset: str = "embedded", data_root: str | None = None,
                 n_resamples: int = 1000, *, batch_size: int | None = None, device: str | None = None
                 ) -> dict[str, Any]:
    """Evaluate ``run``'s best checkpoint on its test split, once (cached; see the module docstring).

    Returns a dict: ``run, seed, family, data, group, protocol, split ("test"), checkpoint, epoch, model,
    backbone, rerank_k, mean_cos, n_queries, n_gallery``; ``stage1`` / ``stage2`` (mean metrics, stage2
    None without a re-ranker); ``per_query`` {stage: DataFrame (Q rows: query_file, query_label, rank, rr,
    acc@K, ap, ap@200, p@K)}; ``top`` {stage: (Q, 10) gallery indices, best first}; ``final_stage``;
    ``query_files``, ``query_labels``, ``gallery_files``, ``gallery_labels``; ``relevant`` (Q, G) bool;
    ``summary`` (DataFrame: stage, metric, value, ci_low, ci_high, n; 95% bootstrap CIs from ``n_resamples``
    resamples, NaN with 0); ``cached`` (True = read from the cache, not computed).
    """
    profile = _profile(profile)
    spec = study.dataset_spec(profile, run, dataset, data_root)
    directory = study.run_dir(profile, run, dataset)
    ckpt = directory / "checkpoints" / "best.pt"
    if not ckpt.is_file():
        raise MissingRunError("; ".join(missing_runs(profile, [run], dataset)))
    key = _cache_key(ckpt, spec)
    hit = _read_cache(directory, key)
    if hit is None:
        meta, frames = _compute(ckpt, spec, batch_size or profile.evaluation.batch_size, device)
        _write_cache(directory, {"key": key, "written": dt.datetime.now().isoformat(timespec="seconds"), **meta},
                     frames)
        hit = _read_cache(directory, key)  # read back: the same typed frames as a cache hit
        if hit is None:
            raise RuntimeError(f"{directory}: the evaluation cache could not be read back after writing it")
        cached = False
    else:
        cached = True
    meta, frames = hit
    per_query, top = _unpack(frames)
    stages = list(per_query)
    first = per_query["stage1"]
    q_labels = first["query_label"].to_numpy(dtype=str)
    g_labels = np.asarray(meta["gallery_labels"], dtype=str)
    summary = pd.concat([_summary(per_query[s][metric_columns(per_query[s])], n_resamples).assign(stage=s)
                         for s in stages], ignore_index=True)
    return {
        "run": run.name, "seed": run.seed, "family": run.family, "data": run.data, "group": run.group,
        "protocol": spec.protocol, "split": "test", "checkpoint": str(ckpt), "epoch": meta.get("epoch"),
        "model": meta.get("model"), "backbone": meta.get("backbone"), "rerank_k": meta.get("rerank_k"),
        "mean_cos": meta.get("mean_cos"), "n_queries": len(first), "n_gallery": len(g_labels),
        "stage1": _nan_back(meta["stage1"]), "stage2": _nan_back(meta.get("stage2")),
        "per_query": per_query, "top": top, "final_stage": stages[-1],
        "query_files": first["query_file"].tolist(), "query_labels": q_labels.tolist(),
        "gallery_files": list(meta["gallery_files"]), "gallery_labels": g_labels.tolist(),
        "relevant": q_labels[:, None] == g_labels[None, :],
        "summary": summary[["stage", "metric", "value", "ci_low", "ci_high", "n"]], "cached": cached,
    }


# ---- baselines ---------------------------------------------------------------------------------------

def evaluate_baselines(profile: Profile | str, run: study.Run, dataset: str = "embedded",
                       data_root: str | None = None, seed: int = 0) -> dict[str, Any]:
    """Random and HOG baselines on the test split ``run`` is evaluated on (queries: each sketch once), cached
    in ``runs_dir()/<profile>/<dataset>/baselines/<run.data>/`` keyed by the train and test CSVs' content.

    Returns ``{"per_query": {method: DataFrame}, "hog_settings", "n_queries", "n_gallery", "cached"}``.
    """
    from .retrieval import file_fingerprint

    profile = _profile(profile)
    spec = study.dataset_spec(profile, run, dataset, data_root)
    directory = paths.runs_dir() / profile.name / dataset / "baselines" / run.data
    key = {"format": EVAL_FORMAT, "seed": seed, "grid": json.loads(json.dumps(HOG_GRID)),
           **{f"{s}_csv": str(spec.csv(s).resolve()) for s in ("train", "test")},
           **{f"{s}_content": file_fingerprint(spec.csv(s)) for s in ("train", "test")}}
    meta_file = directory / "baselines.json"
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        files = {m: directory / f"{i}.csv" for i, m in enumerate(meta.get("methods", []))}
        if meta.get("key") == key and all(f.is_file() for f in files.values()):
            return {"per_query": {m: pd.read_csv(f) for m, f in files.items()}, "hog_settings": meta["hog_settings"],
                    "n_queries": meta["n_queries"], "n_gallery": meta["n_gallery"], "cached": True}
    frames = read_splits(spec, ("train", "test"))
    test = frames["test"].drop_duplicates("sketch_file", keep="first").reset_index(drop=True)
    per_query, best, n_q, n_g = baseline_per_query(frames["train"], test, seed=seed)
    meta_file.unlink(missing_ok=True)
    for i, frame in enumerate(per_query.values()):
        atomic_write(directory / f"{i}.csv", lambda p, f=frame: f.to_csv(p, index=False, lineterminator="\n"))
    meta = {"key": key, "methods": list(per_query), "hog_settings": best, "n_queries": n_q, "n_gallery": n_g}
    atomic_write_text(meta_file, json.dumps(_json_safe(meta), indent=1, default=str) + "\n")
    return {"per_query": per_query, "hog_settings": best, "n_queries": n_q, "n_gallery": n_g, "cached": False}


# ---- tables ------------------------------------------------------------------------------------------

def results_table(profile: Profile | str, runs: Sequence[study.Run], dataset: str = "embedded",
                  data_root: str | None = None, n_resamples: int | None = None, baselines: bool = True
                  ) -> pd.DataFrame:
    """Long table of test-split results: one row per (run, seed, stage, metric).

    Columns ``RESULT_COLUMNS``: ``value`` is the mean over queries, ``ci_low``/``ci_high`` its 95%
    bootstrap interval (``n_resamples``, default the profile's ``evaluation.bootstrap``); ``stage`` is
    ``stage1``, ``stage2`` (AAFG re-ranking) or ``"-"`` for the baselines (``family="baseline"``, one
    random and one HOG row set per test split, ``seed`` NaN). Metrics a gallery is too small for (P@200
    on 80 photos) are left out. Raises :class:`MissingRunError` listing every untrained run.
    """
    profile = _profile(profile)
    n_resamples = n_resamples or profile.evaluation.bootstrap
    missing = missing_runs(profile, runs, dataset)
    if missing:
        raise MissingRunError("checkpoints missing (train them first):\n  " + "\n  ".join(missing))
    frames, baseline_done = [], set()
    for run in runs:
        res = evaluate_run(profile, run, dataset, data_root, n_resamples)
        s, pq = res["summary"], res["per_query"]
        note = ""
        if "stage2" in pq:
            changed = int((pq["stage1"]["rank"] != pq["stage2"]["rank"]).sum())
            note = f"top-{res['rerank_k']} re-ranked; {changed}/{res['n_queries']} queries changed rank"
        frames.append(s.assign(run=run.name, family=run.family, group=run.group, data=run.data, seed=run.seed,
                               protocol=res["protocol"], split="test", n_queries=res["n_queries"],
                               n_gallery=res["n_gallery"], epoch=res["epoch"],
                               notes=np.where(s["stage"] == "stage2", note, "")))
        if baselines and run.data not in baseline_done:
            baseline_done.add(run.data)
            base = evaluate_baselines(profile, run, dataset, data_root)
            for method, pq in base["per_query"].items():
                name, _, settings = method.partition(" ")
                frames.append(summarise(pq, n_resamples=n_resamples, seed=0).assign(
                    run=name, family="baseline", group="baseline", data=run.data, seed=np.nan,
                    stage=BASELINE_STAGE, protocol=res["protocol"], split="test", n_queries=base["n_queries"],
                    n_gallery=base["n_gallery"], epoch=np.nan,
                    notes=f"tuned on train: {settings}" if settings else "seed 0"))
    out = pd.concat(frames, ignore_index=True)
    out = out[out["n"] > 0]  # P@K on a gallery smaller than K
    return out[RESULT_COLUMNS].reset_index(drop=True)


def _fmt(v: float, lo: float, hi: float) -> str:
    return f"{v:.3f} [{lo:.3f}, {hi:.3f}]"


def _row_groups(results: pd.DataFrame) -> list[tuple[tuple[str, str, str], pd.DataFrame]]:
    """(run, data, stage) groups: per test split (in order of appearance) the models, then the baselines."""
    data_order = {d: i for i, d in enumerate(dict.fromkeys(results["data"]))}
    keys = list(dict.fromkeys(zip(results["run"], results["data"], results["stage"])))
    keys.sort(key=lambda k: (data_order[k[1]], k[2] == BASELINE_STAGE))
    grouped = results.groupby(["run", "data", "stage"], sort=False)
    return [(k, grouped.get_group(k)) for k in keys]


def headline_table(results: pd.DataFrame, protocol: str | None = None) -> pd.DataFrame:
    """One row per (model, test data, stage) with its protocol's metrics, as text.

    Fine-grained: acc@1/5/10, MRR; category-level: mAP@all, mAP@200 (SAKE normalisation: AP@200 divided by
    min(200, #relevant)), P@100, P@200; scene-level: R@1/5/10. Several seeds: ``mean ± std (n seeds)``
    of the per-seed values (std with ddof 1); one seed: ``value [95% CI]``. ``n/a: gallery < K`` where the
    gallery is smaller than K; ``–`` where the metric is not one of the row's protocol.

    ``protocol`` keeps only that protocol's rows and columns (scene columns named R@K). Without it, every
    protocol in one table, acc@K and R@K sharing the columns ``acc@K / R@K`` (R@K is acc@K).
    """
    if protocol is not None:
        results = results[results["protocol"] == protocol]
        if results.empty:
            raise ValueError(f"no results with protocol {protocol!r}")
    shared = {f"{a}@{k}": f"acc@{k} / R@{k}" for k in (1, 5, 10) for a in ("acc", "R")} if protocol is None else {}
    columns = list(dict.fromkeys(shared.get(c, c) for spec in HEADLINE_METRICS.values() for _, c in spec))
    rows = []
    for (run, data, stage), g in _row_groups(results):
        proto = g["protocol"].iloc[0]
        seeds = g["seed"].dropna().unique()
        row: dict[str, Any] = {"model": run, "test data": data,
                               "stage": {"stage1": "1", "stage2": "2 (re-ranked)"}.get(stage, stage),
                               "seeds": len(seeds) or NOT_APPLICABLE, "queries": int(g["n_queries"].iloc[0]),
                               "gallery": int(g["n_gallery"].iloc[0]), **{c: NOT_APPLICABLE for c in columns}}
        for metric, col in HEADLINE_METRICS.get(proto, HEADLINE_METRICS["fine"]):
            col = shared.get(col, col)
            m = g[g["metric"] == metric]
            if m.empty:  # "n/a" alone would read back as NaN from the CSV
                cut = metric.partition("@")[2]
                row[col] = f"n/a: gallery < {cut}" if metric.startswith("P@") else "not computed"
            elif len(seeds) > 1:
                row[col] = f"{m['value'].mean():.3f} ± {m['value'].std(ddof=1):.3f} ({len(m)} seeds)"
            else:
                r = m.iloc[0]
                row[col] = _fmt(r["value"], r["ci_low"], r["ci_high"])
        rows.append(row)
    table = pd.DataFrame(rows)
    return table[[c for c in table.columns if c not in columns or (table[c] != NOT_APPLICABLE).any()]]


def ci_table(results: pd.DataFrame, metrics: Sequence[str] = ("acc@1", "acc@5", "acc@10", "mrr", "mAP@all",
                                                               "mAP@200", "P@100", "P@200")) -> pd.DataFrame:
    """Every (run, seed, stage) with ``value [95% CI]`` per metric (the full results, readable)."""
    rows = []
    for r, g in results.groupby(["run", "seed", "data", "stage"], sort=False, dropna=False):
        by = g.set_index("metric")
        rows.append({"run": r[0], "seed": "" if pd.isna(r[1]) else int(r[1]), "data": r[2], "stage": r[3],
                     **{m: _fmt(*by.loc[m, ["value", "ci_low", "ci_high"]]) if m in by.index else ""
                        for m in metrics}})
    table = pd.DataFrame(rows)
    return table[[c for c in table.columns if (table[c] != "").any()]]


def stage_comparison(results: pd.DataFrame, group: str = "ablation", metrics: Sequence[str] = ("acc@1", "mrr")
                     ) -> pd.DataFrame:
    """Stage 1 against stage 2 for the runs of ``group`` (first seed): ``value [CI]`` per stage, the change,
    and how many queries the re-ranker moved (from the results' ``notes``)."""
    sub = results[(results["group"] == group) & (results["family"] != "baseline")]
    rows = []
    for run, g in sub.groupby("run", sort=False):
        g = g[g["seed"] == g["seed"].iloc[0]]
        row: dict[str, Any] = {"run": run, "seed": int(g["seed"].iloc[0])}
        for m in metrics:
            vals = {}
            for stage in STAGES:
                hit = g[(g["stage"] == stage) & (g["metric"] == m)]
                vals[stage] = hit.iloc[0] if len(hit) else None
                row[f"{m} {stage}"] = _fmt(*hit.iloc[0][["value", "ci_low", "ci_high"]]) if len(hit) else "—"
            row[f"{m} change"] = (f"{vals['stage2']['value'] - vals['stage1']['value']:+.3f}"
                                  if vals["stage2"] is not None and vals["stage1"] is not None else "—")
        s2 = g.loc[g["stage"] == "stage2", "notes"]
        row["stage 2"] = s2.iloc[0] if len(s2) else "none (no cross-attention)"
        rows.append(row)
    return pd.DataFrame(rows)


def write_results_csv(results: pd.DataFrame) -> dict[str, Path]:
    """Write ``reports_dir()/results.csv`` (the headline table, shown on ``index.html``) and
    ``reports_dir()/results_long.csv`` (every metric with its CI), atomically."""
    out = paths.reports_dir()
    headline = headline_table(results)
    files = {"results": out / "results.csv", "results_long": out / "results_long.csv"}
    atomic_write(files["results"], lambda p: headline.to_csv(p, index=False, lineterminator="\n"))
    atomic_write(files["results_long"], lambda p: results.to_csv(p, index=False, lineterminator="\n"))
    return files


def published_table(wide: bool = False) -> pd.DataFrame:
    """The published numbers of the SBIR reference (section 5), as reported (``unit`` says percent or
    fraction), from ``resources/published.csv``: one row per (method, dataset, split, metric). Never
    comparable with this study's numbers as they stand: other datasets, pretrained backbones, GPUs.

    ``wide=True``: one row per (dataset, split, method), one column per metric, values as transcribed text;
    notes join the method name and pretraining the backbone column.
    """
    path = paths.RESOURCES_DIR / "published.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in PUBLISHED_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}")
    table = table[PUBLISHED_COLUMNS]
    if wide:
        table = table.assign(
            method=table["method"] + np.where(table["notes"] != "", " (" + table["notes"] + ")", ""),
            backbone=np.where(table["backbone"] != "", table["backbone"] + ", " + table["pretraining"],
                              table["pretraining"]))
        keys = ["dataset", "split", "method", "unit", "backbone", "source"]
        out = table.pivot_table(index=keys, columns="metric", values="value", aggfunc="first", sort=False,
                                fill_value="").reset_index().rename_axis(columns=None)
        out = out.rename(columns={"backbone": "backbone, pretraining"})
        keys[4] = "backbone, pretraining"
        order = [m for m in ("acc@1", "acc@10", "R@1", "R@5", "R@10", "mAP@all", "P@100") if m in out.columns]
        return out[keys[:3] + order + keys[3:] + [c for c in out.columns if c not in keys + order]]
    try:
        return table.assign(value=pd.to_numeric(table["value"]))
    except ValueError as exc:
        raise ValueError(f"{path}: a value is not a number ({exc})") from None


def attention_scales(profile: Profile | str, runs: Sequence[study.Run], dataset: str = "embedded"
                     ) -> pd.DataFrame:
    """The learnt residual scales ``gamma`` of the attention blocks in each run's best checkpoint (first
    seed). They start at 0 (identity blocks): near 0, a block (and stage-2 re-ranking) changes little."""
    import torch

    rows = []
    for run in first_seed_runs(runs):
        ckpt = checkpoint_path(profile, run, dataset)
        if run.family != "aafg" or not ckpt.is_file():
            continue
        state = torch.load(ckpt, map_location="cpu", weights_only=True)["model"]
        rows.append({"run": run.name, **{k.removesuffix(".gamma") + " gamma": float(v)
                                         for k, v in state.items() if k.endswith(".gamma")}})
    return pd.DataFrame(rows)


# ---- leakage guards ----------------------------------------------------------------------------------

def leakage_checks(profile: Profile | str, runs: Sequence[study.Run], dataset: str = "embedded",
                   data_root: str | None = None) -> pd.DataFrame:
    """Leakage guards per test split (``data``): no photo or sketch shared between train, val and test
    (``split_integrity``); for every evaluated run (first seed of each name) the gallery holds each test
    photo exactly once and the queries are the test sketches, each once. Columns ``data, check, count,
    ok, detail``."""
    profile = _profile(profile)
    rows = []
    by_data: dict[str, list[study.Run]] = {}
    for run in first_seed_runs(runs):
        by_data.setdefault(run.data, []).append(run)
    for data, group in by_data.items():
        spec = study.dataset_spec(profile, group[0], dataset, data_root)
        frames = read_splits(spec)
        integ = split_integrity(frames)
        shared = integ[integ["check"].str.contains(" in both ")]
        rows.append({"data": data, "check": "no photo or sketch in two of train/val/test",
                     "count": int(shared["count"].sum()), "ok": bool(shared["ok"].all()),
                     "detail": "; ".join(f"{r.check}: {r.detail}" for r in shared.itertuples() if not r.ok)})
        test = frames["test"]
        photos, sketches = set(test["image_file"]), set(test["sketch_file"])
        bad_gallery, bad_queries = [], []
        for run in group:
            res = evaluate_run(profile, run, dataset, data_root, n_resamples=0)
            g, q = res["gallery_files"], res["query_files"]
            if len(g) != len(set(g)) or set(g) != photos:
                bad_gallery.append(run.name)
            if len(q) != len(set(q)) or set(q) != sketches:
                bad_queries.append(run.name)
        names = f"{len(group)} run(s): " + ", ".join(r.name for r in group)
        rows.append({"data": data, "check": f"gallery = the {len(photos)} test photos, each once",
                     "count": len(bad_gallery), "ok": not bad_gallery,
                     "detail": ("failed: " + ", ".join(bad_gallery)) if bad_gallery else names})
        rows.append({"data": data, "check": f"queries = the {len(sketches)} test sketches, each once",
                     "count": len(bad_queries), "ok": not bad_queries,
                     "detail": ("failed: " + ", ".join(bad_queries)) if bad_queries else names})
    return pd.DataFrame(rows, columns=["data", "check", "count", "ok", "detail"])


# ---- galleries ---------------------------------------------------------------------------------------

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


def first_seed_runs(runs: Sequence[study.Run]) -> list[study.Run]:
    """The first run of each name (its first seed)."""
    seen: dict[str, study.Run] = {}
    for run in runs:
        seen.setdefault(run.name, run)
    return list(seen.values())


def write_galleries(profile: Profile | str, runs: Sequence[study.Run], dataset: str = "embedded",
                    data_root: str | None = None) -> list[Path]:
    """``reports_dir()/galleries/<run name>/result.html`` for each model (first seed): top 10 per query
    sketch of its final ranking (stage 2 for AAFG with cross-attention), correct photo in red, rank of
    misses; ``profile.evaluation.gallery_rows`` queries (seeded sample). Also ``galleries/index.html``."""
    from .gallery import write_gallery_index, write_result_html

    profile = _profile(profile)
    root = paths.reports_dir() / "galleries"
    pages = []
    for run in first_seed_runs(runs):
        res = evaluate_run(profile, run, dataset, data_root, n_resamples=0)
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


# ---- figure ------------------------------------------------------------------------------------------

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


__all__ = [
    "EVAL_FORMAT", "HOG_GRID", "HEADLINE_METRICS", "MissingRunError", "checkpoint_path", "missing_runs",
    "evaluate_run", "metric_columns", "retrieval_task", "baseline_per_query", "evaluate_baselines",
    "results_table", "headline_table", "ci_table", "stage_comparison", "attention_scales", "write_results_csv",
    "published_table",
    "leakage_checks", "first_seed_runs", "write_galleries", "gallery_links_html", "plot_test_results",
]
