"""Checkpoint files: atomic save, a second name for a saved one, safe load, the newest ``epoch_XX.pt``, and a
model rebuilt from one.

An engine checkpoint is a dict with ``format``, ``epoch``, ``model``, ``optimizer``, ``scheduler``,
``scaler``, ``rng``, ``config``, ``options``, ``history`` and ``best`` (written by ``run_files``); a plain
``model.state_dict()`` (the ConvNeXt-InfoNCE seed's format) loads too, given the model's settings.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import TrainConfig
from ..fileio import atomic_link, atomic_path
from ..models import build_model, read_state_dict

CKPT_FORMAT = 1


def train_config_from_dict(values: dict[str, Any], where: str = "checkpoint") -> TrainConfig:
    """A TrainConfig from a stored dict; unknown keys (from a newer version) are dropped with a warning."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    extra = sorted(set(values) - known)
    if extra:
        warnings.warn(f"{where}: ignoring unknown config key(s) {extra}", stacklevel=2)
    return TrainConfig(**{k: v for k, v in values.items() if k in known})


def save_checkpoint(state: dict[str, Any], path: Path) -> Path:
    """``torch.save`` atomically (a crash never leaves a half-written checkpoint); a failed write (a full
    disk) leaves the previous file in place and raises an ``OSError`` naming ``path``."""
    try:
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    except OSError as exc:
        raise OSError(exc.errno, f"{path}: could not write the checkpoint ({exc.strerror or exc}); "
                                 "the previous one is unchanged") from exc
    return path


def link_checkpoint(source: Path, path: Path) -> Path:
    """``path`` as a second name of the checkpoint file ``source`` (the same bytes, one copy on disk: a hard
    link, made atomically); where hard links are unsupported, an atomic copy of its bytes. A failure leaves the
    previous ``path`` in place and raises an ``OSError`` naming ``path``, as :func:`save_checkpoint` does."""
    try:
        atomic_link(source, path)
    except OSError as exc:
        raise OSError(exc.errno, f"{path}: could not write the checkpoint ({exc.strerror or exc}); "
                                 "the previous one is unchanged") from exc
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint (or a plain state dict) with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt files raise many types
        raise ValueError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """``run_dir/checkpoints/epoch_XX.pt`` with the highest epoch number, or None when there is none."""
    found = sorted(Path(run_dir, "checkpoints").glob("epoch_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    return found[-1] if found else None


def load_model(checkpoint: str | Path, cfg: TrainConfig | None = None,
               device: torch.device | str = "cpu") -> tuple[nn.Module, TrainConfig, dict[str, Any]]:
    """A model ready for evaluation from an engine checkpoint, or from a plain state dict plus ``cfg``
    (the ConvNeXt-InfoNCE seed's ``torch.save(model.state_dict())`` files). Returns (model, cfg, meta)."""
    obj = load_checkpoint(checkpoint)
    if isinstance(obj, dict) and "model" in obj and "config" in obj:
        cfg = train_config_from_dict(obj["config"], str(checkpoint))
        state, meta = obj["model"], {k: obj.get(k) for k in ("epoch", "best", "options")}
    else:
        if cfg is None:
            raise ValueError(f"{checkpoint}: a plain state dict, not an engine checkpoint: say which model it is "
                             "(--model, --backbone, --embed_dim)")
        state = read_state_dict(checkpoint)
        if cfg.model == "convnext_infonce":  # the projection head is optional: follow the file
            cfg = dataclasses.replace(cfg, embed_dim=int(state["head.weight"].shape[0]) if "head.weight" in state else 0)
        meta = {"epoch": None, "best": None, "options": None}
    head_bn = any(k.startswith("neck.") for k in state)  # the file says whether the model has a BN neck
    model = build_model(cfg, weights="random", head_bn=head_bn)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:3]
        raise ValueError(f"{checkpoint}: does not fit a {cfg.model} with backbone {cfg.backbone} "
                         f"({' '.join(first)})") from None
    return model.to(device).eval(), cfg, meta
