"""AAFG: attention-augmented Siamese model for fine-grained and category-level SBIR, leak-free.

One backbone is shared by sketches and photos. Two scores come out of it:

* **stage 1** (retrieval): ``embed_sketch(x)`` / ``embed_photo(x)`` -> (B, D) L2-normalised embeddings
  from backbone -> self-attention -> global average pool -> MLP head. They depend on one image only,
  so a query's embedding never sees the gallery or its answer; the gallery is ranked by cosine.
* **stage 2** (re-ranking): ``pair_score(sketch_maps, photo_maps)`` -> (B,) scores a (query, candidate)
  pair through cross-modal attention (sketch positions attend to photo positions and vice versa, then
  the same pool + head, then the cosine of the two). :func:`rerank` applies it to each query's top-K
  stage-1 candidates only: an evaluation never runs a query through cross-attention with its own pair
  unless that photo is among its K candidates, exactly like any other candidate.

Training (see ``sbir_utils.engine``) uses both: an embedding loss on the stage-1 embeddings (batch-hard
triplet or InfoNCE) and a listwise loss on pair scores of (anchor, its photo) against the anchor's
``pair_negatives`` hardest in-batch negative photos (cross-entropy, positive first). Because the
attention blocks start as the identity (``gamma = 0``), stage 2 starts equal to stage 1.

Ablations: ``self_attention`` and ``cross_attention`` switch the blocks off (baseline, +SA, +CA, both);
without cross-attention there is no stage 2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import CrossAttention2d, SelfAttention2d
from .backbones import build_trunk


class AAFG(nn.Module):
    """Args:
        backbone: torchvision/timm name (see ``backbones``); weights: random | imagenet | state-dict path.
        embed_dim: D of the embedding. self_attention / cross_attention: ablation switches.
        attn_reduction: query/key channels of the attention blocks are ``C // attn_reduction``.
        pair_negatives: hardest in-batch negatives per anchor scored by the pair head in training.
        head_bn: end the head with a BatchNorm per modality ("BN neck") before L2 normalisation. From
            random initialisation all pooled features point the same way (mean cosine ~0.99 between
            different images), which lets batch-hard triplet training collapse; centring them fixes it.
            At evaluation the running statistics are used, so an embedding still depends on its image only.
    """

    def __init__(
        self,
        backbone: str = "resnet50",
        weights: str = "random",
        embed_dim: int = 512,
        self_attention: bool = True,
        cross_attention: bool = True,
        attn_reduction: int = 1,
        pair_negatives: int = 3,
        head_bn: bool = True,
    ):
        super().__init__()
        if embed_dim < 1:
            raise ValueError(f"embed_dim must be >= 1, got {embed_dim}")
        self.backbone = build_trunk(backbone, weights)
        channels = int(self.backbone.num_features)
        self.self_attn = SelfAttention2d(channels, attn_reduction) if self_attention else None
        self.cross_attn = CrossAttention2d(channels, attn_reduction) if cross_attention else None
        self.head = nn.Sequential(nn.Linear(channels, channels), nn.ReLU(inplace=True), nn.Linear(channels, embed_dim))
        self.neck = (nn.ModuleDict({"sketch": nn.BatchNorm1d(embed_dim), "photo": nn.BatchNorm1d(embed_dim)})
                     if head_bn else None)
        self.pair_negatives = int(pair_negatives)
        self.embed_dim = int(embed_dim)

    @property
    def has_pair_scorer(self) -> bool:
        return self.cross_attn is not None

    # ---- stage 1: query-independent -------------------------------------------------------------
    def maps(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, C, h, w): backbone, then self-attention when on."""
        m = self.backbone(x)
        return self.self_attn(m) if self.self_attn is not None else m

    sketch_maps = maps
    photo_maps = maps

    def embed_maps(self, maps: torch.Tensor, kind: str = "photo",
                   stats: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """(B, C, h, w) -> (B, D): average pool, MLP head, BN neck of modality ``kind``, L2 normalisation.

        ``stats``: (mean, var) to normalise with instead of the neck's own (training: this batch's;
        evaluation: the running statistics). The pair path passes the stage-1 batch's statistics, so that
        its batches, which repeat each anchor, neither update the running statistics nor see others.
        """
        z = self.head(maps.mean(dim=(2, 3)))
        if self.neck is not None:
            bn = self.neck[kind]
            if stats is not None:  # in float32: under CPU bf16 autocast the stats and z arrive as bf16
                z = F.batch_norm(z.float(), stats[0].float(), stats[1].float(), bn.weight, bn.bias, False, 0.0,
                                 bn.eps)
            else:
                z = bn(z)
        return F.normalize(z, dim=-1)

    def _batch_stats(self, maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The neck's input mean/var over a training batch (detached), for the pair path."""
        if self.neck is None or not self.training:
            return None
        with torch.no_grad():
            z = self.head(maps.mean(dim=(2, 3)))
            return z.mean(0), z.var(0, unbiased=False)

    def embed_sketch(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed_maps(self.maps(x), "sketch")

    def embed_photo(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed_maps(self.maps(x), "photo")

    # ---- stage 2: pairwise -------------------------------------------------------------------------
    def pair_score(self, sketch_maps: torch.Tensor, photo_maps: torch.Tensor,
                   stats: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None) -> torch.Tensor:
        """Score of each (sketch, photo) pair, (B, C, h, w) x (B, C, h, w) -> (B,), a cosine in [-1, 1].

        Without cross-attention it is the stage-1 cosine. ``stats``: per-modality BN-neck statistics
        (training); by default the running statistics (evaluation, re-ranking).
        """
        if self.cross_attn is not None:
            sketch_maps, photo_maps = (self.cross_attn(sketch_maps, photo_maps),
                                       self.cross_attn(photo_maps, sketch_maps))
        running = {k: (bn.running_mean, bn.running_var) for k, bn in self.neck.items()} if self.neck is not None else {}
        stats = stats or running
        return (self.embed_maps(sketch_maps, "sketch", stats.get("sketch"))
                * self.embed_maps(photo_maps, "photo", stats.get("photo"))).sum(dim=-1)

    def forward(
        self, sketch: torch.Tensor, photo: torch.Tensor, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Training forward pass on a batch of pairs.

        Returns ``sketch`` (B, D) and ``photo`` (B, D) embeddings and, with cross-attention,
        ``pair_scores`` (B, 1 + n): column 0 scores (sketch i, photo i), columns 1.. its n hardest
        in-batch negative photos (by stage-1 cosine; photos whose label equals the anchor's are never
        negatives), and ``pair_valid`` (B, 1 + n) bool (False where a row had fewer negatives).
        """
        s_maps, p_maps = self.maps(sketch), self.maps(photo)
        out = {"sketch": self.embed_maps(s_maps, "sketch"), "photo": self.embed_maps(p_maps, "photo")}
        if self.cross_attn is not None and self.pair_negatives > 0 and sketch.shape[0] > 1:
            cand, valid = hardest_candidates(out["sketch"], out["photo"], labels, self.pair_negatives)
            b, n1 = cand.shape
            s_rep = s_maps.unsqueeze(1).expand(b, n1, *s_maps.shape[1:]).reshape(b * n1, *s_maps.shape[1:])
            stats = None
            if self.training and self.neck is not None:
                stats = {"sketch": self._batch_stats(s_maps), "photo": self._batch_stats(p_maps)}
            scores = self.pair_score(s_rep, p_maps[cand.reshape(-1)], stats).view(b, n1)
            out["pair_scores"], out["pair_valid"] = scores, valid
        return out


@torch.no_grad()
def hardest_candidates(
    sketch: torch.Tensor, photo: torch.Tensor, labels: torch.Tensor | None, n: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row i: [i, its n most similar photos with a different label]. (B, D) x (B, D) -> (B, 1+n) long,
    (B, 1+n) bool validity."""
    b = sketch.shape[0]
    sim = sketch.float() @ photo.float().T  # (B, B)
    same = torch.eye(b, dtype=torch.bool, device=sim.device)
    if labels is not None:
        same |= labels[:, None] == labels[None, :]
    sim = sim.masked_fill(same, float("-inf"))
    n = min(n, b - 1)
    top = sim.topk(n, dim=1)
    first = torch.arange(b, device=sim.device)[:, None]
    cand = torch.cat([first, top.indices], dim=1)
    valid = torch.cat([torch.ones_like(first, dtype=torch.bool), torch.isfinite(top.values)], dim=1)
    return cand, valid


@torch.no_grad()
def rerank(
    model: AAFG, query_maps: torch.Tensor, gallery_maps: torch.Tensor, topk_indices: torch.Tensor,
    batch_size: int = 256,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage 2: re-order each query's top-K stage-1 candidates by the pairwise cross-attention score.

    Args:
        query_maps: (Q, C, h, w) ``model.maps`` of the queries; gallery_maps: (G, C, h, w).
        topk_indices: (Q, K) gallery indices, stage-1 order.
        batch_size: pairs scored per forward pass.
    Returns:
        (indices (Q, K) re-ordered, scores (Q, K) pair scores in that order); ties keep stage-1 order.
    """
    q, k = topk_indices.shape
    device = next(model.parameters()).device
    scores = torch.empty(q, k, dtype=torch.float32)
    step = max(1, batch_size // max(k, 1))
    for i in range(0, q, step):
        idx = topk_indices[i:i + step]
        qm = query_maps[i:i + step].to(device)
        qm = qm.unsqueeze(1).expand(-1, k, *qm.shape[1:]).reshape(-1, *qm.shape[1:])
        gm = gallery_maps[idx.reshape(-1).cpu()].to(device)
        scores[i:i + step] = model.pair_score(qm.float(), gm.float()).float().view(-1, k).cpu()
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    return topk_indices.cpu().gather(1, order), scores.gather(1, order)


def stage2_similarity(stage1_sim: torch.Tensor, topk_indices: torch.Tensor, pair_scores: torch.Tensor) -> torch.Tensor:
    """A (Q, G) similarity whose order is stage 2's: the K re-ranked candidates (by pair score) above
    every other item (which keep their stage-1 order). Feed it to ``metrics.per_query_metrics``.

    Args: stage1_sim (Q, G) cosines; topk_indices (Q, K); pair_scores (Q, K) aligned with topk_indices.
    """
    sim = stage1_sim.clone().float()
    top = float(sim.max()) if sim.numel() else 0.0
    sim.scatter_(1, topk_indices.long(), pair_scores.float() + top + 3.0)  # pair scores lie in [-1, 1]
    return sim
