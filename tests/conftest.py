"""Fixtures shared by test files in several folders (helpers that are not fixtures: ``tests/helpers.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path`` as the data and runs folders (``SBIR_DATA_DIR``, ``SBIR_RUNS_DIR``), offline hubs."""
    monkeypatch.setenv("SBIR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SBIR_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path
