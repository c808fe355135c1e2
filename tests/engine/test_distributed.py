"""`engine.distributed`: without torchrun every helper is a no-op; in a (one-process) group the
embeddings are gathered with their gradient."""

from __future__ import annotations

import torch
import torch.distributed as dist

from sbir_utils.engine.distributed import _all_mean, _GatherWithGrad, _init_distributed, gather_batch


def test_single_process_is_a_no_op(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert _init_distributed(torch.device("cpu")) == (0, 1, torch.device("cpu"), False)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert _init_distributed(torch.device("cpu"))[1:] == (1, torch.device("cpu"), False)
    out, labels = {"sketch": torch.ones(2, 3), "photo": torch.zeros(2, 3)}, torch.tensor([0, 1])
    got, got_labels = gather_batch(out, labels, world=1)
    assert got is out and got_labels is labels
    assert _all_mean([1.5, 2.0], 1, torch.device("cpu")) == [1.5, 2.0]
    assert not dist.is_initialized()


def test_gather_with_grad_in_a_one_process_gloo_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        x = torch.arange(6.0).reshape(3, 2).requires_grad_()
        y = _GatherWithGrad.apply(x)
        assert torch.equal(y, x.detach())
        (y * torch.tensor([1.0, 2.0])).sum().backward()
        assert torch.equal(x.grad, torch.tensor([[1.0, 2.0]] * 3))
        out, labels = gather_batch({"sketch": x, "photo": x, "pair_scores": x}, torch.tensor([4, 5, 6]), world=1)
        assert out["sketch"] is x  # world 1: nothing gathered
        assert _all_mean([3.0], 1, torch.device("cpu")) == [3.0]
    finally:
        dist.destroy_process_group()
    assert not dist.is_initialized()
