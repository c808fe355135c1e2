"""Leakage guards per test split: split integrity, and each evaluated gallery and query set.

Calls to the package's public functions go through ``sbir_utils.evaluation`` (imported late), so a patch of
``evaluation.X`` reaches every caller of ``X`` as it did when this was one module."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from .. import study
from ..config import Profile
from ..data.index import read_splits, split_integrity
from .common import _profile


def leakage_checks(profile: Profile | str, runs: Sequence[study.Run], dataset: str = "embedded",
                   data_root: str | None = None) -> pd.DataFrame:
    """Leakage guards per test split (``data``): no photo or sketch shared between train, val and test
    (``split_integrity``); for every evaluated run (first seed of each name) the gallery holds each test
    photo exactly once and the queries are the test sketches, each once. Columns ``data, check, count,
    ok, detail``."""
    from .. import evaluation

    profile = _profile(profile)
    rows = []
    by_data: dict[str, list[study.Run]] = {}
    for run in evaluation.first_seed_runs(runs):
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
            res = evaluation.evaluate_run(profile, run, dataset, data_root, n_resamples=0)
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
