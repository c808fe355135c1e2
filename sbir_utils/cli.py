"""The ``sbir`` command (also ``python -m sbir_utils``).

Each sub-command lives in the module that does the work, which provides ``add_arguments(parser)`` and
``run(args) -> int``; it is imported only when used, so ``sbir --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("sbir_utils.data.procedural", "generate the embedded procedural data set for a profile"),
    "index": ("sbir_utils.data.formats", "turn a real dataset's official layout into validated index CSVs"),
    "train": ("sbir_utils.train_cli", "train AAFG or ConvNeXt-InfoNCE (the seeds' flags)"),
    "eval": ("sbir_utils.eval_cli", "evaluate a checkpoint on a test index (the seeds' flags)"),
    "transfer": ("sbir_utils.transfer", "real-data transfer table: scratch vs embedded pre-training vs zero-shot"),
    "embed": ("sbir_utils.gallery_index", "encode a large photo collection in shards, build an index, search it"),
    "reproduce": ("sbir_utils.pipeline", "run the whole study: data, notebooks 01-06, HTML reports"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = argparse.ArgumentParser(
        prog="sbir",
        description="Sketch-based image retrieval study.",
        epilog="Run 'sbir COMMAND --help' for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("command", choices=sorted(COMMANDS), metavar="COMMAND",
                     help="; ".join(f"{k}: {v[1]}" for k, v in COMMANDS.items()))
    if not argv or argv[0] in ("-h", "--help"):
        top.print_help()
        return 0
    ns, rest = top.parse_known_args(argv[:1])
    module_name, help_text = COMMANDS[ns.command]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"sbir {ns.command}", description=help_text)
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:] + rest)
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print(f"sbir {ns.command}: interrupted", file=sys.stderr)
        return 130
