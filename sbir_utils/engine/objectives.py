"""What an epoch optimises: the objective of each epoch (warm-up, then the configured loss), the total loss
of a batch (embedding loss + AAFG's pair-ranking term), the cosine learning-rate schedule, and the checks
of the settings they read (see the package docstring, "Objective")."""

from __future__ import annotations

import math

import torch

from ..config import TrainConfig
from ..data.transforms import PHOTO_MODES
from ..losses import MININGS, batch_hard_triplet, info_nce, pair_ranking_loss
from ..models.siamese import POOLS

WARMUP_LOSSES = ("infonce", "semihard")


def cosine_lr(base_lr: float, epoch: int, epochs: int) -> float:
    """Learning rate of ``epoch`` (1-based): cosine decay from ``base_lr`` over ``epochs`` epochs, in
    closed form so that a resumed (or extended) run needs no scheduler state."""
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / max(epochs, 1)))


def _objective(epoch: int, cfg: TrainConfig, warmup_epochs: int, warmup_loss: str, mining: str) -> str:
    """The objective of ``epoch`` (1-based): ``infonce``, ``triplet-semihard`` or ``triplet-<mining>``."""
    if cfg.loss == "infonce" or (epoch <= warmup_epochs and warmup_loss == "infonce"):
        return "infonce"
    if epoch <= warmup_epochs and warmup_loss == "semihard":
        return "triplet-semihard"
    return f"triplet-{mining}"


def compute_loss(out: dict[str, torch.Tensor], labels: torch.Tensor, cfg: TrainConfig, objective: str,
                 symmetric: bool = False, pair_weight: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss of a batch and its parts (``loss_embed``, ``loss_pair``).

    ``out``: ``sketch`` and ``photo`` embeddings (B, D), for AAFG with a pair scorer also ``pair_scores``
    and ``pair_valid`` (see ``losses.pair_ranking_loss``); ``labels`` (B,). Returns (scalar loss, parts)."""
    if objective == "infonce":
        embed = info_nce(out["sketch"], out["photo"], cfg.temperature, symmetric, labels)
    else:
        embed = batch_hard_triplet(out["sketch"], out["photo"], labels, labels.clone(), cfg.margin,
                                   mining=objective.split("-", 1)[1])
    total, parts = embed, {"loss_embed": float(embed.detach())}
    if "pair_scores" in out and pair_weight > 0:
        pair = pair_ranking_loss(out["pair_scores"], out["pair_valid"], cfg.temperature)
        total = total + pair_weight * pair
        parts["loss_pair"] = float(pair.detach())
    return total, parts


def _check_config(cfg: TrainConfig) -> None:
    """Every out-of-range setting of ``cfg`` in one ``ValueError``."""
    problems = []
    for name, low in (("epochs", 1), ("batch_size", 2), ("image_size", 16), ("attn_reduction", 1)):
        if getattr(cfg, name) < low:
            problems.append(f"{name} must be >= {low}, got {getattr(cfg, name)}")
    if not cfg.lr > 0:
        problems.append(f"lr must be > 0, got {cfg.lr}")
    if not cfg.temperature > 0:
        problems.append(f"temperature must be > 0, got {cfg.temperature}")
    if cfg.margin < 0:
        problems.append(f"margin must be >= 0, got {cfg.margin}")
    if cfg.loss not in ("triplet", "infonce"):
        problems.append(f"loss must be 'triplet' or 'infonce', got {cfg.loss!r}")
    if cfg.photo_mode not in PHOTO_MODES:
        problems.append(f"photo_mode must be one of {PHOTO_MODES}, got {cfg.photo_mode!r}")
    if cfg.pool not in POOLS or (cfg.pool != "avg" and cfg.model != "convnext_infonce"):
        problems.append(f"pool must be one of {POOLS} (other than avg only for convnext_infonce), got {cfg.pool!r}")
    if problems:
        raise ValueError("; ".join(problems))


def _check_options(cfg: TrainConfig, warmup_epochs: int | None, warmup_loss: str | None,
                   mining: str) -> tuple[int, str]:
    """``(warmup_epochs, warmup_loss)``, the config's where not given; out-of-range values raise ValueError."""
    warmup_epochs = cfg.warmup_epochs if warmup_epochs is None else warmup_epochs
    warmup_loss = cfg.warmup_loss if warmup_loss is None else warmup_loss
    if warmup_loss not in WARMUP_LOSSES:
        raise ValueError(f"warmup_loss must be one of {WARMUP_LOSSES}, got {warmup_loss!r}")
    if warmup_epochs < 0:
        raise ValueError(f"warmup_epochs must be >= 0, got {warmup_epochs}")
    if mining not in MININGS:
        raise ValueError(f"mining must be one of {MININGS}, got {mining!r}")
    return warmup_epochs, warmup_loss
