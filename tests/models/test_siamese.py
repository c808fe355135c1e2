"""`models.siamese`: ConvNeXt-InfoNCE loads the seed's state dicts strictly, round-trips with its head, and pools
its map globally (the seed's layout) or per quadrant."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from sbir_utils.config import TrainConfig
from sbir_utils.models import ConvNeXtInfoNCE
from tests.helpers import random_images as _x

torch.set_num_threads(1)


class _SeedSbirModel(nn.Module):
    """The ConvNeXt-InfoNCE seed's model, attribute for attribute (its model.py), for the format test."""

    def __init__(self):
        super().__init__()
        self.embedding_net = torchvision.models.convnext_small().features
        self.num_features = 768
        self.pool = nn.AdaptiveAvgPool2d(1)

    def get_embedding(self, data):
        return F.normalize(self.pool(self.embedding_net(data)).view(-1, self.num_features))


def test_seed_convnext_state_dict_loads_strictly(tmp_path):
    from sbir_utils.engine import load_model

    torch.manual_seed(0)
    seed_model = _SeedSbirModel().eval()
    path = tmp_path / "model_normal.pth"
    torch.save(seed_model.state_dict(), path)  # exactly how the seed saves (and releases) its models
    ours = ConvNeXtInfoNCE("convnext_small", embed_dim=None)
    ours.load_state_dict(torch.load(path, weights_only=True), strict=True)
    ours.eval()
    x = _x(2, 32)
    with torch.no_grad():
        assert torch.allclose(ours.embed(x), seed_model.get_embedding(x), atol=1e-5)
    cfg = TrainConfig(model="convnext_infonce", backbone="convnext_small", embed_dim=128)
    loaded, cfg2, _ = load_model(path, cfg)  # the CLI's --model_path route: head follows the file
    assert cfg2.embed_dim == 0 and loaded.head is None


def test_convnext_infonce_round_trip_with_head(tmp_path):
    m = ConvNeXtInfoNCE("convnext_atto", embed_dim=32)
    assert m.head is not None and m.embed_dim == 32
    torch.save(m.state_dict(), tmp_path / "m.pth")
    m2 = ConvNeXtInfoNCE("convnext_atto", embed_dim=32)
    m2.load_state_dict(torch.load(tmp_path / "m.pth", weights_only=True), strict=True)
    m.eval(), m2.eval()
    with torch.no_grad():
        out = m2(_x(2), _x(2, seed=1))
        assert torch.allclose(m.embed(_x(2)), out["sketch"], atol=1e-6)
    assert sorted(k for k in m.state_dict() if not k.startswith("embedding_net.")) == ["head.bias", "head.weight"]
    assert ConvNeXtInfoNCE("convnext_atto", embed_dim=320).head is None


def test_grid_pooling_keeps_the_layout_and_avg_keeps_the_seeds_layout():
    """pool="grid2": the embedding is the four quadrant means of the trunk's map, channel by channel
    (computed here by hand), so swapping the image's halves changes it; "avg" is the seed's global mean
    with the seed's state-dict shapes; AAFG and unknown pools are refused."""
    from sbir_utils.models import build_model
    from sbir_utils.models.siamese import ConvNeXtInfoNCE

    torch.manual_seed(0)
    grid = ConvNeXtInfoNCE("test_convnext", embed_dim=0, pool="grid2").eval()
    x = torch.randn(2, 3, 64, 64)
    maps = grid.embedding_net(x)
    h, w = maps.shape[-2] // 2, maps.shape[-1] // 2
    quads = [maps[:, :, :h, :w], maps[:, :, :h, w:], maps[:, :, h:, :w], maps[:, :, h:, w:]]
    by_hand = torch.stack([q.mean(dim=(2, 3)) for q in quads], dim=2).flatten(1)  # (B, C * 4), channel-major
    assert grid.embed_dim == 4 * grid.num_features
    torch.testing.assert_close(grid.embed_photo(x), F.normalize(by_hand, dim=-1))
    swapped = torch.cat([x[..., 32:], x[..., :32]], dim=-1)
    assert not torch.allclose(grid.embed_photo(swapped), grid.embed_photo(x), atol=1e-3)
    avg = ConvNeXtInfoNCE("test_convnext", embed_dim=16)
    assert avg.head.in_features == avg.num_features  # the seed's layout is unchanged
    assert ConvNeXtInfoNCE("test_convnext", embed_dim=16, pool="grid2").head.in_features == 4 * avg.num_features
    with pytest.raises(ValueError, match="pool must be one of"):
        ConvNeXtInfoNCE("test_convnext", pool="max")
    with pytest.raises(ValueError, match="only the convnext_infonce model"):
        build_model(TrainConfig(model="aafg", backbone="test_resnet", pool="grid2"))
