"""`engine.device`: the device chosen, autocast's precision, and the model inside a DDP wrapper."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from sbir_utils.engine.device import _unwrap, autocast, resolve_device


def test_resolve_device_explicit_wins_and_no_cuda_means_cpu():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu"), no_cuda=False) == torch.device("cpu")
    assert resolve_device(None, no_cuda=True) == torch.device("cpu")
    assert resolve_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_autocast_off_keeps_float32_and_on_cpu_uses_bfloat16():
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    off = autocast(torch.device("cpu"), amp=False)
    assert isinstance(off, contextlib.nullcontext)
    with off:
        assert (a @ b).dtype == torch.float32
    with autocast(torch.device("cpu"), amp=True):
        assert (a @ b).dtype == torch.bfloat16


def test_unwrap_returns_a_plain_model_unchanged():
    model = nn.Linear(2, 2)
    assert _unwrap(model) is model
