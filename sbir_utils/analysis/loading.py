"""Loading: the runs notebook 05 analyses and their test-split evaluations with per-query details
(:class:`RunResults`, from ``evaluation.evaluate_run``), and the procedural set's attribute table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import evaluation, study
from ..config import Profile
from ..data.index import DatasetSpec, read_index

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


def load_attributes_for(spec: DatasetSpec) -> pd.DataFrame | None:
    """The procedural set's attribute table above ``spec``'s index folder, or None for other data."""
    from ..data.procedural import load_attributes

    for folder in (spec.index_dir, *spec.index_dir.parents[:2]):
        if (folder / "attributes.csv").is_file():
            return load_attributes(folder)
    return None
