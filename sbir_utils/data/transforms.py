"""Image transforms shared by the datasets (``loading``), the HOG baselines and the analyses.

The model's preprocessing: optionally crop to the drawing / object (:func:`crop_to_object`), pad to a
square on white and resize (:func:`square`; sketches thickened first when shrunk a lot), photos as
``rgb``, as Canny ``edges`` or as ``hed`` edge maps (:func:`photo_input`). The datasets hand out uint8 tensors (:func:`to_uint8`,
1 channel for greyscale, 3 for RGB: a quarter of float32's bytes to copy to a GPU); :func:`normalize_batch`
turns a batch of them into the model's float input where the model runs (ImageNet mean/std normalisation,
greyscale replicated to 3 channels). :func:`to_tensor` is both steps for one image, bit-identical.
:class:`SketchAugment` is the training-time sketch jitter.

The HOG baselines' preparation: :func:`square_grey` and :func:`photo_to_sketchlike` (a photo as
greyscale or as Canny edges drawn black on white); :func:`photo_input`'s ``edges`` mode uses the latter.

Two sets of photo modes, on purpose: :data:`PHOTO_MODES` are what a model can be trained and evaluated
on (``rgb`` | ``edges`` | ``hed``, a configuration's ``photo_mode``); :data:`SKETCHLIKE_MODES` are what the HOG
baselines compare sketches with (``grey`` | ``edges``: HOG ignores colour, so there is no ``rgb``).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
PHOTO_MODES = ("rgb", "edges", "hed")  # a model's photo input (photo_input)
# What the image store calls each mode's preprocessing (part of a store's key): give a mode a new name when
# its preprocessing changes, so that images stored by the old code are not reused.
PHOTO_PREP_NAMES = {"rgb": "rgb", "edges": "edges", "hed": "hed2x-max512"}
SKETCHLIKE_MODES = ("grey", "edges")  # a HOG baseline's photo preparation (photo_to_sketchlike)
INK_THRESHOLD = {"sketch": 200, "photo": 235}  # grey level below which a pixel is drawing / object, not paper


def check_photo_mode(mode: str, modes: tuple[str, ...] = PHOTO_MODES) -> None:
    """Raise ``ValueError`` unless ``mode`` is one of ``modes``."""
    if mode not in modes:
        raise ValueError(f"photo_mode must be one of {modes}, got {mode!r}")


def require_photo_mode(mode: str) -> None:
    """Raise now, not at the first batch, when ``mode`` cannot run here: ``ValueError`` for an unknown mode,
    ``WeightsUnavailableError`` (naming the pip command) when ``hed``'s packaged weights are missing or damaged."""
    check_photo_mode(mode)
    if mode == "hed":
        from ..models.hed import load_hed

        load_hed()


def crop_to_object(img: Image.Image, kind: str = "photo", margin: float = 0.05) -> Image.Image:
    """``img`` cropped to the bounding box of its non-white pixels, widened by ``margin`` x the box's
    longer side on each edge (clipped to the image). A pixel counts when its grey level is below
    ``INK_THRESHOLD[kind]`` or, for a faint drawing, below the midpoint of its darkest pixel and white.
    An image with no such pixel is returned as it is. Used with ``crop=True``: a sketch drawn small in a
    corner of its canvas and a product photo then fill the frame alike (the README's real-shoe transfer
    table, HOG at 64 px: acc@1 0.077 -> 0.160)."""
    grey = np.asarray(img.convert("L"))
    threshold = max(INK_THRESHOLD[kind], (int(grey.min()) + 255) // 2)
    ys, xs = np.nonzero(grey < threshold)
    if xs.size == 0:
        return img
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    m = int(round(margin * max(x1 - x0, y1 - y0)))
    return img.crop((max(0, x0 - m), max(0, y0 - m), min(img.width, x1 + m), min(img.height, y1 + m)))


def square(img: Image.Image, size: int, kind: str = "photo") -> Image.Image:
    """Pad ``img`` to a square on white (centred) and resize it to ``size`` x ``size``; a sketch
    (``kind="sketch"``) shrunk by a factor f >= 2 is first thickened with a min filter of odd size ~f, so
    that its strokes survive the downscaling (a 512 px shoe sketch at 64 px otherwise keeps only faint
    grey lines, darkest pixel 143/255; with it, 68/255)."""
    if kind == "sketch":
        factor = max(img.size) / size
        if factor >= 2:
            k = int(factor) | 1  # odd kernel, about the shrink factor
            img = img.filter(ImageFilter.MinFilter(k))
    fill = 255 if img.mode == "L" else (255, 255, 255)
    return ImageOps.pad(img, (size, size), method=Image.Resampling.BILINEAR, color=fill)


def square_grey(img: Image.Image, size: int) -> Image.Image:
    """Greyscale, padded to a square with white (centred), resized to ``size`` x ``size`` (the HOG
    baselines' preparation; pasted on a canvas, so not the same pixels as :func:`square`)."""
    grey = img.convert("L")
    w, h = grey.size
    if w != h:
        side = max(w, h)
        canvas = Image.new("L", (side, side), 255)
        canvas.paste(grey, ((side - w) // 2, (side - h) // 2))
        grey = canvas
    return grey.resize((size, size), Image.Resampling.BILINEAR)


def photo_to_sketchlike(
    photo: Image.Image,
    mode: str = "edges",
    size: int = 64,
    edge_sigma: float = 1.0,
    edge_size: int | None = None,
) -> Image.Image:
    """A photo prepared for comparison with sketches, ``size`` x ``size``, mode ``L``.

    Args:
        mode: ``"grey"`` (greyscale) or ``"edges"`` (Canny edges of the greyscale image, drawn black on
            white like a sketch); see :data:`SKETCHLIKE_MODES`.
        edge_sigma: Gaussian smoothing of the Canny detector (larger = fewer, smoother edges).
        edge_size: resolution the edges are found at before shrinking to ``size`` (default ``4 * size``),
            so they end up thin and soft like a downscaled sketch. On the real shoe set (600 sketches x
            200 photos, HOG at 64 px) edges at 256 px gave MRR 0.138, edges at 64 px 0.115, grey 0.127.
    """
    check_photo_mode(mode, SKETCHLIKE_MODES)
    if mode == "grey":
        return square_grey(photo, size)
    from skimage.feature import canny  # imported here: loading the datasets does not need scikit-image

    grey = square_grey(photo, edge_size or 4 * size)
    edges = canny(np.asarray(grey, dtype=np.float64) / 255.0, sigma=edge_sigma)
    return square_grey(Image.fromarray(np.where(edges, 0, 255).astype(np.uint8), "L"), size)


def photo_input(photo: Image.Image, size: int, mode: str = "rgb") -> Image.Image:
    """A photo squared to ``size`` as the model sees it (mode ``RGB`` for ``rgb``, ``L`` otherwise):

    * ``rgb``: as it is;
    * ``edges``: Canny edges found at twice ``size``, drawn black on white (:func:`photo_to_sketchlike`) and
      thickened on the way down as a sketch is (``square(kind="sketch")``), which brings the photo into the
      sketch's domain before any learning;
    * ``hed``: the HED edge map (``models.hed``: contours learnt from human annotators, where Canny also
      marks texture), dark on white, found at twice ``size`` on the longer side as Canny's edges are (thin
      lines once shrunk: on the real shoes, whose photos are 136 px wide, HED at twice the photo's own size
      instead of twice ``size`` gave validation MRR 0.71 against 0.75; docs/pretrained-weights.md), but at
      no more than ``models.hed.MAX_SIDE`` (512) px: HED's cost grows with the square of the side.
    """
    check_photo_mode(mode)
    if mode == "rgb":
        return square(photo, size, "photo")
    if mode == "hed":
        from ..models.hed import MAX_SIDE, hed_sketchlike  # imported here: only this mode needs the network

        return square(hed_sketchlike(photo, min(2 * size, MAX_SIDE)), size, "photo")
    edges = photo_to_sketchlike(photo, "edges", size=2 * size, edge_size=2 * size)  # 1-px lines
    return square(edges, size, "sketch")


def to_uint8(img: Image.Image | np.ndarray) -> torch.Tensor:
    """PIL image (L or RGB) or uint8 array ``(H, W)`` / ``(H, W, 3)`` -> uint8 tensor ``(C, H, W)``, C = 1 or 3."""
    t = torch.from_numpy(np.array(img, dtype=np.uint8))  # a writable copy (PIL's and memmap views are not)
    return t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1).contiguous()


def normalize_batch(x: torch.Tensor, device: torch.device | str | None = None,
                    channels_last: bool = False) -> torch.Tensor:
    """uint8 images ``(B, C, H, W)`` or ``(C, H, W)`` (C = 1 or 3) -> the model's float32 input
    ``(B, 3, H, W)`` / ``(3, H, W)``: scaled to [0, 1], ImageNet mean/std normalised, greyscale replicated to
    3 channels. With ``device`` the uint8 tensor is copied there first (``non_blocking``: asynchronous from
    pinned memory) and the arithmetic runs on that device. ``channels_last``: NHWC memory format (faster
    convolutions on recent GPUs; the values are the same)."""
    if x.dtype != torch.uint8:
        raise TypeError(f"normalize_batch expects uint8 images, got {x.dtype}")
    if device is not None:
        x = x.to(device, non_blocking=True)
    c = x.shape[-3]
    if c == 1:
        x = x.expand(*x.shape[:-3], 3, *x.shape[-2:])
    elif c != 3:
        raise ValueError(f"normalize_batch expects 1 or 3 channels, got shape {tuple(x.shape)}")
    x = TF.normalize(TF.to_dtype(x.contiguous(), torch.float32, scale=True), list(MEAN), list(STD))
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.ndim == 4 else x


def to_tensor(img: Image.Image | np.ndarray) -> torch.Tensor:
    """PIL image (L or RGB) or uint8 array -> the model's normalised float tensor (3, H, W): :func:`to_uint8`
    then :func:`normalize_batch`."""
    return normalize_batch(to_uint8(img))


class SketchAugment:
    """Random affine jitter (rotation, scale, shift) and stroke-thickness change of a greyscale sketch."""

    def __init__(self, degrees: float = 8.0, translate: float = 0.06, scale: tuple[float, float] = (0.9, 1.1),
                 thickness_p: float = 0.3):
        self.affine = v2.RandomAffine(degrees=degrees, translate=(translate, translate), scale=scale, fill=255)
        self.thickness_p = thickness_p

    def __call__(self, sketch: Image.Image) -> Image.Image:
        sketch = self.affine(sketch)
        u = float(torch.rand(()))
        if u < self.thickness_p:
            sketch = sketch.filter(ImageFilter.MinFilter(3))  # dark strokes grow
        elif u < 2 * self.thickness_p:
            sketch = sketch.filter(ImageFilter.MaxFilter(3))  # dark strokes shrink
        return sketch
