"""`engine.objectives`: the cosine schedule, the objective of each epoch, and a batch's total loss."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from sbir_utils.config import TrainConfig
from sbir_utils.engine.objectives import _objective, compute_loss, cosine_lr
from sbir_utils.losses import info_nce


def test_cosine_lr_starts_at_base_and_halves_midway():
    assert cosine_lr(1e-3, 1, 10) == pytest.approx(1e-3)
    assert cosine_lr(1e-3, 6, 10) == pytest.approx(0.5e-3)
    assert cosine_lr(1e-3, 10, 10) == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 0.9)))
    assert cosine_lr(1e-3, 1, 0) == pytest.approx(1e-3)  # no division by zero
    lrs = [cosine_lr(1.0, e, 8) for e in range(1, 9)]
    assert lrs == sorted(lrs, reverse=True)


@pytest.mark.parametrize("changes,expected", [
    ({"loss": "infonce", "warmup_epochs": 0}, ["infonce"] * 3),
    ({"loss": "triplet", "mining": "hard", "warmup_epochs": 2, "warmup_loss": "infonce"},
     ["infonce", "infonce", "triplet-hard"]),
    ({"loss": "triplet", "mining": "hard", "warmup_epochs": 1, "warmup_loss": "semihard"},
     ["triplet-semihard", "triplet-hard", "triplet-hard"]),
    ({"loss": "triplet", "mining": "semihard", "warmup_epochs": 0}, ["triplet-semihard"] * 3),
])
def test_objective_of_each_epoch(changes, expected):
    cfg = dataclasses.replace(TrainConfig(), **changes)
    assert [_objective(e, cfg) for e in (1, 2, 3)] == expected


def _batch(with_pairs: bool) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    out = {"sketch": torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=1),
           "photo": torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=1)}
    if with_pairs:
        out["pair_scores"] = torch.randn(6, 3, generator=g)
        out["pair_valid"] = torch.ones(6, 3, dtype=torch.bool)
    return out, torch.arange(6)


def test_infonce_loss_is_the_losses_module_s():
    cfg = TrainConfig(loss="infonce", temperature=0.1)
    out, labels = _batch(False)
    total, parts = compute_loss(out, labels, cfg, "infonce", symmetric=True)
    assert float(total) == pytest.approx(float(info_nce(out["sketch"], out["photo"], 0.1, True, labels)))
    assert set(parts) == {"loss_embed"}


def test_pair_term_is_added_with_its_weight_and_left_out_at_zero():
    cfg = TrainConfig(loss="triplet", margin=0.2)
    out, labels = _batch(True)
    base, parts0 = compute_loss(out, labels, cfg, "triplet-hard", pair_weight=0.0)
    total, parts = compute_loss(out, labels, cfg, "triplet-hard", pair_weight=2.0)
    assert "loss_pair" not in parts0 and set(parts) == {"loss_embed", "loss_pair"}
    assert float(total) == pytest.approx(float(base) + 2.0 * float(parts["loss_pair"]), rel=1e-5)
    assert float(parts["loss_embed"]) == pytest.approx(float(parts0["loss_embed"]))
    # the parts stay on the loss's device, detached: reading them is the training loop's choice (no sync here)
    assert all(isinstance(v, torch.Tensor) and v.ndim == 0 and not v.requires_grad for v in parts.values())
