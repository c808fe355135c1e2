"""Where and in which precision the model runs: device choice, autocast, unwrapping DDP."""

from __future__ import annotations

import contextlib

import torch
from torch import nn


def resolve_device(device: str | torch.device | None = None, no_cuda: bool = False) -> torch.device:
    """``device`` if given, else CUDA when available (and not ``no_cuda``), else CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() and not no_cuda else "cpu")


def autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """Mixed precision: bf16 where supported (CPU, recent GPUs), fp16 on older GPUs; off when not ``amp``."""
    if not amp:
        return contextlib.nullcontext()
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast(device.type, dtype=torch.bfloat16)


def prefers_channels_last(device: torch.device) -> bool:
    """NHWC memory format for the model and its input batches: on CUDA (tensor-core convolutions run
    faster in it; the values are the same up to float rounding), not on the CPU."""
    return device.type == "cuda"


def _unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper (any other model as it is)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
