"""Losses on L2-normalised embeddings: batch-hard triplet, InfoNCE, and the AAFG pair-ranking loss.

Labels: the photo id for fine-grained and scene-level data, the class for category-level data. A
reference photo whose label equals the anchor's is never a negative.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MININGS = ("hard", "semihard")


def pairwise_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distance of L2-normalised rows, (N, D) x (M, D) -> (N, M), with a finite gradient at 0."""
    a, b = F.normalize(a.float(), dim=-1), F.normalize(b.float(), dim=-1)
    return (2.0 - 2.0 * a @ b.T).clamp_min(1e-12).sqrt()


def batch_hard_triplet(
    anchors: torch.Tensor,
    refs: torch.Tensor,
    labels: torch.Tensor,
    ref_labels: torch.Tensor | None = None,
    margin: float = 0.2,
    mining: str = "hard",
) -> torch.Tensor:
    """Triplet margin loss with in-batch mining (Hermans et al. 2017), anchor = sketch, refs = photos.

    For each anchor: the hardest (farthest) reference with its label is the positive (with photo-unique
    fine-grained batches: its own photo) and the negative is

    * ``mining="hard"``: the closest reference with another label (batch-hard);
    * ``mining="semihard"``: the closest reference with another label that is still farther than the
      positive, or the farthest negative when there is none (FaceNet's semi-hard rule; easier, used
      to start training from random initialisation without collapse).

    Loss = mean over anchors of ``max(0, d(a, p) - d(a, n) + margin)``, Euclidean distance of
    L2-normalised embeddings. Anchors without a positive or a negative in the batch are left out
    (0 when none is left). Equals pytorch-metric-learning's ``TripletMarginLoss(margin,
    reducer=MeanReducer())`` with ``BatchHardMiner()`` for ``mining="hard"`` (tested).

    Args: anchors (B, D), refs (M, D), labels (B,), ref_labels (M,) (default ``labels``).
    """
    if mining not in MININGS:
        raise ValueError(f"mining must be one of {MININGS}, got {mining!r}")
    ref_labels = labels if ref_labels is None else ref_labels
    dist = pairwise_distance(anchors, refs)  # (B, M)
    pos = labels[:, None] == ref_labels[None, :]
    neg = ~pos
    usable = pos.any(1) & neg.any(1)
    if not usable.any():
        return anchors.sum() * 0.0
    d_ap = dist.masked_fill(~pos, float("-inf")).max(1).values  # (B,)
    hardest_neg = dist.masked_fill(~neg, float("inf")).min(1).values
    if mining == "hard":
        d_an = hardest_neg
    else:
        outside = neg & (dist > d_ap[:, None].detach())
        semi = dist.masked_fill(~outside, float("inf")).min(1).values
        easiest = dist.masked_fill(~neg, float("-inf")).max(1).values
        d_an = torch.where(outside.any(1), semi, easiest)
    return F.relu(d_ap - d_an + margin)[usable].mean()


def info_nce(
    sketch: torch.Tensor,
    photo: torch.Tensor,
    temperature: float = 0.05,
    symmetric: bool = False,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """InfoNCE with in-batch negatives: row i of ``sketch @ photo.T / temperature`` classifies photo i.

    Equals ``F.cross_entropy(sketch @ photo.T / temperature, arange(B))`` (sketch -> photo); with
    ``symmetric=True`` the mean of that and the photo -> sketch direction.

    Duplicate labels: with ``labels`` given, an off-diagonal pair with the anchor's label (another
    sketch of the same photo, or a same-class photo in category-level batches) is masked out of the
    softmax: it is neither a positive nor a negative. Photo-unique batches never have such pairs.

    Args: sketch (B, D), photo (B, D) L2-normalised; labels (B,) optional.
    """
    logits = sketch.float() @ photo.float().T / temperature  # (B, B)
    if labels is not None:
        b = logits.shape[0]
        dup = (labels[:, None] == labels[None, :]) & ~torch.eye(b, dtype=torch.bool, device=logits.device)
        logits = logits.masked_fill(dup, float("-inf"))
    target = torch.arange(logits.shape[0], device=logits.device)
    loss = F.cross_entropy(logits, target)
    if symmetric:
        loss = 0.5 * (loss + F.cross_entropy(logits.T, target))
    return loss


def pair_ranking_loss(scores: torch.Tensor, valid: torch.Tensor | None = None, temperature: float = 0.05) -> torch.Tensor:
    """The AAFG stage-2 loss: cross-entropy picking column 0 (anchor with its photo) among the row's
    candidates (its hardest in-batch negatives), scores being pair cosines divided by ``temperature``.

    Args: scores (B, 1 + n); valid (B, 1 + n) bool, False entries left out of the softmax.
    """
    logits = scores.float() / temperature
    if valid is not None:
        logits = logits.masked_fill(~valid, float("-inf"))
    return F.cross_entropy(logits, torch.zeros(scores.shape[0], dtype=torch.long, device=scores.device))
