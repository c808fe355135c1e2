"""`models.backbones`: the trunks return their last feature map; unknown names and missing or wrong weights are
clear errors; local weight files load."""

from __future__ import annotations

import pytest
import torch
import torchvision

from sbir_utils.models import WeightsUnavailableError, build_trunk
from tests.helpers import random_images as _x

torch.set_num_threads(1)


@pytest.mark.parametrize("name,channels", [("resnet18", 512), ("convnext_atto", 320), ("timm:resnet18", 512)])
def test_trunks_return_last_feature_map(name, channels):
    trunk = build_trunk(name)
    out = trunk(_x(2, 64))
    assert out.shape == (2, channels, 2, 2) and trunk.num_features == channels


def test_unknown_backbone_and_missing_weights_are_clear(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown backbone"):
        build_trunk("no_such_net")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(WeightsUnavailableError, match=r"resnet18-.*\.pth.*checkpoints"):
        build_trunk("resnet18", "imagenet")
    with pytest.raises(WeightsUnavailableError, match="--weights"):
        build_trunk("convnext_atto", "imagenet")
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        build_trunk("resnet18", str(tmp_path / "nope.pth"))
    bad = tmp_path / "bad.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, bad)
    with pytest.raises(WeightsUnavailableError, match="bad.pth"):
        build_trunk("resnet18", str(bad))


def test_local_weight_files_load(tmp_path):
    import timm

    tv = torchvision.models.resnet18(weights=None)
    torch.save(tv.state_dict(), tmp_path / "r18.pth")  # the file torchvision's hub would download
    trunk = build_trunk("resnet18", str(tmp_path / "r18.pth"))
    assert torch.equal(trunk.net.conv1.weight, tv.conv1.weight)
    tm = timm.create_model("convnext_atto", pretrained=False)
    torch.save(tm.state_dict(), tmp_path / "atto.pth")
    trunk = build_trunk("convnext_atto", str(tmp_path / "atto.pth"))
    assert torch.equal(trunk.net.stem[0].weight, tm.stem[0].weight)
