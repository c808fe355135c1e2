"""Training augmentation as batched tensor ops on the device that trains (``augment_on: device``).

The loader's augmentation (``transforms.SketchAugment`` and the pair mirroring of ``loading.PairDataset``)
runs per image in PIL inside the loader workers. :class:`BatchAugment` does the same to a whole batch on the
training device, so that a GPU is fed stored uint8 images that the workers only copy:

1. each sketch gets a random affine jitter (rotation within ``degrees``, shift within ``translate`` of the
   side, scale within ``scale``; what comes in from outside the image is paper);
2. its strokes grow or shrink by one pixel (a 3 x 3 min / max filter, as PIL's ``MinFilter(3)`` /
   ``MaxFilter(3)``), each with probability ``thickness_p``;
3. each pair (sketch and photo) is mirrored with probability ``flip_p``;
4. both are resized from the training base (twice the output side) to the output side (bilinear with
   antialiasing, like PIL's resize) and rounded back to uint8.

The draws come from a ``torch.Generator`` on the device, seeded per step by the caller, so a run is
reproducible on one device; they are not the loader path's draws, so the two paths train alike in
distribution, not to the digit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .loading import sample_seed


@dataclass(frozen=True)
class AugmentDraw:
    """One batch's random parameters, each ``(B,)``: rotation in radians, scale, shift as a fraction of the
    side (x, y), thickness change (-1 thinner strokes, 0, +1 thicker) and mirror flag."""

    angle: torch.Tensor
    scale: torch.Tensor
    shift_x: torch.Tensor
    shift_y: torch.Tensor
    thickness: torch.Tensor
    mirror: torch.Tensor


def affine_jitter(ink: torch.Tensor, draw: AugmentDraw) -> torch.Tensor:
    """Rotate, scale and shift each image of ``ink`` (float ``(B, C, H, W)``, ink > 0 on paper = 0) about
    its centre by ``draw``'s parameters; paper comes in from outside. Returns the same shape."""
    cos, sin = torch.cos(draw.angle) / draw.scale, torch.sin(draw.angle) / draw.scale
    # affine_grid maps output to input coordinates (both in [-1, 1]): the inverse of x -> s R x + t
    tx, ty = 2 * draw.shift_x, 2 * draw.shift_y
    theta = torch.stack([torch.stack([cos, sin, -(cos * tx + sin * ty)], 1),
                         torch.stack([-sin, cos, -(-sin * tx + cos * ty)], 1)], 1)
    grid = F.affine_grid(theta.to(ink.dtype), list(ink.shape), align_corners=False)
    return F.grid_sample(ink, grid, mode="nearest", padding_mode="zeros", align_corners=False)  # as RandomAffine


def change_thickness(ink: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """Grow (``direction`` +1) or shrink (-1) the strokes of each image of ``ink`` (float ``(B, C, H, W)``,
    ink > 0) by one pixel with a 3 x 3 max / min filter; 0 leaves the image as it is."""
    grown = F.max_pool2d(ink, 3, stride=1, padding=1)
    shrunk = -F.max_pool2d(-ink, 3, stride=1, padding=1)
    d = direction.view(-1, 1, 1, 1)
    return torch.where(d > 0, grown, torch.where(d < 0, shrunk, ink))


def resize_uint8(x: torch.Tensor, size: int) -> torch.Tensor:
    """Float images ``(B, C, H, W)`` in [0, 255] -> uint8 ``(B, C, size, size)`` (bilinear, antialiased)."""
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)


def step_generator(device: torch.device | str, *key: int) -> torch.Generator:
    """A generator on ``device`` seeded by ``key``, e.g. ``(seed, epoch, step, rank)`` (``loading.sample_seed``)."""
    generator = torch.Generator(device=device)
    generator.manual_seed(sample_seed(*key))
    return generator


@dataclass(frozen=True)
class BatchAugment:
    """The training augmentation of sketch / photo pairs on a batch (see the module's docstring); the
    defaults are ``SketchAugment``'s and ``PairDataset``'s."""

    degrees: float = 8.0
    translate: float = 0.06
    scale: tuple[float, float] = (0.9, 1.1)
    thickness_p: float = 0.3
    flip_p: float = 0.5

    def draw(self, batch: int, generator: torch.Generator) -> AugmentDraw:
        """The random parameters of ``batch`` pairs, on ``generator``'s device."""
        u = torch.rand((6, batch), generator=generator, device=generator.device)
        lo, hi = self.scale
        p = self.thickness_p
        thickness = (u[4] < p).float() - ((u[4] >= p) & (u[4] < 2 * p)).float()  # +1 thicker, -1 thinner
        return AugmentDraw(angle=(2 * u[0] - 1) * math.radians(self.degrees), scale=lo + (hi - lo) * u[1],
                           shift_x=(2 * u[2] - 1) * self.translate, shift_y=(2 * u[3] - 1) * self.translate,
                           thickness=thickness, mirror=u[5] < self.flip_p)

    def __call__(self, sketch: torch.Tensor, photo: torch.Tensor, size: int,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 sketches ``(B, 1, H, H)`` and photos ``(B, C, H, H)`` on ``generator``'s device (H: the
        training base, twice ``size``) -> the augmented uint8 batch ``(B, 1, size, size)``,
        ``(B, C, size, size)``."""
        if sketch.dtype != torch.uint8 or photo.dtype != torch.uint8:
            raise TypeError(f"BatchAugment expects uint8 images, got {sketch.dtype} and {photo.dtype}")
        d = self.draw(sketch.shape[0], generator)
        ink = 255.0 - sketch.float()
        ink = change_thickness(affine_jitter(ink, d), d.thickness)
        mirror = d.mirror.view(-1, 1, 1, 1)
        sketch_f = 255.0 - ink
        sketch_f = torch.where(mirror, sketch_f.flip(-1), sketch_f)
        photo_f = photo.float()
        photo_f = torch.where(mirror, photo_f.flip(-1), photo_f)
        return resize_uint8(sketch_f, size), resize_uint8(photo_f, size)
