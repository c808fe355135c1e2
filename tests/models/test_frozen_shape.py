"""The frozen trunk's shape descriptor (models.frozen_shape): the right feature map, cells kept in place,
nothing trainable; checked against the trunk's own layers computed by hand."""

import pytest
import torch
import torch.nn.functional as F

from sbir_utils.models.backbones import build_trunk
from sbir_utils.models.frozen_shape import FrozenShape, feature_map


def test_feature_map_is_the_stride_8_stage_of_timm_and_resnet_trunks():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    lite = build_trunk("tf_efficientnet_lite0", "random").eval()
    with torch.no_grad():
        y = x * lite.scale + lite.shift  # the trunk's own input re-scaling comes first
        y = lite.net.bn1(lite.net.conv_stem(y))
        for block in lite.net.blocks[:3]:  # blocks 0-2 end at stride 8 (40 channels)
            y = block(y)
        torch.testing.assert_close(feature_map(lite, x, 8), y)
    resnet = build_trunk("resnet18", "random").eval()
    n = resnet.net
    with torch.no_grad():
        expected = n.layer2(n.layer1(n.maxpool(n.relu(n.bn1(n.conv1(x))))))
        torch.testing.assert_close(feature_map(resnet, x, 8), expected)
    assert feature_map(resnet, x, 8).shape == (2, 128, 8, 8)
    with pytest.raises(ValueError, match="strides"):
        feature_map(resnet, x, 12)
    convnext = build_trunk("convnext_tiny", "random").eval()  # torchvision's features: stem, stage, (down, stage) x 3
    with torch.no_grad():
        torch.testing.assert_close(feature_map(convnext, x, 8), convnext[3](convnext[2](convnext[1](convnext[0](x)))))
    assert feature_map(convnext, x, 8).shape == (2, 192, 8, 8)
    with pytest.raises(ValueError, match="no stride-8"):
        feature_map(torch.nn.Identity(), x, 8)


def test_descriptor_keeps_each_cell_in_place_and_is_frozen():
    torch.manual_seed(0)
    model = FrozenShape("resnet18", "random", stride=8, grid=4)
    assert not any(p.requires_grad for p in model.parameters()) and not model.trunk.training
    x = torch.randn(3, 3, 64, 64)
    d = model.embed_sketch(x)
    assert d.shape == (3, 128 * 16)
    torch.testing.assert_close(d.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(model.embed_photo(x), d)
    with torch.no_grad():  # by hand: 4 x 4 cell means, each cell unit length, then the whole unit length
        cells = F.adaptive_avg_pool2d(feature_map(model.trunk, x, 8), 4)
        cells = cells / cells.norm(dim=1, keepdim=True)
        flat = cells.flatten(1)
        torch.testing.assert_close(d, flat / flat.norm(dim=1, keepdim=True))
    # the layout counts: a drawing and its mirror image are less alike than the drawing and itself
    drawing = torch.full((1, 3, 64, 64), 2.0)
    drawing[..., 10:50, 5:20] = -2.0
    a, b = model(drawing), model(drawing.flip(-1))
    assert float(a @ b.T) < 0.99
