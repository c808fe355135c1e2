"""A frozen pretrained trunk's mid-level feature map as a non-learned shape descriptor, as HOG is one.

Sketch and photo (the photo as an HED edge map by default) pass through the pretrained trunk untouched; the
feature map at stride ``stride`` (8: edges and corners, before the trunk's late layers turn them into
object categories) is averaged over a ``grid`` x ``grid`` layout, each cell L2-normalised, and the whole
flattened and L2-normalised again. Two images are similar when the same cells hold the same local
patterns, which is what HOG compares with gradient histograms. Nothing is trained, so it costs one forward
pass per image. The transfer table's ``frozen-trunk`` and ``pretrained-ensemble+HOG+frozen`` rows use it
(settings chosen on the real shoes' two validation folds: docs/pretrained-weights.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import ResNetTrunk, TimmTrunk, build_trunk

STRIDE, GRID = 8, 4  # stride-8 map, 4 x 4 cells: chosen on the two validation folds of the real shoes
PHOTO_MODE = "hed"  # photos as HED edge maps (transforms.photo_input), as chosen on the same folds


def _resnet_map(trunk: ResNetTrunk, x: torch.Tensor, stride: int) -> torch.Tensor:
    n = trunk.net
    x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
    for layer, s in ((n.layer1, 4), (n.layer2, 8), (n.layer3, 16), (n.layer4, 32)):
        x = layer(x)
        if s == stride:
            return x
    raise ValueError(f"a ResNet has feature maps at strides 4, 8, 16, 32, not {stride}")


def _timm_map(trunk: TimmTrunk, x: torch.Tensor, stride: int) -> torch.Tensor:
    reductions = [int(f["reduction"]) for f in trunk.net.feature_info]
    if stride not in reductions:
        raise ValueError(f"{type(trunk.net).__name__} has feature maps at strides {reductions}, not {stride}")
    if trunk.rescale:
        x = x * trunk.scale + trunk.shift
    return trunk.net.forward_intermediates(x, indices=[reductions.index(stride)], intermediates_only=True)[0]


def _convnext_map(features: nn.Sequential, x: torch.Tensor, stride: int) -> torch.Tensor:
    """torchvision ConvNeXt ``features``: stem, stage, (downsample, stage) x 3; stages end at strides 4-32."""
    ends = {4: 2, 8: 4, 16: 6, 32: 8}  # the number of leading modules that end at each stride
    if stride not in ends:
        raise ValueError(f"a ConvNeXt has feature maps at strides {list(ends)}, not {stride}")
    return features[:ends[stride]](x)


def feature_map(trunk: nn.Module, x: torch.Tensor, stride: int) -> torch.Tensor:
    """The trunk's feature map at ``stride``: (B, 3, H, W) -> (B, C, H / stride, W / stride), for every kind
    of trunk :func:`backbones.build_trunk` makes (torchvision ResNets and ConvNeXts, timm models)."""
    if isinstance(trunk, ResNetTrunk):
        return _resnet_map(trunk, x, stride)
    if isinstance(trunk, TimmTrunk):
        return _timm_map(trunk, x, stride)
    if isinstance(trunk, nn.Sequential) and len(trunk) == 8:  # torchvision ConvNeXt features
        return _convnext_map(trunk, x, stride)
    raise ValueError(f"no stride-{stride} feature map for {type(trunk).__name__}; use a ResNet, ConvNeXt or timm backbone")


class FrozenShape(nn.Module):
    """``embed_sketch(x)`` = ``embed_photo(x)``: (B, 3, H, W) -> (B, C * grid * grid) L2-normalised, the
    trunk ``backbone`` with ``weights``, frozen and in eval mode (so ``inference.encode`` can embed with it)."""

    def __init__(self, backbone: str, weights: str, stride: int = STRIDE, grid: int = GRID):
        super().__init__()
        self.trunk = build_trunk(backbone, weights).eval().requires_grad_(False)
        self.stride, self.grid = stride, grid

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cells = F.adaptive_avg_pool2d(feature_map(self.trunk, x, self.stride), self.grid)
        return F.normalize(F.normalize(cells, dim=1).flatten(1), dim=1)

    def embed_sketch(self, x: torch.Tensor) -> torch.Tensor:
        return self(x)

    def embed_photo(self, x: torch.Tensor) -> torch.Tensor:
        return self(x)
