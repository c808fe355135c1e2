"""One run's test-split evaluation, computed once per checkpoint and cached beside the run
(``test_eval.json``, ``test_eval_stage1.csv``, ``test_eval_stage2.csv``): :func:`evaluate_run`.

Calls to the package's public functions go through ``sbir_utils.evaluation`` (imported late), so a patch of
``evaluation.X`` reaches every caller of ``X`` as it did when this was one module."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import study
from ..config import Profile
from ..data.index import DatasetSpec
from ..fileio import atomic_write, atomic_write_text
from ..metrics import metric_name, summarise
from ..retrieval_task import relevance
from .common import EVAL_FORMAT, STAGES, MissingRunError, _json_safe, _nan_back, _profile


def _cache_key(ckpt: Path, spec: DatasetSpec) -> dict[str, Any]:
    from ..retrieval import file_fingerprint

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
    from .. import engine

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
    from .. import evaluation

    profile = _profile(profile)
    spec = study.dataset_spec(profile, run, dataset, data_root)
    directory = study.run_dir(profile, run, dataset)
    ckpt = directory / "checkpoints" / "best.pt"
    if not ckpt.is_file():
        raise MissingRunError("; ".join(evaluation.missing_runs(profile, [run], dataset)))
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
    summary = pd.concat([_summary(per_query[s][evaluation.metric_columns(per_query[s])], n_resamples).assign(stage=s)
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
        "relevant": relevance(q_labels, g_labels),
        "summary": summary[["stage", "metric", "value", "ci_low", "ci_high", "n"]], "cached": cached,
    }
