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

Layout (one concern per module; every name below is re-exported here, where notebooks and tests import it):
``common`` (constants, :class:`MissingRunError`, checkpoint paths), ``cache`` (:func:`evaluate_run`),
``baseline_runs`` (:func:`evaluate_baselines`; the core is ``sbir_utils.baselines``), ``tables``,
``published``, ``inspection`` (:func:`attention_scales`), ``leakage``, ``galleries`` and ``figures``.
"""

from __future__ import annotations

from ..baselines import HOG_GRID, baseline_per_query, retrieval_task
from .baseline_runs import evaluate_baselines
from .cache import evaluate_run, metric_columns
from .common import (  # noqa: F401 (these constants are attributes, as before, not in __all__)
    BASELINE_STAGE,
    EVAL_FORMAT,
    HEADLINE_METRICS,
    NOT_APPLICABLE,
    PUBLISHED_COLUMNS,
    RESULT_COLUMNS,
    STAGES,
    TOP_SHOWN,
    MissingRunError,
    checkpoint_path,
    first_seed_runs,
    missing_runs,
)
from .figures import plot_test_results
from .galleries import gallery_links_html, write_galleries
from .inspection import attention_scales
from .leakage import leakage_checks
from .published import published_table
from .tables import ci_table, headline_table, results_table, stage_comparison, write_results_csv

__all__ = [
    "EVAL_FORMAT", "HOG_GRID", "HEADLINE_METRICS", "MissingRunError", "checkpoint_path", "missing_runs",
    "evaluate_run", "metric_columns", "retrieval_task", "baseline_per_query", "evaluate_baselines",
    "results_table", "headline_table", "ci_table", "stage_comparison", "attention_scales", "write_results_csv",
    "published_table",
    "leakage_checks", "first_seed_runs", "write_galleries", "gallery_links_html", "plot_test_results",
]
