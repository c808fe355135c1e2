"""What an epoch optimises: the objective of each epoch (warm-up, then the configured loss), the total loss
of a batch (embedding loss + AAFG's pair-ranking term) and the cosine learning-rate schedule (see the package
docstring, "Objective"); the settings they read are checked by ``config.check_train_config``."""

from __future__ import annotations

import math

import torch

from ..config import WARMUP_LOSSES as WARMUP_LOSSES
from ..config import TrainConfig
from ..losses import batch_hard_triplet, info_nce, pair_ranking_loss


def cosine_lr(base_lr: float, epoch: int, epochs: int) -> float:
    """Learning rate of ``epoch`` (1-based): cosine decay from ``base_lr`` over ``epochs`` epochs, in
    closed form so that a resumed (or extended) run needs no scheduler state."""
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / max(epochs, 1)))


def _objective(epoch: int, cfg: TrainConfig) -> str:
    """The objective of ``epoch`` (1-based): ``infonce``, ``triplet-semihard`` or ``triplet-<cfg.mining>``."""
    warming = epoch <= cfg.warmup_epochs
    if cfg.loss == "infonce" or (warming and cfg.warmup_loss == "infonce"):
        return "infonce"
    if warming and cfg.warmup_loss == "semihard":
        return "triplet-semihard"
    return f"triplet-{cfg.mining}"


def compute_loss(out: dict[str, torch.Tensor], labels: torch.Tensor, cfg: TrainConfig, objective: str,
                 symmetric: bool = False, pair_weight: float = 1.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss of a batch and its parts (``loss_embed``, ``loss_pair``: detached 0-dim tensors on the loss's
    device, so that nothing here waits for the device).

    ``out``: ``sketch`` and ``photo`` embeddings (B, D), for AAFG with a pair scorer also ``pair_scores``
    and ``pair_valid`` (see ``losses.pair_ranking_loss``); ``labels`` (B,). Returns (scalar loss, parts)."""
    if objective == "infonce":
        embed = info_nce(out["sketch"], out["photo"], cfg.temperature, symmetric, labels)
    else:
        embed = batch_hard_triplet(out["sketch"], out["photo"], labels, labels.clone(), cfg.margin,
                                   mining=objective.split("-", 1)[1])
    total, parts = embed, {"loss_embed": embed.detach()}
    if "pair_scores" in out and pair_weight > 0:
        pair = pair_ranking_loss(out["pair_scores"], out["pair_valid"], cfg.temperature)
        total = total + pair_weight * pair
        parts["loss_pair"] = pair.detach()
    return total, parts
