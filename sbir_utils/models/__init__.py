"""Models: AAFG (``aafg``) and ConvNeXt-InfoNCE (``siamese``), built from a ``TrainConfig``.

Every model has ``embed_sketch(x)`` / ``embed_photo(x)`` -> (B, D) L2-normalised, query-independent
embeddings, ``forward(sketch, photo, labels)`` -> dict of training outputs and ``has_pair_scorer``
(True for AAFG with cross-attention, which adds the stage-2 ``pair_score``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from .aafg import AAFG, rerank, stage2_similarity
from .backbones import WeightsUnavailableError, build_trunk, read_state_dict
from .siamese import ConvNeXtInfoNCE

if TYPE_CHECKING:
    from ..config import TrainConfig

MODELS = ("aafg", "convnext_infonce")

__all__ = ["AAFG", "ConvNeXtInfoNCE", "MODELS", "WeightsUnavailableError", "build_model", "build_trunk",
           "read_state_dict", "rerank", "stage2_similarity"]


def build_model(cfg: TrainConfig, *, pair_negatives: int = 3, head_bn: bool | None = None,
                weights: str | None = None) -> nn.Module:
    """The model ``cfg.model`` with ``cfg``'s backbone, weights and switches.

    Args:
        cfg: training settings (``model``, ``backbone``, ``weights``, ``embed_dim``, ``self_attention``,
            ``cross_attention``, ``attn_reduction``).
        pair_negatives: AAFG only: hardest negatives per anchor for the pair loss.
        head_bn: BN neck before L2 normalisation (see ``AAFG``). ``None``: on for AAFG; for ConvNeXt-InfoNCE
            on only when training from random initialisation (with pretrained weights the seed's layout).
        weights: overrides ``cfg.weights`` (e.g. ``"random"`` when a checkpoint will be loaded anyway).
    """
    w = cfg.weights if weights is None else weights
    if head_bn is None:
        head_bn = cfg.model == "aafg" or cfg.weights == "random"
    if cfg.model == "aafg":
        return AAFG(backbone=cfg.backbone, weights=w, embed_dim=cfg.embed_dim,
                    self_attention=cfg.self_attention, cross_attention=cfg.cross_attention,
                    attn_reduction=cfg.attn_reduction, pair_negatives=pair_negatives, head_bn=head_bn)
    if cfg.model == "convnext_infonce":
        return ConvNeXtInfoNCE(backbone=cfg.backbone, weights=w, embed_dim=cfg.embed_dim, head_bn=head_bn)
    raise ValueError(f"unknown model {cfg.model!r}; choose one of {MODELS}")
