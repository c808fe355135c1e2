"""The random and HOG baselines on a run's test split, cached in
``runs_dir()/<profile>/<dataset>/baselines/<data>/`` (the core is ``sbir_utils.baselines.baseline_per_query``).

Calls to the package's public functions go through ``sbir_utils.evaluation`` (imported late), so a patch of
``evaluation.X`` reaches every caller of ``X`` as it did when this was one module."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from .. import paths, study
from ..baselines import HOG_GRID
from ..config import Profile
from ..data.index import read_splits
from ..fileio import atomic_write, atomic_write_text
from ..retrieval_task import retrieval_task
from .common import EVAL_FORMAT, _json_safe, _profile


def evaluate_baselines(profile: Profile | str, run: study.Run, dataset: str = "embedded",
                       data_root: str | None = None, seed: int = 0) -> dict[str, Any]:
    """Random and HOG baselines on the test split ``run`` is evaluated on (queries: each sketch once), cached
    in ``runs_dir()/<profile>/<dataset>/baselines/<run.data>/`` keyed by the train and test CSVs' content.

    Returns ``{"per_query": {method: DataFrame}, "hog_settings", "n_queries", "n_gallery", "cached"}``.
    """
    from .. import evaluation
    from ..retrieval import file_fingerprint

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
    test = retrieval_task(frames["test"]).queries.reset_index(drop=True)  # each sketch once
    per_query, best, n_q, n_g = evaluation.baseline_per_query(frames["train"], test, seed=seed)
    meta_file.unlink(missing_ok=True)
    for i, frame in enumerate(per_query.values()):
        atomic_write(directory / f"{i}.csv", lambda p, f=frame: f.to_csv(p, index=False, lineterminator="\n"))
    meta = {"key": key, "methods": list(per_query), "hog_settings": best, "n_queries": n_q, "n_gallery": n_g}
    atomic_write_text(meta_file, json.dumps(_json_safe(meta), indent=1, default=str) + "\n")
    return {"per_query": per_query, "hog_settings": best, "n_queries": n_q, "n_gallery": n_g, "cached": False}
