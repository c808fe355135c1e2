"""`transfer_references`: the fused rows add HOG's (and the frozen trunk's) scores with one weight, chosen on
validation, and say which in their detail."""

import numpy as np
import pytest

from sbir_utils.baselines import FUSION_WEIGHTS, fuse_scores, retrieval_task
from sbir_utils.data.index import load_spec, read_index
from sbir_utils.metrics import mean_metrics, per_query_metrics
from sbir_utils.transfer_references import HogReference, fused_row
from tests.helpers import make_tiny_dataset


def test_fused_rows_choose_one_weight_on_validation_for_hog_and_the_frozen_trunk(env):
    real = make_tiny_dataset(env / "real", photos=(6, 4, 5), sketches=2, size=32)
    spec = load_spec(real)
    val_df, test_df = (read_index(spec.csv(s), spec) for s in ("val", "test"))
    rng = np.random.default_rng(0)

    def scores(df):
        return rng.random((len(df), df["label"].nunique()))

    learned, hog_sims, frozen_sims = ([scores(val_df), scores(test_df)] for _ in range(3))
    hog = HogReference("HOG size=64", val_df, tuple(hog_sims), tuple(frozen_sims))
    _, _, rel_val = retrieval_task(val_df)
    _, _, rel_test = retrieval_task(test_df)
    for method, others in (("pretrained-init+HOG", [hog_sims]), ("pretrained-ensemble+HOG+frozen", [hog_sims, frozen_sims])):
        row = fused_row(method, learned, 0, 1.5, 10, "learned", hog, test_df, best_epoch=4)
        # by hand: the weight with the best validation MRR (the first on a tie), then the test split once with it
        val_mrr = [mean_metrics(per_query_metrics(fuse_scores(learned[0], [o[0] for o in others], w), rel_val))["mrr"]
                   for w in FUSION_WEIGHTS]
        weight = FUSION_WEIGHTS[int(np.argmax(val_mrr))]
        expected = mean_metrics(per_query_metrics(fuse_scores(learned[1], [o[1] for o in others], weight), rel_test))
        assert row["mrr"] == pytest.approx(expected["mrr"]) and row["acc@1"] == pytest.approx(expected["acc@1"])
        assert (row["method"], row["best_epoch"], row["pairs_seen"]) == (method, 4, 10)
        assert f"{weight:g} chosen on validation MRR" in row["detail"]
        assert ("and frozen-trunk" in row["detail"]) == (len(others) == 2)
        assert ("HOG weight" in row["detail"]) == (len(others) == 1)
