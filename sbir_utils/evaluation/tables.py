"""The results tables: the long table (one row per run, seed, stage, metric), the headline table, the CI
table, stage 1 against stage 2, and ``results.csv`` / ``results_long.csv``.

Calls to the package's public functions go through ``sbir_utils.evaluation`` (imported late), so a patch of
``evaluation.X`` reaches every caller of ``X`` as it did when this was one module."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import paths, study
from ..config import Profile
from ..fileio import atomic_write
from ..metrics import summarise
from .common import (
    BASELINE_STAGE,
    HEADLINE_METRICS,
    NOT_APPLICABLE,
    RESULT_COLUMNS,
    STAGES,
    MissingRunError,
    _profile,
)


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
    from .. import evaluation

    profile = _profile(profile)
    n_resamples = n_resamples or profile.evaluation.bootstrap
    missing = evaluation.missing_runs(profile, runs, dataset)
    if missing:
        raise MissingRunError("checkpoints missing (train them first):\n  " + "\n  ".join(missing))
    frames, baseline_done = [], set()
    for run in runs:
        res = evaluation.evaluate_run(profile, run, dataset, data_root, n_resamples)
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
            base = evaluation.evaluate_baselines(profile, run, dataset, data_root)
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
    from .. import evaluation

    out = paths.reports_dir()
    headline = evaluation.headline_table(results)
    files = {"results": out / "results.csv", "results_long": out / "results_long.csv"}
    atomic_write(files["results"], lambda p: headline.to_csv(p, index=False, lineterminator="\n"))
    atomic_write(files["results_long"], lambda p: results.to_csv(p, index=False, lineterminator="\n"))
    return files
