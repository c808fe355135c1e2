"""sbir_utils.analysis.attention: a model without the requested attention block is refused by name."""

import pytest
import torch
from torch import nn

from sbir_utils import analysis


def test_attention_map_needs_the_block():
    with pytest.raises(ValueError, match="Linear has no self-attention block"):
        analysis.attention_map(nn.Linear(2, 2), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="no cross-attention block"):
        analysis.attention_map(nn.Linear(2, 2), torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
