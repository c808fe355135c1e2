"""sbir_utils.evaluation.cache: the cache files round-trip, a changed key misses, means without a bootstrap."""

import math

import numpy as np
import pandas as pd

from sbir_utils import evaluation
from sbir_utils.evaluation import cache


def _frame():
    details = {"per_query": pd.DataFrame({"rank": [1, 3], "rr": [1.0, 1 / 3], "acc@1": [1.0, 0.0]}),
               "query_files": ["s/a.png", "s/b.png"], "query_labels": ["001", "002"], "top": [[4, 2], [0, 1]]}
    return cache._per_query_frame(details)


def test_cache_round_trip_and_key_mismatch(tmp_path):
    frame = _frame()
    assert list(frame.columns) == ["query_file", "query_label", "rank", "rr", "acc@1", "top"]
    assert frame["top"].tolist() == ["4 2", "0 1"]
    key = {"format": evaluation.EVAL_FORMAT, "checkpoint": "abc"}
    cache._write_cache(tmp_path, {"key": key, "stages": ["stage1"], "stage1": {"acc@1": float("nan")}},
                       {"stage1": frame})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test_eval.json", "test_eval_stage1.csv"]
    meta, frames = cache._read_cache(tmp_path, key)
    assert meta["stage1"] == {"acc@1": None}  # strict JSON
    assert frames["stage1"]["query_label"].tolist() == ["001", "002"]  # labels stay text
    per_query, top = cache._unpack(frames)
    assert top["stage1"].tolist() == [[4, 2], [0, 1]] and "top" not in per_query["stage1"]
    assert cache._read_cache(tmp_path, {**key, "checkpoint": "other"}) is None


def test_metric_columns_and_summary_without_bootstrap():
    per_query = _frame()
    cols = evaluation.metric_columns(per_query)
    assert cols == ["rank", "rr", "acc@1"]
    summary = cache._summary(per_query[cols], n_resamples=0)
    assert summary["metric"].tolist() == ["mrr", "acc@1"]
    assert np.allclose(summary["value"], [2 / 3, 0.5]) and summary["ci_low"].isna().all()
    assert summary["n"].tolist() == [2, 2] and not math.isnan(summary["value"].iloc[0])
