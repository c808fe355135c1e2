"""The ``sbir`` command (also ``python -m sbir_utils``).

Each sub-command lives in the module that does the work, which provides ``add_arguments(parser)`` and
``run(args) -> int``; it is imported only when used, so ``sbir --help`` stays fast.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import re
import sys
from pathlib import Path

COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("sbir_utils.data.procedural", "generate the embedded procedural data set for a profile"),
    "index": ("sbir_utils.data.formats", "turn a real dataset's official layout into validated index CSVs"),
    "train": ("sbir_utils.train_cli", "train AAFG or ConvNeXt-InfoNCE (the seeds' flags)"),
    "eval": ("sbir_utils.eval_cli", "evaluate a checkpoint on a test index (the seeds' flags)"),
    "transfer": ("sbir_utils.transfer_cli", "real-data transfer table: scratch vs embedded pre-training vs zero-shot"),
    "embed": ("sbir_utils.gallery_index", "encode a large photo collection in shards, build an index, search it"),
    "reproduce": ("sbir_utils.pipeline", "run the whole study: data, notebooks 01-06, HTML reports"),
    "app": ("sbir_utils.app", "web page: draw or upload a sketch, see the top-k photos of a gallery"),
}

# FS-COCO splits ``sbir train`` / ``sbir eval --split`` accept
SPLITS = ("normal", "unseen-file", "unseen-user")
# Exit status for bad arguments or inputs (argparse's convention).
USAGE_ERROR = 2
FALLBACK_VERSION = "0.1.0"  # pyproject.toml's, for a source tree that was never installed


def package_version() -> str:
    """The installed ``sbir_utils`` version, else the one in the source tree's pyproject.toml."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sbir_utils")
    except PackageNotFoundError:
        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            match = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(encoding="utf-8"), re.M)
        except OSError:
            match = None
        return match.group(1) if match else FALLBACK_VERSION


def closest(word: str, candidates) -> str | None:
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(words, candidates) -> str:
    """`` (did you mean X?)`` for the closest candidate of each word, or an empty string."""
    words = [words] if isinstance(words, str) else list(words)
    pairs = [(w, c) for w in words if (c := closest(w, candidates))]
    if not pairs:
        return ""
    if len(pairs) == 1:
        return f" (did you mean {pairs[0][1]}?)"
    return " (did you mean " + ", ".join(f"{c} for {w}" for w, c in pairs) + "?)"


def _option_strings(parser: argparse.ArgumentParser, ns: argparse.Namespace) -> set[str]:
    """Every option of ``parser`` and of the sub-parser that was chosen (``sbir index FORMAT``)."""
    found = set(parser._option_string_actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and getattr(ns, action.dest, None) in action.choices:
            found |= _option_strings(action.choices[getattr(ns, action.dest)], ns)
    return found


class Parser(argparse.ArgumentParser):
    """argparse with a "did you mean ...?" hint for an unrecognised flag (still exit status 2)."""

    def parse_args(self, args=None, namespace=None):
        ns, extras = self.parse_known_args(args, namespace)
        if extras:
            known = _option_strings(self, ns)
            hints = did_you_mean([a.split("=", 1)[0] for a in extras if a.startswith("-")], known)
            self.error(f"unrecognized arguments: {' '.join(extras)}{hints}")
        return ns


def resolve_data_root(data_root: str, split: str | None, val_unseen: bool = False, command: str = "train") -> Path:
    """The index folder to read: ``--data_root`` itself, its ``<split>/`` sub-folder when a split is asked
    for, or, for a raw dataset folder in an official layout, its automatic index (``formats.auto``: built
    once, reused while the folder is unchanged; one line on stderr says what was done)."""
    from .data.index import SPEC_FILE

    root = Path(data_root)
    if val_unseen and split not in (None, "unseen-file"):
        raise ValueError(f"--val_unseen means --split unseen-file, but --split {split} was given")
    split = "unseen-file" if val_unseen else split
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: data folder not found")
    if split is not None and (root / split).is_dir():
        return root / split
    if not (root / SPEC_FILE).is_file() and not any(root.glob("*.csv")):  # not an index folder
        from .data.formats import auto

        if auto.detect(root) is not None:
            home, line = auto.ensure_index(root, split)
            if os.environ.get("RANK", "0") == "0":
                print(f"sbir {command}: {line}", file=sys.stderr, flush=True)
            return home
        subs = sorted(d.name for d in root.iterdir() if (d / "index_train.csv").is_file())
        if split is None and subs:
            raise FileNotFoundError(f"{root}: holds the split folders {subs}; choose one with --split")
        if split is None:
            raise FileNotFoundError(f"{root}: no index_train.csv here, and not a raw layout this project recognises "
                                    "(FS-COCO, Sketchy, TU-Berlin, QMUL, paired folders); build an index with "
                                    f"'sbir index FORMAT {root} --out DIR' or start from data_templates/")
    if split is None or split == "normal":
        return root
    raise FileNotFoundError(f"{root / split}: no index folder for split {split!r} (build it with 'sbir index fscoco')")


def error(command: str, exc: BaseException) -> int:
    """Print one ``sbir COMMAND: error: ...`` line (no traceback) and return the usage-error status."""
    text = str(exc)
    if "Original Traceback" in text:  # re-raised from a DataLoader worker: keep the worker's own message
        last = text.strip().splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    text = " ".join(text.split()) if not hasattr(exc, "problems") else text
    print(f"sbir {command}: error: {text}", file=sys.stderr)
    return USAGE_ERROR


def _top_parser() -> Parser:
    width = max(len(k) for k in COMMANDS)
    listing = "\n".join(f"  {name:<{width}}  {help_text}" for name, (_, help_text) in COMMANDS.items())
    top = Parser(
        prog="sbir",
        usage="%(prog)s [-h] [--version] COMMAND [OPTIONS ...]",
        description=f"Sketch-based image retrieval study.\n\ncommands:\n{listing}",
        epilog="Run 'sbir COMMAND --help' for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    top.add_argument("command", metavar="COMMAND", help="one of the commands above")
    return top


def command_parser(command: str) -> tuple[Parser, object]:
    """The parser of ``sbir COMMAND`` with the module's options, and the module."""
    module_name, help_text = COMMANDS[command]
    module = importlib.import_module(module_name)
    parser = Parser(prog=f"sbir {command}", description=help_text)
    module.add_arguments(parser)
    return parser, module


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    if not argv or argv[0] in ("-h", "--help"):
        top.print_help()
        return 0
    if argv[0] == "--version":
        print(f"sbir {package_version()}")
        return 0
    command = argv[0]
    if command not in COMMANDS:
        if command.startswith("-"):
            top.error(f"unknown option {command!r}{did_you_mean(command, top._option_string_actions)}")
        top.error(f"unknown command {command!r}{did_you_mean(command, COMMANDS)}; "
                  f"choose from {', '.join(COMMANDS)}")
    parser, module = command_parser(command)
    args = parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print(f"sbir {command}: interrupted", file=sys.stderr)
        return 130
