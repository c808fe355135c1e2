"""`fusion`: late fusion of a checkpoint's scores with HOG's, HOG's weight chosen on validation."""

import dataclasses

import pytest

from sbir_utils import transfer
from tests.helpers import make_tiny_dataset


def test_fused_row_at_weight_zero_is_the_learned_rows_evaluation(env):
    """fusion.fused_metrics scores the checkpoint itself (its own preprocessing, retrieval_task's order): with HOG
    weighted 0 it must give exactly what engine.evaluate gives the pretrained-init row; HOG with weight
    chosen on validation can only be picked from the grid given."""
    import numpy as np

    from sbir_utils.data.index import load_spec, read_index
    from sbir_utils.engine import fit

    real = make_tiny_dataset(env / "real", photos=(6, 3, 5), sketches=2, size=48)
    from sbir_utils.config import TrainConfig

    cfg = TrainConfig(model="convnext_infonce", backbone="test_convnext", image_size=32, embed_dim=16, epochs=1,
                      batch_size=8, loss="infonce", photo_mode="edges", crop=True, seed=3)
    ckpt = fit(cfg, real, env / "run", progress=False)["best_checkpoint"]
    spec = load_spec(real)
    val_df, test_df = (read_index(spec.csv(s), spec) for s in ("val", "test"))
    rng = np.random.default_rng(0)
    hog_val = rng.random((len(val_df), val_df["label"].nunique()))
    hog_test = rng.random((len(test_df), test_df["label"].nunique()))
    from sbir_utils.fusion import fused_metrics

    learned, weight = fused_metrics(ckpt, val_df, test_df, hog_val, hog_test, weights=(0.0,))
    expected = transfer._test_metrics(ckpt, spec.index_dir)
    assert weight == 0.0
    for m in transfer.METRICS:
        assert learned[m] == pytest.approx(expected[m], abs=1e-9), m
    assert (learned["n_queries"], learned["n_gallery"]) == (expected["n_queries"], expected["n_gallery"])
    _, chosen = fused_metrics(ckpt, val_df, test_df, hog_val, hog_test, weights=(0.5, 2.0))
    assert chosen in (0.5, 2.0)
    # several checkpoints: their summed similarities, the ensemble's, before HOG is added
    from sbir_utils.fusion import ensemble_metrics

    other = fit(dataclasses.replace(cfg, seed=4), real, env / "run2", progress=False)["best_checkpoint"]
    pair, _ = fused_metrics([ckpt, other], val_df, test_df, hog_val, hog_test, weights=(0.0,))
    summed = ensemble_metrics([ckpt, other], test_df)
    for m in transfer.METRICS:
        assert pair[m] == pytest.approx(summed[m], abs=1e-9), m
    one, w_one = fused_metrics([ckpt], val_df, test_df, hog_val, hog_test, weights=(0.5, 2.0))
    assert w_one == chosen and one == fused_metrics(ckpt, val_df, test_df, hog_val, hog_test, weights=(0.5, 2.0))[0]
    with pytest.raises(ValueError, match="no checkpoints"):
        fused_metrics([], val_df, test_df, hog_val, hog_test)
