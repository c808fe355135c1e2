"""`data.transforms`: squaring on white (sketches thickened before a large shrink), cropping to the drawing, the
photo modes, the tensor the model sees, and the sketch augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from torchvision.transforms import v2

from sbir_utils.data.transforms import (
    MEAN,
    PHOTO_MODES,
    PHOTO_PREP_NAMES,
    STD,
    SketchAugment,
    crop_to_object,
    normalize_batch,
    photo_input,
    square,
    to_tensor,
    to_uint8,
)


def test_square_pads_centred_on_white_and_thickens_a_shrunk_sketch():
    wide = square(Image.new("RGB", (40, 20), (200, 0, 0)), 16)
    arr = np.asarray(wide)
    assert wide.size == (16, 16) and wide.mode == "RGB"
    assert (arr[0] == 255).all() and (arr[-1] == 255).all() and tuple(arr[8, 8]) == (200, 0, 0)
    big = Image.new("L", (512, 512), 255)
    ImageDraw.Draw(big).line([(40, 256), (470, 256)], fill=0, width=1)  # a 1-px stroke, shrunk 16 times
    as_photo = int(np.asarray(square(big, 32, "photo")).min())
    as_sketch = int(np.asarray(square(big, 32, "sketch")).min())
    assert as_photo > 230 and as_sketch < 150  # plain resampling washes the stroke out; thickened, it stays


def test_crop_to_object_keeps_the_ink_and_a_margin():
    img = Image.new("L", (300, 200), 255)
    ImageDraw.Draw(img).rectangle((100, 50, 199, 89), fill=0)  # ink box 100 x 40
    assert crop_to_object(img, "sketch").size == (110, 50)  # + 5% of the longer side (5 px) on each edge
    faint = Image.new("L", (300, 200), 255)
    ImageDraw.Draw(faint).rectangle((10, 20, 29, 39), fill=220)  # lighter than the sketch threshold (200)
    assert crop_to_object(faint, "sketch").size == (22, 22)  # found by the darkest-pixel midpoint; 1 px margin
    blank = Image.new("RGB", (64, 48), "white")
    assert crop_to_object(blank) is blank


def test_photo_modes():
    photo = Image.new("RGB", (80, 60), "white")
    ImageDraw.Draw(photo).rectangle((20, 15, 59, 44), fill=(30, 120, 200))
    rgb = photo_input(photo, 32)
    edges = photo_input(photo, 32, "edges")
    assert rgb.size == edges.size == (32, 32) and rgb.mode == "RGB" and edges.mode == "L"
    ink = np.asarray(edges) < 128
    assert 0 < ink.mean() < 0.5 and not ink[16, 16]  # the rectangle's outline, not its inside
    with pytest.raises(ValueError, match="photo_mode must be one of"):
        photo_input(photo, 32, "canny")
    # every mode has its own name in the image store's keys (tests/models/test_hed.py checks "hed")
    assert set(PHOTO_PREP_NAMES) == set(PHOTO_MODES) and len(set(PHOTO_PREP_NAMES.values())) == len(PHOTO_MODES)


def test_to_tensor_normalises_and_replicates_grey():
    white = to_tensor(Image.new("L", (4, 3), 255))
    assert white.shape == (3, 3, 4) and white.dtype == torch.float32
    expected = torch.tensor([(1 - m) / s for m, s in zip(MEAN, STD)])
    torch.testing.assert_close(white[:, 1, 2], expected)
    grey = Image.new("L", (4, 3), 90)
    assert torch.equal(to_tensor(grey), to_tensor(grey.convert("RGB")))


def test_sketch_augment_is_seeded_and_can_be_the_identity():
    sketch = Image.new("L", (48, 48), 255)
    ImageDraw.Draw(sketch).line([(8, 8), (40, 30)], fill=0, width=2)
    aug = SketchAugment()
    torch.manual_seed(0)
    a = aug(sketch)
    torch.manual_seed(0)
    b = aug(sketch)
    assert a.size == sketch.size and a.mode == "L" and np.array_equal(np.asarray(a), np.asarray(b))
    identity = SketchAugment(degrees=0.0, translate=0.0, scale=(1.0, 1.0), thickness_p=0.0)
    assert np.array_equal(np.asarray(identity(sketch)), np.asarray(sketch))


def test_normalize_batch_is_to_tensor_bit_for_bit_and_checks_its_input():
    """The datasets' uint8 images made into the model's input where the model runs: the same bits as the
    per-image float pipeline (torchvision's ToImage, ToDtype(scale), Normalize) it replaced."""
    rng = np.random.default_rng(0)
    reference = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)])
    for img in (Image.fromarray(rng.integers(0, 256, (9, 11), dtype=np.uint8), "L"),
                Image.fromarray(rng.integers(0, 256, (9, 11, 3), dtype=np.uint8), "RGB")):
        u = to_uint8(img)
        assert u.dtype == torch.uint8 and tuple(u.shape) == ((1 if img.mode == "L" else 3), 9, 11)
        want = reference(img.convert("RGB"))
        assert torch.equal(to_tensor(img), want)
        batch = normalize_batch(torch.stack([u, u]), "cpu")
        assert batch.shape == (2, 3, 9, 11) and batch.dtype == torch.float32 and torch.equal(batch[1], want)
        nhwc = normalize_batch(torch.stack([u, u]), channels_last=True)
        assert nhwc.is_contiguous(memory_format=torch.channels_last) and torch.equal(nhwc, batch)
    with pytest.raises(TypeError, match="uint8"):
        normalize_batch(torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="1 or 3 channels"):
        normalize_batch(torch.zeros(1, 2, 4, 4, dtype=torch.uint8))
