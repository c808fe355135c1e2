"""Training augmentation on the device (sbir_utils.data.batch_augment), checked on CPU tensors: each operation
against what it should do, the whole against the loader's PIL path, and a training run that uses it."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from sbir_utils.config import TrainConfig
from sbir_utils.data.batch_augment import (
    AugmentDraw,
    BatchAugment,
    affine_jitter,
    change_thickness,
    step_generator,
)
from sbir_utils.data.index import read_index
from sbir_utils.data.loading import PairDataset
from tests.helpers import make_tiny_dataset

NONE = BatchAugment(degrees=0.0, translate=0.0, scale=(1.0, 1.0), thickness_p=0.0, flip_p=0.0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny_aug"))


def _draw(n: int = 1, **values: float) -> AugmentDraw:
    base = {"angle": 0.0, "scale": 1.0, "shift_x": 0.0, "shift_y": 0.0, "thickness": 0.0, "mirror": 0.0}
    base.update(values)
    return AugmentDraw(**{k: torch.full((n,), float(v)) if k != "mirror" else torch.full((n,), bool(v))
                          for k, v in base.items()})


def _batch(ds: PairDataset, rows: range) -> tuple[torch.Tensor, torch.Tensor]:
    items = [ds[i] for i in rows]
    return torch.stack([s for s, _, _ in items]), torch.stack([p for _, p, _ in items])


def test_the_base_dataset_yields_the_stored_training_base_unchanged(tiny):
    df = read_index(tiny / "index_train.csv")
    base = PairDataset(df, 32, train=True, augment=True, base=True)
    sketch, photo, _ = base[0]
    assert sketch.shape == (1, 64, 64) and photo.shape == (3, 64, 64) and sketch.dtype == torch.uint8
    torch.manual_seed(0)
    again = base[0]
    assert torch.equal(again[0], sketch) and torch.equal(again[1], photo)  # nothing random on the loader's side


def test_without_jitter_the_device_path_gives_the_loaders_images(tiny):
    df = read_index(tiny / "index_train.csv")
    base = PairDataset(df, 32, train=True, base=True)
    plain = PairDataset(df, 32, train=True, augment=False)
    s2, p2 = _batch(base, range(4))
    s, p = NONE(s2, p2, 32, step_generator("cpu", 0))
    s_ref, p_ref = _batch(plain, range(4))
    assert s.shape == s_ref.shape == (4, 1, 32, 32) and p.shape == p_ref.shape == (4, 3, 32, 32)
    # torch's antialiased bilinear resize against PIL's: within rounding, a grey level or two at most
    for mine, ref in ((s, s_ref), (p, p_ref)):
        diff = (mine.int() - ref.int()).abs()
        assert diff.max() <= 2 and diff.float().mean() < 0.2


def test_a_quarter_turn_is_rot90_and_a_shift_moves_the_ink_with_paper_behind():
    ink = torch.zeros(1, 1, 16, 16)
    ink[0, 0, 2:5, 3:12] = 255.0  # an asymmetric bar
    turned = affine_jitter(ink, _draw(angle=math.pi / 2))
    assert any(torch.equal(turned, torch.rot90(ink, k, dims=(2, 3))) for k in (1, -1))
    shifted = affine_jitter(ink, _draw(shift_x=3 / 16))
    assert torch.equal(shifted[..., 3:], ink[..., :-3]) and shifted[..., :3].sum() == 0
    bigger = affine_jitter(ink, _draw(scale=1.1))
    assert bigger.sum() > ink.sum()  # scaled up about the centre: more ink in the frame
    assert torch.equal(affine_jitter(ink, _draw()), ink)


def test_thickness_grows_or_shrinks_strokes_by_one_pixel():
    ink = torch.zeros(3, 1, 9, 9)
    ink[:, 0, :, 4] = 255.0  # a one-pixel vertical stroke
    out = change_thickness(ink, torch.tensor([1.0, -1.0, 0.0]))
    assert (out[0, 0, 4] > 0).sum() == 3  # three pixels wide
    assert out[1].sum() == 0  # a one-pixel stroke shrinks away, as under PIL's MaxFilter(3)
    assert torch.equal(out[2], ink[2])


def test_mirroring_flips_sketch_and_photo_together():
    s = torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8)
    p = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    flipped = dataclasses.replace(NONE, flip_p=1.0)(s, p, 8, step_generator("cpu", 1))
    assert torch.equal(flipped[0], s.flip(-1)) and torch.equal(flipped[1], p.flip(-1))
    with pytest.raises(TypeError, match="uint8"):
        NONE(s.float(), p, 8, step_generator("cpu", 1))


def test_draws_are_within_their_bounds_seeded_and_at_the_loaders_rates():
    aug = BatchAugment()
    d = aug.draw(4000, step_generator("cpu", 7, 1, 1))
    assert d.angle.abs().max() <= math.radians(8.0) and d.shift_x.abs().max() <= 0.06
    assert 0.9 <= d.scale.min() and d.scale.max() <= 1.1
    rates = [(d.thickness == v).float().mean().item() for v in (1.0, -1.0, 0.0)]
    assert rates == pytest.approx([0.3, 0.3, 0.4], abs=0.03) and d.mirror.float().mean() == pytest.approx(0.5, abs=0.03)
    again = aug.draw(4000, step_generator("cpu", 7, 1, 1))
    assert torch.equal(again.angle, d.angle)
    assert not torch.equal(aug.draw(4000, step_generator("cpu", 7, 1, 2)).angle, d.angle)  # another step


def test_the_jitter_is_as_strong_as_the_loaders(tiny):
    """Over many draws of one sketch, the device path moves pixels about as much as the PIL path does."""
    df = read_index(tiny / "index_train.csv")
    plain = PairDataset(df, 32, train=True, augment=False)[0][0].float()
    loader = PairDataset(df, 32, train=True, augment=True)
    torch.manual_seed(0)
    loader_change = torch.stack([(loader[0][0].float() - plain).abs().mean() for _ in range(64)]).mean()
    s2, p2 = PairDataset(df, 32, train=True, base=True)[0][:2]
    s, _ = BatchAugment()(s2.expand(64, -1, -1, -1).contiguous(), p2.expand(64, -1, -1, -1).contiguous(), 32,
                          step_generator("cpu", 0))
    device_change = (s.float() - plain).abs().mean()
    assert loader_change > 1.0 and 0.7 < device_change / loader_change < 1.4


def test_training_with_augmentation_on_the_device_is_seeded_and_differs_from_the_loaders(tiny, tmp_path):
    from sbir_utils.engine import fit

    cfg = TrainConfig(model="convnext_infonce", backbone="test_convnext", image_size=32, embed_dim=16, epochs=1,
                      batch_size=8, lr=1e-3, loss="infonce", seed=7, keep_last=0)
    runs = {}
    for name, on in (("a", "device"), ("b", "device"), ("loader", "loader")):
        fit(dataclasses.replace(cfg, augment_on=on), tiny, tmp_path / name, progress=False)
        runs[name] = pd.read_csv(tmp_path / name / "metrics.csv")["train_loss"].tolist()
    assert runs["a"] == runs["b"] and all(math.isfinite(x) for x in runs["a"])
    assert runs["a"] != runs["loader"]  # other draws
    with pytest.raises(ValueError, match="augment_on must be one of"):
        fit(dataclasses.replace(cfg, augment_on="gpu"), tiny, tmp_path / "bad", progress=False)
