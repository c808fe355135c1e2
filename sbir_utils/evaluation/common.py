"""Shared pieces of the test-split evaluation: format constants, the headline metrics per protocol, the results
table's columns, :class:`MissingRunError`, and where a run's best checkpoint lives.

Calls to the package's public functions go through ``sbir_utils.evaluation`` (imported late), so a patch of
``evaluation.X`` reaches every caller of ``X`` as it did when this was one module."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import study
from ..config import Profile, load_profile

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


def checkpoint_path(profile: Profile | str, run: study.Run, dataset: str = "embedded") -> Path:
    """``RUN_DIR/checkpoints/best.pt`` of ``run``."""
    return study.run_dir(_profile(profile), run, dataset) / "checkpoints" / "best.pt"


def missing_runs(profile: Profile | str, runs: Sequence[study.Run], dataset: str = "embedded") -> list[str]:
    """One line per run without a best checkpoint, naming the notebook that trains it (empty = all there)."""
    from .. import evaluation

    out = []
    for run in runs:
        ckpt = evaluation.checkpoint_path(profile, run, dataset)
        if not ckpt.is_file():
            nb = "02 (AAFG)" if run.family == "aafg" else "03 (ConvNeXt-InfoNCE)"
            out.append(f"{run.name} seed {run.seed}: {ckpt} not found; run notebook {nb} first")
    return out


def first_seed_runs(runs: Sequence[study.Run]) -> list[study.Run]:
    """The first run of each name (its first seed)."""
    seen: dict[str, study.Run] = {}
    for run in runs:
        seen.setdefault(run.name, run)
    return list(seen.values())
