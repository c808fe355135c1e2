"""Non-learned baselines: shapes, determinism, an exact match retrieved first, chance level."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from sbir_utils.baselines import hog_baseline, hog_features, random_scores, tune_hog
from sbir_utils.data.transforms import photo_to_sketchlike
from sbir_utils.metrics import per_query_metrics


def _photos(n: int, seed: int = 0) -> list[Image.Image]:
    """Non-square RGB 'product photos': a few filled shapes on white."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = Image.new("RGB", (96, 72), "white")
        draw = ImageDraw.Draw(img)
        for _ in range(3):
            x0, y0 = rng.integers(0, 60), rng.integers(0, 40)
            box = (x0, y0, x0 + rng.integers(15, 36), y0 + rng.integers(15, 32))
            colour = tuple(int(c) for c in rng.integers(0, 200, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
        out.append(img)
    return out


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """Photo files and 'sketches' that are exactly their edge maps (at 64 px)."""
    root = tmp_path_factory.mktemp("hog")
    photo_paths, sketch_paths = [], []
    for i, photo in enumerate(_photos(8)):
        photo_paths.append(root / f"photo_{i}.png")
        photo.save(photo_paths[-1])
        sketch_paths.append(root / f"sketch_{i}.png")
        photo_to_sketchlike(photo, "edges", 64, edge_sigma=1.0).save(sketch_paths[-1])
    return sketch_paths, photo_paths


def test_random_scores_shape_determinism_and_chance_level():
    a = random_scores(2000, 50, seed=3)
    assert a.shape == (2000, 50)
    assert np.array_equal(a, random_scores(2000, 50, seed=3)) and not np.array_equal(
        a, random_scores(2000, 50, 4)
    )
    relevant = np.zeros_like(a, dtype=bool)
    relevant[np.arange(2000), np.random.default_rng(0).integers(0, 50, 2000)] = True
    df = per_query_metrics(a, relevant, ks=(1, 10), p_ks=())
    # acc@1 ~ Binomial(2000, 1/50) / 2000: mean 0.02, sd 0.0031; acc@10 mean 0.2, sd 0.0089.
    assert abs(df["acc@1"].mean() - 1 / 50) < 4 * 0.0031
    assert abs(df["acc@10"].mean() - 10 / 50) < 4 * 0.0089


def test_hog_features_shape_and_params():
    imgs = _photos(3)
    f = hog_features(imgs, size=64)
    # 64 px, 8 px cells -> 8x8 cells, 2x2 blocks -> 7x7 blocks x 4 cells x 9 orientations = 1764.
    assert f.shape == (3, 1764) and f.dtype == np.float32
    f16 = hog_features(imgs, size=64, pixels_per_cell=16, orientations=6)
    # 4x4 cells -> 3x3 blocks x 4 x 6 = 216.
    assert f16.shape == (3, 216)
    with pytest.raises(ValueError, match="photo_mode"):
        photo_to_sketchlike(imgs[0], "canny")


def test_hog_retrieves_identical_edge_map_first(pairs):
    sketches, photos = pairs
    sim = hog_baseline(sketches, photos, size=64, photo_mode="edges", edge_sigma=1.0)
    assert sim.shape == (8, 8)
    assert np.array_equal(sim.argmax(axis=1), np.arange(8))
    np.testing.assert_allclose(np.diag(sim), 1.0, atol=1e-5)
    assert np.array_equal(sim, hog_baseline(sketches, photos, size=64, photo_mode="edges"))  # deterministic
    grey = hog_baseline(sketches, photos, size=64, photo_mode="grey")
    assert grey.shape == (8, 8) and not np.allclose(grey, sim)


def test_tune_hog_picks_the_best_setting_on_training_data(pairs):
    sketches, photos = pairs
    relevant = np.eye(8, dtype=bool)
    grid = {"photo_mode": ["grey", "edges"], "edge_sigma": [3.0, 1.0], "pixels_per_cell": [16, 8]}
    best, table = tune_hog(sketches, photos, relevant, grid, metric="mrr", return_table=True)
    assert len(table) == 8
    assert table["score"].max() == 1.0  # the exact-edge-map setting exists in the grid
    assert table.loc[table["score"].idxmax(), "photo_mode"] == best["photo_mode"]
    assert set(best) == {"size", "photo_mode", "edge_sigma", "edge_size", "crop", "pixels_per_cell"}
    sim = hog_baseline(sketches, photos, **best)
    assert per_query_metrics(sim, relevant, p_ks=())["rr"].mean() == pytest.approx(table["score"].max())
    with pytest.raises(ValueError, match="metric must be"):
        tune_hog(sketches, photos, relevant, {"size": [32]}, metric="accuracy")


def test_crop_recovers_sketches_drawn_small_and_off_centre(tmp_path):
    """Sketches = the photos' edge maps shrunk to a third and pasted in a corner of a large canvas: HOG of
    the padded images mostly misses them; cropped to the drawing / object first, it finds them."""
    photos = _photos(8, seed=3)
    sketches = []
    for i, photo in enumerate(photos):
        edges = photo_to_sketchlike(photo, "edges", 96, edge_sigma=1.0).resize((64, 64))
        canvas = Image.new("L", (192, 192), 255)
        canvas.paste(edges, ((i % 2) * 128, (i // 2 % 2) * 128))
        sketches.append(canvas)
    relevant = np.eye(8, dtype=bool)
    plain = per_query_metrics(hog_baseline(sketches, photos), relevant)["acc@1"].mean()
    cropped = per_query_metrics(hog_baseline(sketches, photos, crop=True), relevant)["acc@1"].mean()
    assert cropped >= 0.75 and cropped > plain + 0.25


def test_fuse_scores_zscores_each_query_row():
    """Late fusion: each row z-scored (checked against scipy's zscore), so rescaling either score changes
    nothing; weight 0 ranks as the learned score, a large weight as the other."""
    from scipy.stats import zscore

    from sbir_utils.baselines import fuse_scores

    rng = np.random.default_rng(0)
    learned, other = rng.normal(size=(5, 7)), rng.normal(size=(5, 7)) * 40 + 3
    fused = fuse_scores(learned, other, 0.5)
    np.testing.assert_allclose(fused, zscore(learned, axis=1) + 0.5 * zscore(other, axis=1))
    np.testing.assert_allclose(fuse_scores(learned * 9 - 2, other / 7, 0.5), fused)
    assert (np.argsort(fuse_scores(learned, other, 0.0), axis=1) == np.argsort(learned, axis=1)).all()
    assert (np.argmax(fuse_scores(learned, other, 1e6), axis=1) == np.argmax(other, axis=1)).all()
    flat = fuse_scores(np.ones((2, 3)), other[:2, :3], 1.0)  # a row with no spread counts as zeros
    np.testing.assert_allclose(flat, zscore(other[:2, :3], axis=1))
    with pytest.raises(ValueError, match="shapes differ"):
        fuse_scores(learned, other[:, :3], 1.0)


def test_fuse_scores_with_several_others_gives_each_the_weight():
    """Several other scores (HOG and the frozen trunk): each z-scored on its own, summed, one weight for all."""
    from scipy.stats import zscore

    from sbir_utils.baselines import fuse_scores

    rng = np.random.default_rng(1)
    learned, a, b = rng.normal(size=(4, 6)), rng.normal(size=(4, 6)) * 10, rng.normal(size=(4, 6)) + 5
    np.testing.assert_allclose(fuse_scores(learned, [a, b], 0.25),
                               zscore(learned, axis=1) + 0.25 * (zscore(a, axis=1) + zscore(b, axis=1)))
    np.testing.assert_allclose(fuse_scores(learned, [a], 0.5), fuse_scores(learned, a, 0.5))
    with pytest.raises(ValueError, match="shapes differ"):
        fuse_scores(learned, [a, b[:, :2]], 1.0)


def test_frozen_trunk_baseline_finds_the_same_drawing(tmp_path):
    """A frozen trunk (random weights: the check is of the plumbing, not of ImageNet) gives each sketch its own
    drawing, saved as an RGB photo, as the best match: identical inputs give identical descriptors."""
    from sbir_utils.baselines import frozen_trunk_baseline

    sketches, photos = [], []
    for i, box in enumerate([(10, 10, 50, 30), (20, 5, 40, 60), (5, 30, 60, 55), (30, 30, 58, 58)]):
        img = Image.new("RGB", (64, 64), "white")
        ImageDraw.Draw(img).ellipse(box, outline="black", width=3)
        img.save(tmp_path / f"s{i}.png")
        img.save(tmp_path / f"p{i}.png")
        sketches.append(str(tmp_path / f"s{i}.png"))
        photos.append(str(tmp_path / f"p{i}.png"))
    sims = frozen_trunk_baseline(sketches, photos[::-1], "resnet18", "random", 64, photo_mode="rgb", crop=False)
    assert sims.shape == (4, 4)
    assert (np.argmax(sims, axis=1) == [3, 2, 1, 0]).all()
    np.testing.assert_allclose(sims[np.arange(4), [3, 2, 1, 0]], 1.0, atol=1e-5)
