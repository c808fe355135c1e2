"""``sbir eval``: retrieval metrics of a checkpoint on a test index (stage 1, and stage 2 for AAFG).

    sbir eval --data_root DATA/Sketchy --test_csv index_test.csv --ckpt checkpoints/best.pt --batch_size 64
    sbir eval --model convnext_infonce --data_root fscoco --model_path models/model_normal.pth \\
        --profile full                                  # the ConvNeXt seed's released state dicts

``--ckpt`` is looked up as given, then under ``--log_dir``. Metrics are fractions in [0, 1].
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from .cli import SPLITS, error, resolve_data_root
from .config import PROFILES
from .fileio import atomic_write_text
from .models import MODELS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data_root", required=True, metavar="DIR",
                        help="index folder holding --test_csv, or a raw dataset in its official layout (indexed "
                             "as sbir train does)")
    parser.add_argument("--test_csv", default="index_test.csv", help="test index, relative to --data_root")
    parser.add_argument("--ckpt", default="checkpoints/best.pt",
                        help="engine checkpoint (default checkpoints/best.pt, also looked up under --log_dir)")
    parser.add_argument("--log_dir", help="run folder whose checkpoints/ holds --ckpt")
    parser.add_argument("--model_path", help="a plain state dict instead of --ckpt (e.g. the ConvNeXt seed's "
                                             "model_normal.pth); say the model with --model/--backbone")
    parser.add_argument("--batch_size", type=int, default=64, help="images per forward pass (default 64)")
    parser.add_argument("--rerank_k", type=int, help="AAFG stage 2: re-rank each query's top K (default: the "
                                                     "checkpoint's; 0 = stage 1 only)")
    parser.add_argument("--json", metavar="PATH", help="also write the metrics as JSON")
    parser.add_argument("--html_dir", metavar="DIR", help="where result.html (each query's top 10, true photo "
                                                          "outlined in red) goes; default: RUN_DIR/eval_<test csv>")
    parser.add_argument("--no_html", action="store_true", help="do not write result.html")
    parser.add_argument("--split", choices=SPLITS, default=None, help="FS-COCO split: sub-folder of --data_root, or the split a raw "
                        "FS-COCO folder is indexed with")
    parser.add_argument("--val_unseen", action="store_true", help="same as --split unseen-file")
    parser.add_argument("--skip_missing", action="store_true",
                        help="leave out test rows whose files are missing (counted); without it they stop, all listed")
    parser.add_argument("--no_cuda", action="store_true", help="evaluate on the CPU")
    parser.add_argument("--num_workers", type=int, default=0, help="data-loader worker processes (default 0)")
    g = parser.add_argument_group("for --model_path (a checkpoint stores its own settings)")
    g.add_argument("--model", choices=MODELS, default="convnext_infonce",
                   help="architecture of the --model_path state dict (default convnext_infonce)")
    g.add_argument("--backbone", default=None,
                   help="default: the profile's (cpu: tf_efficientnet_lite0 for both models; the ConvNeXt "
                        "seed's released files need --profile full: convnext_small at 224 px)")
    g.add_argument("--image_size", type=int, default=None, help="input side in pixels (default: the profile's)")
    g.add_argument("--embed_dim", type=int, default=None,
                   help="AAFG embedding size (default: the profile's; a ConvNeXt-InfoNCE file's own "
                        "projection head, or none, is followed)")
    g.add_argument("--profile", default="cpu",
                   help=f"defaults for --model_path {PROFILES} (default cpu, as for sbir train; "
                        "the ConvNeXt seed's released .pth files need 'full')")


def resolve_checkpoint(ckpt: str, log_dir: str | None) -> Path:
    path = Path(ckpt)
    if path.is_file():
        return path
    if log_dir and (Path(log_dir) / ckpt).is_file():
        return Path(log_dir) / ckpt
    where = f" (nor under --log_dir {log_dir})" if log_dir else " (pass --log_dir RUN_DIR to look in a run folder)"
    raise FileNotFoundError(f"{ckpt}: checkpoint not found{where}")


def format_table(res: dict) -> str:
    keys = ("acc@1", "acc@5", "acc@10", "mrr", "mAP@all", "mAP@200", "P@100", "P@200")
    lines = ["stage   " + " ".join(f"{k:>8}" for k in keys)]
    for name in ("stage1", "stage2"):
        if res.get(name):
            lines.append(f"{name:<8}" + " ".join(f"{res[name][k]:8.4f}" for k in keys))
    s1 = res["stage1"]
    lines.append(f"{s1['n_queries']} queries, {s1['n_gallery']} gallery photos; checkpoint {res['checkpoint']}"
                 + (f"; stage 2 re-ranks the top {res['rerank_k']}" if res.get("stage2") else ""))
    return "\n".join(lines)


def write_html(out_dir: Path, details: dict, res: dict) -> Path:
    """``result.html`` of the final ranking (stage 2 when there is one), as the ConvNeXt seed writes it."""
    from .gallery import write_result_html

    final = res["stage2"] or res["stage1"]
    stage = "stage 2" if res["stage2"] else "stage 1"
    return write_result_html(
        out_dir, details["query_files"], details["gallery_files"], details["top"], details["ranks"],
        title=f"{res['model']} ({res['backbone']}), {Path(res['test_csv']).name}, {stage}",
        relevant=details["relevant"], model=res["model"],
        metrics={k: final[k] for k in ("acc@1", "acc@5", "acc@10", "mAP@all")})


def _json_safe(value):
    """NaN (e.g. P@200 on a smaller gallery) -> null, so the file is strict JSON."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from .config import load_profile
    from .engine import evaluate
    from .models.backbones import WeightsUnavailableError

    try:
        if args.batch_size < 1:
            raise ValueError(f"--batch_size must be >= 1, got {args.batch_size}")
        if args.rerank_k is not None and args.rerank_k < 0:
            raise ValueError(f"--rerank_k must be >= 0, got {args.rerank_k}")
        data_root = resolve_data_root(args.data_root, args.split, args.val_unseen, "eval")
        cfg = None
        if args.model_path:
            ckpt = Path(args.model_path)
            if not ckpt.is_file():
                raise FileNotFoundError(f"{ckpt}: --model_path file not found")
            prof = load_profile(args.profile)
            cfg = prof.aafg if args.model == "aafg" else prof.convnext
            changes = {k: v for k, v in (("backbone", args.backbone), ("image_size", args.image_size),
                                         ("embed_dim", args.embed_dim)) if v is not None}
            cfg = dataclasses.replace(cfg, model=args.model, weights="random", **changes)
        else:
            ckpt = resolve_checkpoint(args.ckpt, args.log_dir)
        res = evaluate(ckpt, data_root, args.test_csv, args.batch_size, args.rerank_k, cfg=cfg,
                       device="cpu" if args.no_cuda else None, num_workers=args.num_workers, details=not args.no_html,
                       skip_missing=args.skip_missing)
    except (FileNotFoundError, ValueError, WeightsUnavailableError) as exc:
        if args.model_path and args.profile != "full" and "does not fit" in str(exc):
            exc = ValueError(f"{exc}; the ConvNeXt seed's released files need --profile full")
        return error("eval", exc)
    details = res.pop("details", None)
    print(format_table(res))
    if "skipped_rows" in res:
        print(f"--skip_missing: rows left out {json.dumps(res['skipped_rows'])}")
    if details is not None:
        run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
        # beside a bare weights file the file's name is part of the folder: model_normal.pth and model_unseen.pth
        # in one models/ folder must not overwrite each other's page
        name = f"eval_{ckpt.stem}_{Path(args.test_csv).stem}" if args.model_path else f"eval_{Path(args.test_csv).stem}"
        out_dir = Path(args.html_dir) if args.html_dir else run_dir / name
        page = write_html(out_dir, details, res)
        print(f"wrote {page}")
    if args.json:
        atomic_write_text(args.json, json.dumps(_json_safe(res), indent=2, allow_nan=False) + "\n")
        print(f"wrote {args.json}")
    return 0
