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
           "freeze_batchnorm", "read_state_dict", "rerank", "stage2_similarity", "trunk"]


def trunk(model: nn.Module) -> nn.Module:
    """The shared image encoder of ``model`` (``AAFG.backbone``, ``ConvNeXtInfoNCE.embedding_net``)."""
    for name in ("backbone", "embedding_net"):
        module = getattr(model, name, None)
        if isinstance(module, nn.Module):
            return module
    raise TypeError(f"{type(model).__name__} has no trunk (expected a .backbone or .embedding_net module)")


def freeze_batchnorm(model: nn.Module) -> int:
    """Put every BatchNorm of ``model``'s trunk in eval mode, so training normalises with the running statistics
    the trunk came with (pretrained or from a checkpoint) and never updates them; their affine weights still
    learn. Call it after each ``model.train()``. Returns how many layers it froze.

    Why: the shared encoder sees a batch of sketches, then a batch of photos. In train mode each is normalised
    by its own batch statistics, while evaluation uses running averages of both, so a small-data fine-tune
    learns features that evaluation does not reproduce (and overwrites ImageNet's statistics with those of
    a few hundred line drawings). Real shoes, Lite0 at 128 px: validation MRR 0.55 -> 0.68 with it frozen
    (``docs/pretrained-weights.md``). Leave it off from random initialisation, whose statistics mean nothing.
    """
    frozen = 0
    for module in trunk(model).modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
            frozen += 1
    return frozen


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
        if cfg.pool != "avg":
            raise ValueError(f"pool {cfg.pool!r}: only the convnext_infonce model has a pooling choice (AAFG pools "
                             "after its attention blocks)")
        return AAFG(backbone=cfg.backbone, weights=w, embed_dim=cfg.embed_dim,
                    self_attention=cfg.self_attention, cross_attention=cfg.cross_attention,
                    attn_reduction=cfg.attn_reduction, pair_negatives=pair_negatives, head_bn=head_bn)
    if cfg.model == "convnext_infonce":
        return ConvNeXtInfoNCE(backbone=cfg.backbone, weights=w, embed_dim=cfg.embed_dim, head_bn=head_bn,
                               pool=cfg.pool)
    raise ValueError(f"unknown model {cfg.model!r}; choose one of {MODELS}")
