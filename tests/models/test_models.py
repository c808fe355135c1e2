"""`models` (the package): `build_model` builds the model a config names, with the BN neck only where it belongs.
(Backbones, AAFG and ConvNeXt-InfoNCE: test_backbones.py, test_aafg.py, test_siamese.py.)"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sbir_utils.config import TrainConfig
from sbir_utils.models import AAFG, ConvNeXtInfoNCE, build_model
from tests.helpers import random_images as _x

torch.set_num_threads(1)


def test_build_model_factory():
    cfg = TrainConfig(model="aafg", backbone="resnet18", embed_dim=8, self_attention=False)
    m = build_model(cfg)
    assert isinstance(m, AAFG) and m.self_attn is None and m.has_pair_scorer
    m = build_model(dataclasses.replace(cfg, model="convnext_infonce", backbone="convnext_atto"))
    assert isinstance(m, ConvNeXtInfoNCE) and not m.has_pair_scorer
    with pytest.raises(ValueError, match="unknown model"):
        build_model(dataclasses.replace(cfg, model="clip"))


def test_convnext_bn_neck_only_from_random_init(tmp_path):
    """ConvNeXt-InfoNCE gets the BN neck by default only from random initialisation (it sat at
    log(batch) without one); with pretrained weights it keeps the seed's layout."""
    cfg = TrainConfig(model="convnext_infonce", backbone="convnext_atto", embed_dim=16)
    torch.manual_seed(0)
    random_init = build_model(cfg)
    assert {"neck.sketch.running_mean", "neck.photo.weight"} <= set(random_init.state_dict())
    x = 2.0 + 0.3 * _x(16, 64, seed=3)  # mostly white, like a normalised sketch or a bright photo

    def mean_cos(e: torch.Tensor) -> float:
        return float((e @ e.T).fill_diagonal_(0).sum()) / (len(e) * (len(e) - 1))

    torch.manual_seed(0)
    without = build_model(cfg, head_bn=False)
    with torch.no_grad():
        assert abs(mean_cos(random_init(x, x)["photo"])) < 0.2
        assert mean_cos(without(x, x)["photo"]) > 0.6
    weights = tmp_path / "atto.pth"
    torch.save(random_init.embedding_net.net.state_dict(), weights)
    pretrained = build_model(dataclasses.replace(cfg, weights=str(weights)))
    assert pretrained.neck is None and not any(k.startswith("neck.") for k in pretrained.state_dict())
    assert without.neck is None
