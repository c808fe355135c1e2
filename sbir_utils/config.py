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
    augment_on: str = "loader"  # loader (PIL, per image, in the loader workers) | device (batched, data.batch_augment)
    photo_mode: str = "rgb"  # rgb | edges | hed: photos as Canny or HED edge maps, drawn like sketches (data.transforms)
    crop: bool = False  # crop sketches and photos to their drawing / object before squaring (data.loading)
    freeze_bn: bool = False  # trunk BatchNorm keeps its pretrained statistics while training (models.freeze_batchnorm)
    pool: str = "avg"  # convnext_infonce: avg (the seed's global pool) | grid2 | grid3 | grid4 (models.siamese)
    # The training procedure (OPTION_FIELDS; engine.fit keywords before issue 22): stored, resolved, as the
    # "options" of config.json and the checkpoints, apart from the fields above ("train" / "config").
    sampler: str = "auto"  # auto (pk for category-level data, else photo_unique) | photo_unique | pk | random
    mining: str = "hard"  # triplet negatives after the warm-up: hard | semihard
    symmetric: bool = False  # InfoNCE in both directions
    pair_weight: float = 1.0  # AAFG: weight of the cross-attention pair-ranking loss
    pair_negatives: int = 3  # AAFG: negatives per anchor of the pair-ranking loss
    head_bn: bool | None = None  # BN neck before L2 normalisation; None: the model's default (see sbir_utils.engine)
    select_metric: str | None = None  # validation metric choosing best.pt; None: acc@1 or mAP@all (s2_ with AAFG CA)
    model_path: str | Path | None = None  # start from this state dict or engine checkpoint
    train_csv: str = "index_train.csv"  # training index, relative to the data root
    val_csv: str = "index_val.csv"  # validation index (chooses best.pt)
    save_state_dict: bool = False  # also write run_dir/model.pth, the best model's plain state dict
    keep_last: int = 3  # newest epoch_XX.pt files kept (0: all)
    skip_missing: bool = False  # leave out index rows whose files are missing (else they stop the run)


OPTION_FIELDS = ("sampler", "mining", "symmetric", "pair_weight", "pair_negatives", "head_bn", "select_metric",
                 "model_path", "train_csv", "val_csv", "save_state_dict", "keep_last", "skip_missing")
WARMUP_LOSSES = ("infonce", "semihard")
SAMPLERS = ("auto", "photo_unique", "pk", "random")
AUGMENT_ON = ("loader", "device")


def core_fields(cfg: TrainConfig) -> dict[str, Any]:
    """The model and optimisation fields of ``cfg`` (all but OPTION_FIELDS): a checkpoint's ``config`` and
    config.json's ``train``, the settings a resumed run must share."""
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k not in OPTION_FIELDS}


def check_train_config(cfg: TrainConfig, names: dict[str, str] | None = None) -> None:
    """The one check of training settings (``sbir train``, ``engine.fit`` and ``study.train_once`` call it):
    every invalid one in one ``ValueError``, e.g. ``epochs must be >= 1, got 0; lr must be > 0, got 0.0``.
    ``names``: how the messages name a field (``sbir train``: its flag, ``--temp`` for ``temperature``)."""
    from .data.transforms import PHOTO_MODES
    from .losses import MININGS
    from .models.siamese import POOLS

    def name(field_name: str) -> str:
        return (names or {}).get(field_name, field_name)

    problems = []
    for key, low in (("epochs", 1), ("batch_size", 2), ("image_size", 16), ("embed_dim", 0), ("attn_reduction", 1),
                     ("rerank_k", 0), ("num_workers", 0), ("warmup_epochs", 0), ("keep_last", 0)):
        if getattr(cfg, key) < low:
            problems.append(f"{name(key)} must be >= {low}, got {getattr(cfg, key)}")
    for key in ("lr", "temperature"):
        if not getattr(cfg, key) > 0:
            problems.append(f"{name(key)} must be > 0, got {getattr(cfg, key)}")
    if cfg.margin < 0:
        problems.append(f"{name('margin')} must be >= 0, got {cfg.margin}")
    if cfg.loss not in ("triplet", "infonce"):
        problems.append(f"{name('loss')} must be 'triplet' or 'infonce', got {cfg.loss!r}")
    for key, choices in (("photo_mode", PHOTO_MODES), ("warmup_loss", WARMUP_LOSSES), ("mining", MININGS),
                         ("sampler", SAMPLERS), ("augment_on", AUGMENT_ON)):
        if getattr(cfg, key) not in choices:
            problems.append(f"{name(key)} must be one of {choices}, got {getattr(cfg, key)!r}")
    if cfg.pool not in POOLS or (cfg.pool != "avg" and cfg.model != "convnext_infonce"):
        problems.append(f"{name('pool')} must be one of {POOLS} (other than avg only for convnext_infonce), "
                        f"got {cfg.pool!r}")
    if cfg.freeze_bn and cfg.weights == "random" and not cfg.model_path:
        problems.append("freeze_bn keeps the trunk's BatchNorm statistics of its initial weights, and random "
                        "initialisation has none worth keeping: give --weights (or --model_path), or drop --freeze_bn")
    if problems:
        raise ValueError("; ".join(problems))


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
    photo_mode: str = "rgb"  # rgb | edges | hed (see TrainConfig)
    crop: bool = False  # crop to the drawing / object (see TrainConfig); the HOG row may choose it too
    epochs: int = 60  # real-data epochs of the fine-tuned row (scratch: these plus the pre-training's share)
    pretrain_epochs: int = 20  # embedded fine-grained epochs
    weights: str = "random"  # imagenet | efficientnet_lite0 | state-dict path: adds the "pretrained-init" row
    init_backbone: str = ""  # backbone of the pretrained-init row (the one the weights fit); "": backbone
    init_epochs: int = 0  # real epochs of the pretrained-init row; 0: as many as scratch
    init_image_size: int = 0  # input side of the pretrained-init row; 0: image_size
    freeze_bn: bool = False  # pretrained-init row: keep the trunk's pretrained BatchNorm statistics (see TrainConfig)
    init_pool: str = "avg"  # pretrained-init row's pooling (convnext_infonce): avg | grid2 | grid3 | grid4
    init_photo_mode: str = ""  # pretrained-init row's photos: rgb | edges | hed; "": photo_mode
    # pretrained-ensemble row: further members beside the pretrained-init run, each a mapping of TrainConfig
    # changes to that run's settings (e.g. {embed_dim: 512}); [] leaves the row out
    ensemble: list[dict[str, Any]] = field(default_factory=list)
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
    # the ConvNeXt-InfoNCE design keeping the layout (the seed's global pool drops it): one run on the normal
    # scene split (first seed) per entry, each a mapping of TrainConfig changes, e.g. {pool: grid4, image_size: 128}
    layout_runs: list[dict[str, Any]] = field(default_factory=lambda: [{"pool": "grid2"}])

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
    profile = _build(Profile, raw, str(path))
    for i, changes in enumerate(profile.layout_runs):
        check_train_changes(changes, f"{path}: layout_runs[{i}]")
    for i, changes in enumerate(profile.transfer.ensemble):
        check_train_changes(changes, f"{path}: transfer.ensemble[{i}]")
    from .data.transforms import PHOTO_MODES

    for key, allowed in (("photo_mode", PHOTO_MODES), ("init_photo_mode", ("", *PHOTO_MODES))):
        if getattr(profile.transfer, key) not in allowed:
            raise ConfigError(f"{path}: transfer.{key} must be one of {allowed}, got {getattr(profile.transfer, key)!r}")
    return profile


def check_train_changes(changes: Any, where: str) -> None:
    """``changes`` (a layout run, an ensemble member) must be a non-empty mapping of TrainConfig field names;
    otherwise a ``ConfigError`` that starts with ``where``."""
    unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(TrainConfig)}) if isinstance(changes, dict) else []
    if not isinstance(changes, dict) or not changes or unknown:
        raise ConfigError(f"{where} = {changes!r}: expected a non-empty mapping of TrainConfig fields, e.g. "
                          "{pool: grid4, image_size: 128}" + (f"; unknown: {unknown}" if unknown else ""))
