"""`engine.rng`: seeding every generator, and their state as a dict a checkpoint can hold and restore."""

from __future__ import annotations

import random

import numpy as np
import torch

from sbir_utils.engine.rng import rng_state, seed_everything, set_rng_state


def _draw() -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_same_seed_same_draws_other_seed_other_draws():
    seed_everything(7)
    first = _draw()
    seed_everything(7)
    assert _draw() == first
    seed_everything(8)
    assert all(a != b for a, b in zip(_draw(), first))


def test_seed_beyond_32_bits_is_accepted():
    seed_everything(2**40 + 3)  # numpy takes it modulo 2**32
    a = _draw()
    seed_everything(2**40 + 3)
    assert _draw() == a


def test_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    seed_everything(1)
    _draw()
    path = tmp_path / "rng.pt"
    torch.save(rng_state(), path)
    expected = [_draw() for _ in range(3)]
    _draw()  # move every generator on
    set_rng_state(torch.load(path, weights_only=True))
    assert [_draw() for _ in range(3)] == expected


def test_state_holds_tensors_and_plain_values():
    state = rng_state()
    assert set(state) >= {"python", "numpy", "torch"}
    assert isinstance(state["torch"], torch.Tensor) and isinstance(state["numpy"]["keys"], torch.Tensor)
    assert state["numpy"]["kind"] == "MT19937" and isinstance(state["numpy"]["pos"], int)
