"""Several processes under ``torchrun``: the process group, embeddings gathered with their gradient,
and means over ranks. With ``WORLD_SIZE`` unset or 1 every function here is a no-op."""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


def _init_distributed(device: torch.device) -> tuple[int, int, torch.device, bool]:
    """``(rank, world_size, device, created)`` from torchrun's environment; joins (``created``: starts) the
    process group (gloo on CPU, nccl on GPU) and pins rank ``LOCAL_RANK`` to its GPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device, False
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise RuntimeError(f"LOCAL_RANK {local} but this machine has {torch.cuda.device_count()} GPU(s): start "
                               "one process per GPU (torchrun --nproc_per_node=<GPUs>) or pass --no_cuda for CPU ranks")
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    created = False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        created = True
    return rank, world, device, created


class _GatherWithGrad(torch.autograd.Function):
    """``all_gather`` whose backward hands each rank the summed gradient of its own rows (all_reduce, which
    gloo and NCCL both have; torch's own autograd all_gather needs all-to-all or reduce-scatter)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:  # (B, D) -> (world x B, D)
        ctx.rank, ctx.rows = dist.get_rank(), x.shape[0]
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # (world x B, D) -> (B, D)
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.rows:(ctx.rank + 1) * ctx.rows]


def gather_batch(out: dict[str, torch.Tensor], labels: torch.Tensor,
                 world: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Under DDP: every rank's ``sketch`` / ``photo`` embeddings (B, D) and labels (B,) concatenated in rank
    order (world x B rows), so that in-batch negatives and batch-hard mining see the global batch.

    Every rank then computes the same global loss; the backward gives each rank ``world`` times the
    gradient of its rows, and DDP's gradient averaging divides it back: the update equals that of one
    process on the global batch (AAFG's pair scores stay per rank). ``world == 1``: unchanged."""
    if world <= 1:
        return out, labels
    gathered = dict(out)
    for key in ("sketch", "photo"):
        gathered[key] = _GatherWithGrad.apply(out[key])
    parts = [torch.empty_like(labels) for _ in range(world)]
    dist.all_gather(parts, labels.contiguous())
    return gathered, torch.cat(parts)


def _all_mean(values: list[float], world: int, device: torch.device) -> list[float]:
    """The mean of each of ``values`` over the ranks (float64 all-reduce); ``world == 1``: unchanged."""
    if world <= 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return (t / world).tolist()
