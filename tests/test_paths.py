"""`paths`: every folder from the package's location, never the working directory; the environment overrides
(relative or with ~, made absolute), the image store switched off, the development data beside the checkout."""

from pathlib import Path

import pytest

from sbir_utils import paths

OVERRIDES = ("SBIR_DATA_DIR", "SBIR_RUNS_DIR", "SBIR_REPORTS_DIR", "SBIR_IMAGE_CACHE_DIR")


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in OVERRIDES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # the working directory must not matter
    return monkeypatch


def test_defaults_are_inside_the_project(clean_env):
    root = Path(paths.__file__).resolve().parents[1]
    assert paths.PROJECT_ROOT == root and paths.CONFIGS_DIR == root / "configs"
    assert paths.data_dir() == root / "data" and paths.runs_dir() == root / "runs"
    assert paths.reports_dir() == root / "reports" and paths.figures_dir() == root / "reports" / "figures"
    assert paths.image_cache_dir() == root / "data" / ".image_cache"
    assert paths.embedded_dir("smoke") == root / "data" / "embedded" / "smoke"


def test_overrides_are_made_absolute(clean_env, tmp_path):
    clean_env.setenv("SBIR_DATA_DIR", "rel/data")
    clean_env.setenv("SBIR_RUNS_DIR", "~/runs")
    clean_env.setenv("SBIR_REPORTS_DIR", str(tmp_path / "out"))
    assert paths.data_dir() == tmp_path / "rel" / "data"
    assert paths.runs_dir() == Path.home() / "runs"
    assert paths.figures_dir() == tmp_path / "out" / "figures"
    assert paths.embedded_dir("cpu") == tmp_path / "rel" / "data" / "embedded" / "cpu"
    assert paths.image_cache_dir() == tmp_path / "rel" / "data" / ".image_cache"  # follows the data folder
    clean_env.setenv("SBIR_IMAGE_CACHE_DIR", str(tmp_path / "store"))
    assert paths.image_cache_dir() == tmp_path / "store"
    for off in ("off", "OFF", "none", "0"):
        clean_env.setenv("SBIR_IMAGE_CACHE_DIR", off)
        assert paths.image_cache_dir() is None


def test_shared_data_only_when_present(clean_env, tmp_path):
    (tmp_path / "shoes").mkdir()
    clean_env.setattr(paths, "SHARED_DATA_DIR", tmp_path)
    assert paths.shared_data("shoes") == tmp_path / "shoes" and paths.shared_data("chairs") is None
