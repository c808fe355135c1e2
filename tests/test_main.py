"""`python -m sbir_utils` (`__main__`): the `sbir` command, with its exit status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sbir_utils.cli import package_version

REPO = Path(__file__).resolve().parents[1]


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sbir_utils", *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=60)


def test_version_and_exit_status_zero():
    proc = _run("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"sbir {package_version()}"


def test_unknown_command_exits_2_with_a_hint():
    proc = _run("evall")
    assert proc.returncode == 2
    assert "unknown command 'evall' (did you mean eval?)" in proc.stderr


def test_module_runs_cli_main_in_process(monkeypatch, capsys):
    import runpy

    monkeypatch.setattr(sys, "argv", ["sbir", "--version"])
    with pytest.raises(SystemExit) as info:
        runpy.run_module("sbir_utils.__main__", run_name="__main__")
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"sbir {package_version()}"
