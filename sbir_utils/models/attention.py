"""Attention blocks on feature maps (B, C, h, w).

Both blocks are non-local / SAGAN style: 1x1 convolutions make queries and keys of ``C // reduction``
channels and values of ``C`` channels; attention is softmax(q k^T / sqrt(d)) over the h*w positions of
the key map. The attended values go through ``GroupNorm(1, C)`` (a norm over channels and positions
that fits (B, C, h, w); the public AAFG code's ``LayerNorm([C, 1, 1])`` does not) and are added back
with a learnt scale ``gamma`` that starts at 0, so at initialisation each block is the identity and the
ablations differ only by what training makes of the blocks.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class _MapAttention(nn.Module):
    def __init__(self, channels: int, reduction: int = 1):
        super().__init__()
        if reduction < 1 or channels // reduction < 1:
            raise ValueError(f"attn_reduction must be in 1..{channels}, got {reduction}")
        inner = channels // reduction
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.norm = nn.GroupNorm(1, channels)
        self.gamma = nn.Parameter(torch.zeros(1))
        self.scale = 1.0 / math.sqrt(inner)

    def attend(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Positions of ``x`` (B, C, h, w) attend to positions of ``context`` (B, C, h', w')."""
        b, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # (B, hw, d)
        k = self.key(context).flatten(2)  # (B, d, h'w')
        v = self.value(context).flatten(2).transpose(1, 2)  # (B, h'w', C)
        attn = torch.softmax(torch.bmm(q, k) * self.scale, dim=-1)  # (B, hw, h'w')
        out = torch.bmm(attn, v).transpose(1, 2).reshape(b, c, h, w)
        return x + self.gamma * self.norm(out)


class SelfAttention2d(_MapAttention):
    """Intra-modal attention: every position of a map attends to every position of the same map.

    Args:
        channels: C of the input map.
        reduction: query/key channels are ``C // reduction`` (the seed's ``attn_reduction``).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, h, w) -> (B, C, h, w)
        return self.attend(x, x)


class CrossAttention2d(_MapAttention):
    """Cross-modal attention: positions of one modality's map attend to the other modality's map.

    ``forward(x, context)``: x (B, C, h, w) queries, context (B, C, h', w') keys/values -> (B, C, h, w).
    One block serves both directions (sketch -> photo and photo -> sketch).
    """

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.attend(x, context)
