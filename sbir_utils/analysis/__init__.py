"""Error analysis of trained models (notebook 05): where retrieval fails and why.

:func:`load_results` reads one trained run's test-split evaluation with per-query details
(``evaluation.evaluate_run``: computed once per checkpoint and cached); the other functions turn a
:class:`RunResults` (or a checkpoint) into a table or a matplotlib figure. Ranks and metrics follow ``sbir_utils.metrics`` (ties
counted against the query; with one relevant photo AP = 1 / rank, so fine-grained mAP@all = MRR).

Which ranking: the worst queries, rank histograms, per-group metrics and attribute confusions use a
model's final ranking (stage 2 for AAFG with a cross-attention re-ranker: its top-K re-ordered, every
rank beyond K as in stage 1). Partial sketches, the embedding projection and the attention maps use the
stage-1 encoder (one image in, one embedding out).

Layout (one figure family per module; every name below is re-exported here, where notebook 05 and the tests
import it): ``loading`` (:class:`RunResults`, :func:`load_results`), ``queries`` (figures 1, 2), ``groups``
(3, 8), ``attributes`` (4), ``partial`` (5), ``attention`` (6) and ``projection`` (7).
"""

from __future__ import annotations

from .attention import attention_map, plot_attention
from .attributes import attribute_confusion, confusions, plot_attribute_confusion
from .groups import drawer_split, has_drawers, metric_table, per_group, plot_metric_tables
from .loading import RunResults, analysis_runs, load_attributes_for, load_available, load_results, query_table
from .partial import (
    FRACTIONS,
    _manifest,  # noqa: F401 (private, read by tests/analysis/test_analysis.py)
    has_strokes,
    partial_rasters,
    partial_sketch_curve,
    plot_partial_curve,
    stroke_file,
)
from .projection import embedding_projection, plot_projection
from .queries import plot_rank_histograms, plot_worst_queries, worst_queries

__all__ = [
    "FRACTIONS",
    "RunResults",
    "analysis_runs",
    "load_results",
    "load_available",
    "query_table",
    "worst_queries",
    "plot_worst_queries",
    "plot_rank_histograms",
    "metric_table",
    "per_group",
    "has_drawers",
    "drawer_split",
    "plot_metric_tables",
    "confusions",
    "attribute_confusion",
    "plot_attribute_confusion",
    "stroke_file",
    "has_strokes",
    "partial_rasters",
    "partial_sketch_curve",
    "plot_partial_curve",
    "attention_map",
    "plot_attention",
    "embedding_projection",
    "plot_projection",
    "load_attributes_for",
]
