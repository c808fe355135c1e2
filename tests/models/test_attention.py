"""`models.attention`: the self- and cross-attention blocks on feature maps."""

from __future__ import annotations

import pytest
import torch

from sbir_utils.models.attention import CrossAttention2d, SelfAttention2d


def test_blocks_are_the_identity_at_initialisation_and_keep_the_shape():
    torch.manual_seed(0)
    x, ctx = torch.randn(2, 8, 3, 4), torch.randn(2, 8, 5, 2)
    assert torch.equal(SelfAttention2d(8, 2)(x), x)
    cross = CrossAttention2d(8)
    assert torch.equal(cross(x, ctx), x)
    with torch.no_grad():
        cross.gamma.fill_(1.0)
    assert cross(x, ctx).shape == x.shape  # context of another size: output has x's


def test_cross_attention_reads_the_context():
    torch.manual_seed(0)
    block = CrossAttention2d(4)
    with torch.no_grad():
        block.gamma.fill_(1.0)
    x = torch.randn(1, 4, 2, 2)
    assert not torch.allclose(block(x, torch.randn(1, 4, 3, 3)), block(x, torch.randn(1, 4, 3, 3)))


def test_query_key_channels_follow_the_reduction():
    block = SelfAttention2d(16, reduction=4)
    assert block.query.out_channels == block.key.out_channels == 4 and block.value.out_channels == 16
    assert block.scale == pytest.approx(0.5)


@pytest.mark.parametrize("reduction", [0, 9])
def test_bad_reduction_is_named(reduction):
    with pytest.raises(ValueError, match=rf"attn_reduction must be in 1\.\.8, got {reduction}"):
        SelfAttention2d(8, reduction)
