"""Torch datasets, preprocessing and batch samplers (sbir_utils.data.loading), on ``make_tiny_dataset``'s
small paired set (tests/helpers.py)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image, ImageDraw

from sbir_utils.data.index import read_index
from sbir_utils.data.loading import (
    ImageDataset,
    PairDataset,
    PhotoUniqueBatchSampler,
    PKBatchSampler,
    RandomBatchSampler,
    TrainingBatches,
    make_batch_sampler,
    make_loader,
    sample_seed,
)
from sbir_utils.data.transforms import MEAN, STD, normalize_batch
from tests.helpers import make_tiny_dataset


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny"))


def test_pair_dataset_shapes_and_same_normalisation(tiny):
    df = read_index(tiny / "index_train.csv")
    ds = PairDataset(df, image_size=32, train=False)
    sketch, photo, label = ds[0]
    # uint8 images, greyscale sketches with one channel: the model's float input is made on its device
    assert sketch.shape == (1, 32, 32) and photo.shape == (3, 32, 32)
    assert sketch.dtype == photo.dtype == torch.uint8
    assert isinstance(label, int) and 0 <= label < len(ds.label_names)
    eval_img = ImageDataset([df["sketch_file"][0]], "sketch", 32)[0]
    assert torch.equal(eval_img, sketch)  # the same preprocessing for queries at evaluation
    # White background maps to the same normalised value in both modalities, train and eval alike.
    sketch, photo = normalize_batch(sketch), normalize_batch(photo)
    assert sketch.shape == photo.shape == (3, 32, 32) and sketch.dtype == torch.float32
    white = torch.tensor([(1 - m) / s for m, s in zip(MEAN, STD)])
    assert torch.allclose(sketch[:, 0, 0], white, atol=1e-4)
    assert torch.allclose(photo[:, 0, 0], white, atol=1e-4)


def test_augmentation_only_in_training_and_seeded(tiny):
    df = read_index(tiny / "index_train.csv")
    plain = PairDataset(df, 32, train=True, augment=False)
    ev = PairDataset(df, 32, train=False, augment=True)
    aug = PairDataset(df, 32, train=True, augment=True)
    assert torch.equal(plain[1][0], ev[1][0])
    torch.manual_seed(3)
    a = [aug[1][0] for _ in range(4)]
    torch.manual_seed(3)
    b = [aug[1][0] for _ in range(4)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert any(not torch.equal(x, ev[1][0]) for x in a)


def test_photo_unique_batches_have_no_repeated_photo():
    keys = [f"p{i // 3}" for i in range(30)]  # 10 photos x 3 sketches
    s = PhotoUniqueBatchSampler(keys, batch_size=4, seed=1)
    seen = []
    for epoch in (0, 1):
        s.set_epoch(epoch)
        batches = list(s)
        assert batches and all(len(b) == 4 for b in batches)
        for b in batches:
            assert len({keys[i] for i in b}) == len(b)
        seen.append(batches)
    assert seen[0] != seen[1]  # reshuffled per epoch
    s.set_epoch(0)
    assert list(s) == seen[0]  # reproducible
    # Fewer photos than the batch size: batches shrink to the number of photos instead of vanishing.
    assert all(len(b) == 2 for b in PhotoUniqueBatchSampler(["a", "a", "b", "b"], 8))


def test_pk_sampler_gives_p_labels_of_k():
    labels = [f"c{i % 5}" for i in range(40)]
    s = PKBatchSampler(labels, batch_size=8, k=4, seed=0)
    batches = list(s)
    assert batches
    for b in batches:
        counts = Counter(labels[i] for i in b)
        assert len(counts) == 2 and set(counts.values()) == {4}


def test_samplers_shard_global_batches_by_rank_without_overlap():
    keys = [f"p{i}" for i in range(20)]
    full = list(PhotoUniqueBatchSampler(keys, 8, seed=2))  # one process, the global batch
    r0 = list(PhotoUniqueBatchSampler(keys, 4, seed=2, rank=0, world_size=2))
    r1 = list(PhotoUniqueBatchSampler(keys, 4, seed=2, rank=1, world_size=2))
    assert len(r0) == len(r1) == len(full)
    assert [a + b for a, b in zip(r0, r1)] == full
    assert not {i for b in r0 for i in b} & {i for b in r1 for i in b}
    pk = [list(PKBatchSampler([f"c{i % 5}" for i in range(40)], 4, k=2, seed=1, rank=r, world_size=2))
          for r in (0, 1)]
    assert [a + b for a, b in zip(*pk)] == list(PKBatchSampler([f"c{i % 5}" for i in range(40)], 8, k=2, seed=1))
    rb = list(RandomBatchSampler(10, 3, seed=0))
    assert len(rb) == 3 and len({i for b in rb for i in b}) == 9


def test_loader_is_deterministic(tiny):
    df = read_index(tiny / "index_train.csv")
    ds = PairDataset(df, 32, train=True, augment=True)

    def run() -> list[torch.Tensor]:
        torch.manual_seed(0)
        bs = make_batch_sampler(df, 4, "photo_unique", seed=5)
        return [s for s, _, _ in make_loader(ds, batch_sampler=bs, seed=5)]

    a, b = run(), run()
    assert len(a) == len(b) == 4 and all(torch.equal(x, y) for x, y in zip(a, b))


def test_sample_seed_is_fixed_per_key_and_differs_between_keys():
    assert sample_seed(7, 1, 3) == sample_seed(7, 1, 3)
    seeds = {sample_seed(7, epoch, row) for epoch in range(3) for row in range(50)}
    assert len(seeds) == 150 and all(0 <= s < 2**63 for s in seeds)
    assert sample_seed(-1, 0, 0) == sample_seed(2**64 - 1, 0, 0)  # negative seeds: modulo 2**64


def test_a_keyed_row_is_augmented_the_same_whatever_came_before(tiny):
    df = read_index(tiny / "index_train.csv")
    ds = PairDataset(df, 32, train=True, augment=True)
    torch.manual_seed(0)
    first = ds[(5, 2, 3)]
    state = torch.get_rng_state()
    for i in range(4):  # other rows, other draws in between
        ds[i]
    again = ds[(5, 2, 3)]
    assert all(torch.equal(a, b) for a, b in zip(first[:2], again[:2])) and first[2] == again[2] == ds[3][2]
    assert not torch.equal(ds[(5, 3, 3)][0], first[0]) or not torch.equal(ds[(5, 4, 3)][0], first[0])
    torch.set_rng_state(state)
    torch.manual_seed(0)
    ds[(5, 2, 3)]
    assert torch.equal(torch.get_rng_state(), _state_after_seed(0))  # the caller's generator is left alone


def _state_after_seed(seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.get_rng_state()


def _epochs(ds: PairDataset, df: pd.DataFrame, workers: int, epochs: int = 2) -> tuple[list, set[int]]:
    """Every batch of ``epochs`` epochs from a ``TrainingBatches`` with ``workers`` workers, and the ids of
    the loaders it handed out."""
    batches = TrainingBatches(ds, make_batch_sampler(df, 4, "photo_unique", seed=5), workers, seed=5)
    out, loaders = [], set()
    for epoch in range(1, epochs + 1):
        torch.manual_seed(epoch)
        loader = batches.epoch(epoch)
        loaders.add(id(loader))
        out.append([(s, p, y) for s, p, y in loader])
    batches.close()
    return out, loaders


def test_training_batches_are_the_same_for_any_worker_count_and_workers_persist(tiny):
    df = read_index(tiny / "index_train.csv")
    ds = PairDataset(df, 32, train=True, augment=True, image_cache=None)
    one, one_loaders = _epochs(ds, df, 1)
    two, two_loaders = _epochs(ds, df, 2)
    assert len(one_loaders) == len(two_loaders) == 1  # one loader (persistent workers) for every epoch
    for e1, e2 in zip(one, two):
        assert len(e1) == len(e2) >= 2
        for (s1, p1, y1), (s2, p2, y2) in zip(e1, e2):
            assert torch.equal(s1, s2) and torch.equal(p1, p2) and torch.equal(y1, y2)
    assert not torch.equal(one[0][0][0], one[1][0][0])  # epoch 2 is drawn anew
    # Without workers: a fresh loader per epoch, rows as plain indices (the main process's generator).
    none, none_loaders = _epochs(ds, df, 0)
    assert len(none_loaders) == 2
    torch.manual_seed(1)
    sampler = make_batch_sampler(df, 4, "photo_unique", seed=5)
    sampler.set_epoch(1)
    old = [s for s, _, _ in make_loader(ds, batch_sampler=sampler, seed=5 * 1000 + 1)]
    assert all(torch.equal(a, b[0]) for a, b in zip(old, none[0]))


def test_training_batches_pin_memory_with_and_without_workers(tiny):
    df = read_index(tiny / "index_train.csv")
    ds = PairDataset(df, 32, train=True, augment=True, image_cache=None)
    for workers in (0, 2):
        batches = TrainingBatches(ds, make_batch_sampler(df, 4, seed=0), workers, pin_memory=True)
        assert batches.epoch(1).pin_memory and batches.epoch(1).num_workers == workers  # nothing iterated
        batches.close()


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="sketch_file"):
        PairDataset(pd.DataFrame({"label": ["a"]}), 32)
    with pytest.raises(ValueError, match="kind"):
        ImageDataset(["x.png"], "drawing", 32)
    with pytest.raises(ValueError, match="sampler"):
        make_batch_sampler(pd.DataFrame({"image_file": ["a"], "label": ["a"]}), 2, "balanced")


def test_each_file_has_one_slot_in_the_image_store(tiny, tmp_path):
    df = read_index(tiny / "index_train.csv")
    cached = PairDataset(df, 32, train=False, image_cache=tmp_path / "store")
    none = PairDataset(df, 32, train=False, image_cache=None)
    for i in range(len(df)):
        assert torch.equal(cached[i][0], none[i][0]) and torch.equal(cached[i][1], none[i][1])
    assert len(cached._sketches.store) == df["sketch_file"].nunique()
    assert len(cached._photos.store) == df["image_file"].nunique()
    assert none._sketches.store is None and none._photos.store is None


def test_large_sketches_are_thickened_before_shrinking(tmp_path):
    big = Image.new("L", (512, 512), 255)
    ImageDraw.Draw(big).line([(40, 256), (470, 256)], fill=0, width=1)  # a 1-px stroke
    path = tmp_path / "s.png"
    big.save(path)
    plain = np.asarray(big.resize((32, 32), Image.Resampling.BILINEAR)).min() / 255.0  # ~0.97: nearly gone
    ours = ImageDataset([path], "sketch", 32)[0]  # thickened at 512 px, then 512 -> 64 -> 32
    darkest = float(ours.min()) / 255.0
    assert plain > 0.9 and darkest < plain - 0.2  # the stroke survives as a visible line


def test_photos_as_edge_maps_look_like_sketches(tmp_path):
    root = make_tiny_dataset(tmp_path / "d", photos=(2, 1, 1))
    df = read_index(root / "index_train.csv")
    rgb = ImageDataset(df["image_file"].tolist(), "photo", 32)[0]
    edges = ImageDataset(df["image_file"].tolist(), "photo", 32, photo_mode="edges")[0]
    assert edges.shape == (1, 32, 32) and rgb.shape == (3, 32, 32)  # an edge map is greyscale, as a sketch
    pixels = edges.float() / 255.0
    assert (pixels > 0.9).float().mean() > 0.5  # mostly white paper, dark lines
    assert (pixels < 0.7).any() and not torch.allclose(normalize_batch(edges), normalize_batch(rgb))
    pair = PairDataset(df, 32, photo_mode="edges")[0][1]
    assert torch.equal(pair, edges)  # training and evaluation see the same photo
    with pytest.raises(ValueError, match="photo_mode must be one of"):
        ImageDataset(df["image_file"].tolist(), "photo", 32, photo_mode="canny")


def test_new_default_config_fields_keep_old_run_fingerprints(tmp_path):
    import dataclasses
    import hashlib
    import json

    from sbir_utils import study
    from sbir_utils.config import TrainConfig, core_fields
    from sbir_utils.data.index import load_spec

    spec = load_spec(make_tiny_dataset(tmp_path / "d", photos=(2, 1, 1)))
    cfg = TrainConfig()
    old = {k: v for k, v in core_fields(cfg).items() if k not in ("photo_mode", "crop", "freeze_bn", "pool", "augment_on")}  # before they existed
    digest = hashlib.sha256(json.dumps([old, {}], sort_keys=True, default=str).encode())
    for split in ("train", "val"):
        digest.update(spec.csv(split).read_bytes())
    assert study._fingerprint(cfg, spec) == digest.hexdigest()
    assert study._fingerprint(dataclasses.replace(cfg, photo_mode="edges"), spec) != digest.hexdigest()
    assert study._fingerprint(dataclasses.replace(cfg, crop=True), spec) != digest.hexdigest()
    assert study._fingerprint(dataclasses.replace(cfg, augment_on="device"), spec) != digest.hexdigest()


def _shoe_outline(canvas: int, box: tuple[int, int, int, int], width: int) -> Image.Image:
    """A crude shoe (sole, heel, toe curve) drawn black on white inside ``box`` of a ``canvas`` square."""
    img = Image.new("L", (canvas, canvas), 255)
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    pts = [(x0, y1), (x1, y1), (x1, y0 + 0.6 * h), (x0 + 0.55 * w, y0 + 0.3 * h), (x0 + 0.3 * w, y0),
           (x0, y0), (x0, y1)]
    ImageDraw.Draw(img).line(pts, fill=0, width=width)
    return img


def test_crop_makes_a_small_off_centre_drawing_fill_the_frame(tmp_path):
    from sbir_utils.data.transforms import crop_to_object

    small = _shoe_outline(512, (20, 300, 180, 420), 6)  # drawn small in the lower-left corner
    large = _shoe_outline(512, (40, 136, 472, 460), 16)  # the same shape filling the canvas
    for name, img in (("small", small), ("large", large)):
        img.save(tmp_path / f"{name}.png")
    files = [tmp_path / "small.png", tmp_path / "large.png"]
    plain = ImageDataset(files, "sketch", 32, image_cache=None)
    cropped = ImageDataset(files, "sketch", 32, image_cache=None, crop=True)
    gap_plain = float((plain[0].float() - plain[1].float()).abs().mean())
    gap_cropped = float((cropped[0].float() - cropped[1].float()).abs().mean())
    assert gap_cropped < 0.5 * gap_plain  # cropping aligns the two drawings; padding alone does not
    box = crop_to_object(small, "sketch")
    assert box.size[0] < 200 and box.size[1] < 150  # the ink's box (160 x 120) plus a 5% margin
    blank = Image.new("L", (64, 48), 255)
    assert crop_to_object(blank, "sketch") is blank  # nothing drawn: left as it is


def test_crop_is_the_same_for_training_and_evaluation_and_has_its_own_store(tiny, tmp_path):
    df = read_index(tiny / "index_train.csv")
    store = tmp_path / "store"
    ev_s = ImageDataset(df["sketch_file"].tolist(), "sketch", 32, image_cache=store, crop=True)
    ev_p = ImageDataset(df["image_file"].tolist(), "photo", 32, "edges", image_cache=store, crop=True)
    pair = PairDataset(df, 32, photo_mode="edges", image_cache=store, crop=True)
    s, p, _ = pair[0]
    assert torch.allclose(s, ev_s[0], atol=0.02) and torch.allclose(p, ev_p[0], atol=0.02)
    uncropped = ImageDataset(df["image_file"].tolist(), "photo", 32, "edges", image_cache=store)
    assert not torch.allclose(uncropped[0], ev_p[0])  # a separate store entry, not the cropped pixels
    assert torch.equal(uncropped[0], ImageDataset(df["image_file"].tolist(), "photo", 32, "edges", image_cache=None)[0])
