"""Real-dataset importers: ``sbir index FORMAT RAW_ROOT --out DIR [options]``.

Each format module turns one official on-disk layout into ``index_{train,val,test}.csv`` +
``dataset.json`` + ``summary.json`` through a plain function ``build_index(raw_root, out_dir, ...)``;
this module is the thin command-line wrapper and the registry :data:`FORMATS`.
"""

from __future__ import annotations

import argparse
import sys
from types import ModuleType

from ..index import IndexValidationError
from ..safe_pickle import UnsafePickleError
from . import folders, fscoco, qmul, sketchy, tuberlin
from .common import format_summary

FORMATS: dict[str, ModuleType] = {
    "sketchy": sketchy,
    "tuberlin": tuberlin,
    "qmul": qmul,
    "fscoco": fscoco,
    "folders": folders,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="format", metavar="FORMAT", required=True,
                                title="formats (sbir index FORMAT --help for a format's options)")
    for fmt, module in FORMATS.items():
        p = sub.add_parser(fmt, help=module.DESCRIPTION, description=(module.__doc__ or "").strip(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("raw_root", metavar="RAW_ROOT", help="the dataset folder in its official layout")
        p.add_argument("--out", required=True, metavar="DIR", help="index folder to write (created if needed)")
        p.add_argument("--seed", type=int, default=0, help="seed of every random split (default 0)")
        p.add_argument("--val_fraction", type=float, default=0.1,
                       help="share of training photos carved out as validation (default 0.1)")
        p.add_argument("--name", default="", help="dataset name stored in dataset.json (default: derived)")
        p.add_argument("--check_decode", action="store_true",
                       help="also decode every image when re-reading the index (slow on large sets)")
        module.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    module = FORMATS[args.format]
    try:
        summary = module.from_args(args)
    except (FileNotFoundError, NotADirectoryError, ValueError, IndexValidationError, UnsafePickleError) as exc:
        print(f"sbir index {args.format}: error: {exc}", file=sys.stderr)
        return 2
    print(format_summary(summary))
    return 0
