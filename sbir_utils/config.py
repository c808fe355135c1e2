"""Profiles: every setting of a study run, from a YAML file in ``configs/``.

``smoke`` (seconds per notebook: tests, nbval), ``cpu`` (default of ``make reproduce``: the whole study
on a 2-core laptop), ``full`` (the seeds' settings: 224 px, ResNet-50 / ConvNeXt-Small, ImageNet
weights, real data, GPU). Unknown keys are an error naming the file, so a typo never passes silently.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import paths

PROFILES = ("smoke", "cpu", "full")


@dataclass
class GeneratorConfig:
    """The embedded procedural data set (see ``sbir_utils.data.procedural``)."""

    seed: int = 0
    categories: list[str] = field(
        default_factory=lambda: ["shoe", "chair", "mug", "lamp", "bottle", "house", "tree", "car"]
    )
    instances_per_category: int = 40  # photos per category; each has sketches_per_photo sketches
    sketches_per_photo: int = 3
    n_drawers: int = 12  # drawer styles; the sketches of one photo come from different drawers
    n_unseen_drawers: int = 2  # drawers who draw only test sketches (the "unseen drawer" analysis)
    photo_size: int = 128  # px, square
    sketch_size: int = 128  # px of the raster sketch (strokes live on a 256 x 256 canvas)
    split: list[float] = field(default_factory=lambda: [0.6, 0.15, 0.25])  # train/val/test, by photo
    scenes: int = 200  # scene sketch/photo pairs (FS-COCO layout)
    scene_drawers: int = 10
    scene_test_fraction: float = 0.3


@dataclass
class TrainConfig:
    """One model's training settings; the CLI flags of ``sbir train`` override these."""

    model: str = "aafg"  # aafg | convnext_infonce
    backbone: str = "resnet18"  # torchvision or timm name
    weights: str = "random"  # random | imagenet | path to a state dict
    image_size: int = 64
    embed_dim: int = 128
    epochs: int = 2
    batch_size: int = 16
    lr: float = 1e-4
    weight_decay: float = 0.0
    loss: str = "triplet"  # triplet | infonce
    margin: float = 0.2
    temperature: float = 0.05
    warmup_epochs: int = 0  # first epochs trained with warmup_loss (random-init triplet training collapses)
    warmup_loss: str = "infonce"  # infonce | semihard
    self_attention: bool = True
    cross_attention: bool = True
    attn_reduction: int = 1
    rerank_k: int = 10
    seed: int = 42
    amp: bool = False
    num_workers: int = 0
    augment: bool = True
    photo_mode: str = "rgb"  # rgb | edges: photos as Canny edge maps, drawn like sketches (see data.loading)
    crop: bool = False  # crop sketches and photos to their drawing / object before squaring (data.loading)
    freeze_bn: bool = False  # trunk BatchNorm keeps its pretrained statistics while training (models.freeze_batchnorm)
    pool: str = "avg"  # convnext_infonce: avg (the seed's global pool) | grid2 | grid3 | grid4 (models.siamese)


@dataclass
class EvalConfig:
    seeds: list[int] = field(default_factory=lambda: [42])
    bootstrap: int = 1000  # resamples for the 95% confidence intervals
    batch_size: int = 64
    gallery_rows: int = 20  # query rows shown in result.html


@dataclass
class TransferConfig:
    """The real-data transfer table (``sbir_utils.transfer``): one model trained from scratch on the real
    training split, pre-trained on the embedded set (zero-shot), and pre-trained then fine-tuned."""

    model: str = "convnext_infonce"  # the shared-encoder InfoNCE design; aafg also works
    backbone: str = "resnet18"
    image_size: int = 64
    batch_size: int = 32
    lr: float = 3e-4
    temperature: float = 0.07
    photo_mode: str = "rgb"  # rgb | edges (see TrainConfig)
    crop: bool = False  # crop to the drawing / object (see TrainConfig); the HOG row may choose it too
    epochs: int = 60  # real-data epochs of the fine-tuned row (scratch: these plus the pre-training's share)
    pretrain_epochs: int = 20  # embedded fine-grained epochs
    weights: str = "random"  # imagenet | efficientnet_lite0 | state-dict path: adds the "pretrained-init" row
    init_backbone: str = ""  # backbone of the pretrained-init row (the one the weights fit); "": backbone
    init_epochs: int = 0  # real epochs of the pretrained-init row; 0: as many as scratch
    init_image_size: int = 0  # input side of the pretrained-init row; 0: image_size
    freeze_bn: bool = False  # pretrained-init row: keep the trunk's pretrained BatchNorm statistics (see TrainConfig)
    init_pool: str = "avg"  # pretrained-init row's pooling (convnext_infonce): avg | grid2 | grid3 | grid4
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])


@dataclass
class Profile:
    name: str = "smoke"
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    aafg: TrainConfig = field(default_factory=TrainConfig)
    convnext: TrainConfig = field(
        default_factory=lambda: TrainConfig(model="convnext_infonce", backbone="convnext_atto", loss="infonce")
    )
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, directory: Path | str) -> Path:
        """Write the resolved configuration next to a run's outputs (``config.json``)."""
        out = Path(directory) / "config.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return out


class ConfigError(ValueError):
    """A profile file or an override is invalid; the message names the file and the key."""


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(values).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    kwargs: dict[str, Any] = {}
    defaults = cls()
    for name, value in values.items():
        current = getattr(defaults, name)
        if dataclasses.is_dataclass(current):
            # Nested sections start from the field's own default (e.g. convnext's model name).
            merged = {**dataclasses.asdict(current), **(value or {})}
            kwargs[name] = _build(type(current), merged, f"{where}.{name}")
        else:
            kwargs[name] = value
    return cls(**kwargs)


def profile_path(name_or_path: str | Path) -> Path:
    """``smoke`` -> ``configs/smoke.yaml``; a path is returned as is."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml"):
        return candidate
    return paths.CONFIGS_DIR / f"{name_or_path}.yaml"


def load_profile(name_or_path: str | Path = "smoke", overrides: dict[str, Any] | None = None) -> Profile:
    """Read a profile; ``overrides`` are dotted keys, e.g. ``{"aafg.epochs": 1}``."""
    path = profile_path(name_or_path)
    if not path.exists():
        raise ConfigError(f"{path}: no such profile (choose one of {PROFILES} or give a YAML path)")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    raw.setdefault("name", path.stem)
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return _build(Profile, raw, str(path))
