"""Shared helpers of the robustness suite (issue 8): a tiny paired data set, CSV writing, the CLI.

The data set comes from ``tests/helpers.make_tiny_dataset`` (coloured rectangles and their outlines);
training uses timm's tiny test backbones at 32 px, so every run takes about a second on one core.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # this folder has no __init__.py (its tests import conftest): make tests/ importable
from tests.helpers import make_tiny_dataset  # noqa: E402

torch.set_num_threads(1)

HEADER = "path_sketch,path_image,label\n"
# Flags for a one-second `sbir train` run (timm's 0.37M-parameter test ResNet at 32 px).
TINY_TRAIN = ["--profile", "smoke", "--backbone", "test_resnet", "--image_size", "32", "--epochs", "1",
              "--batch_size", "8", "--embed_dim", "16", "--no_progress", "--no_cuda"]


def subprocess_env() -> dict[str, str]:
    """Environment of a child ``python -m sbir_utils``: offline, one thread, the checkout importable."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


@pytest.fixture
def tiny(tmp_path) -> Path:
    """A fresh small paired data set (4 train, 2 val, 2 test photos; 2 sketches each) per test."""
    return make_tiny_dataset(tmp_path / "data", photos=(4, 2, 2))


@pytest.fixture(scope="module")
def tiny_shared(tmp_path_factory) -> Path:
    """The same data set shared by a module's tests (do not modify it)."""
    return make_tiny_dataset(tmp_path_factory.mktemp("shared") / "data", photos=(4, 2, 2))


def run_cli(capsys, argv: list[str]) -> tuple[int, str]:
    """``sbir ARGV`` in process; returns (exit status, stderr). argparse's own errors exit with 2."""
    from sbir_utils import cli

    try:
        rc = cli.main(argv)
    except SystemExit as exc:  # argparse: bad flag syntax
        rc = exc.code
    return rc, capsys.readouterr().err


def one_line_error(err: str) -> str:
    """Assert ``err`` holds exactly one ``sbir ...: error: ...`` line and no traceback; return that line.
    (Epoch summaries printed before a failure may precede it.)"""
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("sbir ") and ": error: " in line]
    assert len(errors) == 1, err
    return errors[0]
