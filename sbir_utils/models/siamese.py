"""ConvNeXt-InfoNCE: one shared ConvNeXt encoder, global average pool (or N x N regions), L2-normalised
embedding.

State-dict layout (kept identical to the seed's ``SbirModel`` so its released ``model_normal.pth`` /
``model_unseen.pth`` and any plain ``torch.save(model.state_dict())`` of it load with ``strict=True``):

* ``embedding_net.*``: the backbone. For torchvision ConvNeXts (``convnext_tiny/small/base/large``, the
  seed's choice) this is ``torchvision.models.convnext_small().features`` itself, so keys read
  ``embedding_net.0.0.weight`` (stem conv), ``embedding_net.1.0.block.0.weight`` (first block's
  depth-wise conv), ``embedding_net.1.0.layer_scale``, ... ``embedding_net.7.2.block.5.bias``. For a timm
  model (``convnext_atto``, ``timm:convnext_small``) it is a wrapper with timm's keys under
  ``embedding_net.net.`` (``embedding_net.net.stem.0.weight``, ``embedding_net.net.stages.0...``).
* ``head.weight``, ``head.bias``: only with the optional projection head (``embed_dim`` set and
  different from the pooled width); the seed has none (768-d output of ConvNeXt-Small).
* ``neck.sketch.*``, ``neck.photo.*``: only with the optional BN neck (``head_bn=True``), which the
  engine turns on when training from random initialisation (see ``ConvNeXtInfoNCE``); the seed has none.

The pooling has no parameters, so nothing else is in the state dict.

Pooling (``pool``): ``avg``, the seed's global average pool, keeps what is in the image but not where;
``gridN`` (e.g. ``grid2``) averages the feature map over an N x N grid of regions and concatenates them
(C * N * N values, projected by the head), so the embedding keeps the coarse layout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import build_trunk

POOLS = ("avg", "grid2", "grid3", "grid4")


def pool_grid(pool: str) -> int:
    """``"avg"`` -> 1, ``"gridN"`` -> N; anything else is a ``ValueError`` naming the choices."""
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
    return 1 if pool == "avg" else int(pool[4:])


class ConvNeXtInfoNCE(nn.Module):
    """Args:
        backbone: a ConvNeXt (or any convolutional) backbone name, see ``backbones``.
        weights: random | imagenet | path to a backbone state dict.
        embed_dim: output dimension; ``0``/``None`` or the backbone width means no projection head.
        head_bn: a BatchNorm per modality before L2 normalisation ("BN neck", as in ``AAFG``). From random
            initialisation a ConvNeXt maps every image to nearly the same direction (mean cosine 0.99+
            between different scenes) and InfoNCE sat at log(batch) for the whole cpu-profile run;
            centring the features per modality lets it learn. Off by default: the seed's model has none.
        pool: ``avg`` (the seed's) or ``grid2`` / ``grid3`` / ``grid4`` (layout-keeping, see the module docstring).
    """

    def __init__(self, backbone: str = "convnext_small", weights: str = "random", embed_dim: int | None = None,
                 head_bn: bool = False, pool: str = "avg"):
        super().__init__()
        self.grid = pool_grid(pool)
        self.embedding_net = build_trunk(backbone, weights)
        self.num_features = int(self.embedding_net.num_features)
        pooled = self.num_features * self.grid * self.grid
        if embed_dim and int(embed_dim) != pooled:
            self.head: nn.Module | None = nn.Linear(pooled, int(embed_dim))
            self.embed_dim = int(embed_dim)
        else:
            self.head = None
            self.embed_dim = pooled
        self.neck = (nn.ModuleDict({"sketch": nn.BatchNorm1d(self.embed_dim), "photo": nn.BatchNorm1d(self.embed_dim)})
                     if head_bn else None)

    has_pair_scorer = False

    def embed(self, x: torch.Tensor, kind: str = "photo") -> torch.Tensor:
        """(B, 3, H, W) -> (B, D) L2-normalised; ``kind`` (sketch | photo) picks the BN neck when on."""
        maps = self.embedding_net(x)  # (B, C, h, w)
        if self.grid == 1:
            feats = maps.mean(dim=(2, 3))  # global average pool, (B, C)
        else:  # N x N regions, (B, C * N * N)
            feats = F.adaptive_avg_pool2d(maps, self.grid).flatten(1)
        if self.head is not None:
            feats = self.head(feats)
        if self.neck is not None:
            feats = self.neck[kind](feats)
        return F.normalize(feats, dim=-1)

    def embed_sketch(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) sketches -> (B, D)."""
        return self.embed(x, "sketch")

    def embed_photo(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) photos -> (B, D)."""
        return self.embed(x, "photo")

    def forward(
        self, sketch: torch.Tensor, photo: torch.Tensor, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """(B, 3, H, W) pairs -> ``{"sketch": (B, D), "photo": (B, D)}``. ``labels`` is unused."""
        return {"sketch": self.embed_sketch(sketch), "photo": self.embed_photo(photo)}
