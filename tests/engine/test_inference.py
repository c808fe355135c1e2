"""`engine.inference`: ``encode`` embeds each image as it would alone and leaves the model's mode as it was;
``evaluate`` reports both stages of a checkpoint on the test split."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from sbir_utils.config import TrainConfig
from sbir_utils.engine import encode, evaluate, fit
from sbir_utils.models import build_model
from tests.helpers import make_tiny_dataset

torch.set_num_threads(1)
# timm's 0.37M-parameter test ResNet (BatchNorm, 96 channels) keeps every run to a second or two.
AAFG = TrainConfig(model="aafg", backbone="test_resnet", image_size=32, embed_dim=16, epochs=2, batch_size=8,
                   lr=1e-3, rerank_k=3, seed=7)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("inference_data"))


def _fit(cfg, data, run_dir, **settings):
    """``fit`` without progress bar, keeping every epoch's checkpoint; ``settings``: TrainConfig fields."""
    return fit(dataclasses.replace(cfg, keep_last=0, **settings), data, run_dir, progress=False)


def test_encode_embeds_each_image_alone_and_keeps_the_models_mode(data):
    torch.manual_seed(0)
    model = build_model(dataclasses.replace(AAFG, weights="random")).train()
    photos = sorted(str(p) for p in (data / "photos").glob("*.png"))[:5]
    emb, maps = encode(model, photos, "photo", 32, batch_size=2)
    assert emb.shape == (5, 16) and emb.dtype == torch.float32 and maps is None and model.training
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(5))
    alone, _ = encode(model, photos[3:4], "photo", 32)
    torch.testing.assert_close(alone[0], emb[3], atol=1e-5, rtol=0)  # eval mode: the batch does not matter
    with_maps, maps = encode(model, photos, "photo", 32, batch_size=2, with_maps=True)
    assert maps.dim() == 4 and maps.shape[0] == 5  # (N, C, h, w): the maps stage 2 re-ranks with
    torch.testing.assert_close(with_maps, emb, atol=1e-5, rtol=0)
    sketches, _ = encode(model, sorted(str(p) for p in (data / "sketches").glob("*.png"))[:2], "sketch", 32)
    assert sketches.shape == (2, 16) and not torch.allclose(sketches, emb[:2])


def test_evaluate_reports_both_stages(data, tmp_path):
    s = _fit(dataclasses.replace(AAFG, epochs=1), data, tmp_path / "run")
    res = evaluate(s["best_checkpoint"], data, "index_test.csv", batch_size=4)
    for stage in ("stage1", "stage2"):
        assert res[stage]["n_queries"] == 8 and res[stage]["n_gallery"] == 4
        assert 0.0 <= res[stage]["acc@1"] <= 1.0
    assert res["rerank_k"] == 3 and res["epoch"] == 1
    # Stage 2 only re-orders the top 3, so anything found in the top 3 stays there.
    res0 = evaluate(s["best_checkpoint"], data, "index_test.csv", batch_size=4, rerank_k=0)
    assert res0["stage2"] is None and res0["stage1"] == res["stage1"]
    # Without cross-attention there is no stage 2; without the BN neck the checkpoint still rebuilds.
    no_ca = _fit(dataclasses.replace(AAFG, epochs=1, cross_attention=False), data, tmp_path / "noca", head_bn=False)
    res = evaluate(no_ca["best_checkpoint"], data)
    assert res["stage2"] is None and res["stage1"]["n_queries"] == 8
