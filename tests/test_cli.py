"""`cli`: `sbir --help`, `--version`, every option's help text, "did you mean" hints, flag spellings."""

from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path

import pytest

from sbir_utils import cli


def _parsers(command: str) -> list[tuple[str, argparse.ArgumentParser]]:
    """The parser of ``sbir COMMAND`` built from its module's ``add_arguments``, and its sub-parsers."""
    module = importlib.import_module(cli.COMMANDS[command][0])
    parser = cli.Parser(prog=f"sbir {command}")
    module.add_arguments(parser)
    found = [(f"sbir {command}", parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found += [(f"sbir {command} {name}", sub) for name, sub in action.choices.items()]
    return found


ALL_PARSERS = [(name, p) for command in cli.COMMANDS for name, p in _parsers(command)]


@pytest.mark.parametrize("name,parser", ALL_PARSERS, ids=[n for n, _ in ALL_PARSERS])
def test_every_option_has_help(name, parser):
    missing = [a.option_strings or a.dest for a in parser._actions
               if not isinstance(a, argparse._SubParsersAction) and not (a.help or "").strip()]
    assert not missing, f"{name}: options without help: {missing}"


@pytest.mark.parametrize("name,parser", ALL_PARSERS, ids=[n for n, _ in ALL_PARSERS])
def test_flags_use_underscores(name, parser):
    hyphenated = [s for a in parser._actions for s in a.option_strings
                  if "-" in s.lstrip("-") and s != "--no-crop"]  # --no-crop: BooleanOptionalAction's own spelling
    assert not hyphenated, f"{name}: {hyphenated}"


def test_top_help_lists_one_command_per_line(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for command, (_, help_text) in cli.COMMANDS.items():
        assert sum(1 for ln in lines if ln.split()[:1] == [command] and help_text in ln) == 1, (command, out)
    assert "--version" in out


def test_no_arguments_prints_help(capsys):
    assert cli.main([]) == 0
    assert "commands:" in capsys.readouterr().out


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"sbir {cli.package_version()}"
    assert cli.package_version().count(".") >= 1


def test_version_falls_back_to_pyproject(monkeypatch):
    import importlib.metadata as metadata

    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    pyproject = (Path(cli.__file__).resolve().parent.parent / "pyproject.toml").read_text()
    assert cli.package_version() == re.search(r'^version = "(.+)"', pyproject, re.M).group(1)


def _error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def test_misspelt_command_suggests_the_closest(capsys):
    line = _error(capsys, ["trian", "--epochs", "1"])
    assert line.startswith("sbir: error: unknown command 'trian'") and "did you mean train?" in line


def test_unrelated_command_has_no_suggestion(capsys):
    line = _error(capsys, ["zzzzzz"])
    assert "unknown command 'zzzzzz'" in line and "did you mean" not in line and "train" in line


def test_misspelt_top_level_option(capsys):
    assert "did you mean --version?" in _error(capsys, ["--verison"])


def test_misspelt_flag_suggests_the_closest(capsys):
    line = _error(capsys, ["train", "--data_root", "x", "--epcohs", "3"])
    assert line.startswith("sbir train: error: unrecognized arguments: --epcohs 3")
    assert "did you mean --epochs?" in line


def test_misspelt_flag_with_equals_and_in_a_format_subparser(capsys):
    assert "did you mean --weight_decay?" in _error(capsys, ["train", "--data_root", "x", "--weight_decya=0.1"])
    line = _error(capsys, ["index", "sketchy", "raw", "--out", "o", "--protocl", "fine", "--seeed", "1"])
    assert "--protocol for --protocl" in line and "--seed for --seeed" in line


@pytest.mark.parametrize("argv,expected", [([], None), (["--crop"], True), (["--no-crop"], False),
                                           (["--no_crop"], False)])
def test_transfer_crop_spellings(argv, expected):
    parser, _ = cli.command_parser("transfer")
    args = parser.parse_args(["--real_root", "r", "--out", "o", *argv])
    assert args.crop is expected


def test_eval_profile_defaults_to_cpu_like_train():
    eval_args = cli.command_parser("eval")[0].parse_args(["--data_root", "d"])
    train_args = cli.command_parser("train")[0].parse_args(["--data_root", "d"])
    assert eval_args.profile == train_args.profile == "cpu"


def test_train_help_explains_the_seeds_flags(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "the seeds' flags" in out.lower() and "unchanged" in out


def test_eval_backbone_help_names_the_cpu_profiles_backbones():
    """The default named in ``sbir eval --backbone``'s help is the cpu profile's (it once named an old one)."""
    from sbir_utils.config import load_profile

    parser, _ = cli.command_parser("eval")
    text = next(a.help for a in parser._actions if "--backbone" in a.option_strings)
    named = re.search(r"cpu: (\S+) for both models", text).group(1)
    profile = load_profile("cpu")
    assert named == profile.convnext.backbone == profile.aafg.backbone
