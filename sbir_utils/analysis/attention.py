"""Figure 6: attention maps of the stage-1 encoder's self- and cross-attention blocks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from .. import engine
from ..data.images import load_image
from ..data.loading import ImageDataset
from ..data.transforms import crop_to_object, normalize_batch, square
from .queries import _show


@torch.no_grad()
def attention_map(model: nn.Module, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
    """Mean attention each key position receives from all query positions, on the key feature map.

    Without ``context``: AAFG's self-attention over the map of ``x``. With ``context``: its cross-attention
    with queries from ``x``'s map and keys from ``context``'s map (both after self-attention, as in the
    pair score). The weights are recomputed by a forward hook from the block's own inputs and layers
    (``softmax(query(x) key(c)^T * scale)``), since the block does not return them.

    Args:
        x: (B, 3, H, W) preprocessed images; context: (B, 3, H, W) or None.
    Returns:
        (B, h, w) weights of the key map (each map sums to 1).
    """
    block = getattr(model, "self_attn" if context is None else "cross_attn", None)
    if block is None:
        raise ValueError(f"{type(model).__name__} has no {'self' if context is None else 'cross'}-attention block")
    captured: list[torch.Tensor] = []

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        xq, xk = inputs[0], inputs[-1]
        q = module.query(xq).flatten(2).transpose(1, 2)  # (B, hw, d)
        k = module.key(xk).flatten(2)  # (B, d, h'w')
        attn = torch.softmax(torch.bmm(q, k) * module.scale, dim=-1)  # (B, hw, h'w')
        captured.append(attn.mean(dim=1).reshape(xk.shape[0], *xk.shape[2:]))

    was_training = model.training
    model.eval()
    handle = block.register_forward_hook(hook)
    try:
        if context is None:
            model.maps(x)
        else:
            block(model.maps(x), model.maps(context))
    finally:
        handle.remove()
        model.train(was_training)
    return captured[-1]


def _overlay(ax: plt.Axes, img: Any, weights: torch.Tensor, title: str) -> None:
    side = img.size[0]
    up = F.interpolate(weights[None, None].float(), size=(side, side), mode="bilinear", align_corners=False)[0, 0]
    ax.imshow(img, cmap="gray" if img.mode == "L" else None, vmin=0, vmax=255)
    ax.imshow(up.numpy(), cmap="inferno", alpha=0.5, vmin=0.0, vmax=float(up.max()))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=7)


def _model_view(img: Any, kind: str, crop: bool) -> Any:
    return crop_to_object(img, kind) if crop else img


def plot_attention(checkpoint: str | Path, pairs: Sequence[tuple[str, str]], size: int = 128) -> plt.Figure:
    """For each (sketch, photo) pair: the sketch's and the photo's self-attention maps and, with
    cross-attention, the photo positions the sketch attends to, upsampled over the images."""
    model, cfg, _ = engine.load_model(checkpoint)
    sketches = normalize_batch(torch.stack([ImageDataset([s], "sketch", cfg.image_size, image_cache=None, crop=cfg.crop)[0]
                                            for s, _ in pairs]))
    photos = normalize_batch(torch.stack([ImageDataset([p], "photo", cfg.image_size, cfg.photo_mode, image_cache=None,
                                                       crop=cfg.crop)[0] for _, p in pairs]))
    maps = {"sketch self": attention_map(model, sketches), "photo self": attention_map(model, photos)}
    if getattr(model, "cross_attn", None) is not None:
        maps["sketch -> photo"] = attention_map(model, sketches, photos)
    fig, axes = plt.subplots(len(pairs), 2 + len(maps), figsize=(1.7 * (2 + len(maps)), 1.8 * len(pairs)),
                             squeeze=False)
    for r, (s, p) in enumerate(pairs):
        s_img, p_img = (square(_model_view(load_image(f, kind), kind, cfg.crop), size, kind)
                        for f, kind in ((s, "sketch"), (p, "photo")))  # the framing the maps were computed on
        _show(axes[r, 0], s, "sketch", Path(s).name, size=size)
        _show(axes[r, 1], p, "photo", Path(p).name, size=size)
        for c, (name, m) in enumerate(maps.items(), start=2):
            _overlay(axes[r, c], s_img if name == "sketch self" else p_img, m[r],
                     f"{name} ({float(m[r].min()):.2f}-{float(m[r].max()):.2f})")
    h, w = maps["sketch self"].shape[1:]
    gammas = ", ".join(f"{n} gamma {getattr(model, n).gamma.item():.3g}" for n in ("self_attn", "cross_attn")
                       if getattr(model, n, None) is not None)
    note = " - one position, so nothing to see: use a larger image_size" if h * w == 1 else ""
    fig.suptitle(f"attention over a {h}x{w} feature map{note}, colours scaled per map (uniform = {1 / (h * w):.2f})"
                 f"\n({cfg.image_size} px input; {gammas})", fontsize=9)
    fig.tight_layout()
    return fig
