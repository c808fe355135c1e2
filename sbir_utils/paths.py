"""Project-relative paths. Never the working directory: notebooks run from papermill and nbval
in different directories, so every path is computed from the package location.

Environment overrides (used by tests and ``make reproduce REPORTS_DIR=...``):
``SBIR_DATA_DIR``, ``SBIR_RUNS_DIR``, ``SBIR_REPORTS_DIR``, ``SBIR_IMAGE_CACHE_DIR`` (``off`` disables it).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
CONFIGS_DIR = PROJECT_ROOT / "configs"
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
RESOURCES_DIR = PACKAGE_DIR / "resources"
SHARED_DATA_DIR = PROJECT_ROOT.parent / "shared" / "data"


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def data_dir() -> Path:
    """Where generated and imported data sets live (``data/`` unless ``SBIR_DATA_DIR`` is set)."""
    return _env_path("SBIR_DATA_DIR", PROJECT_ROOT / "data")


def runs_dir() -> Path:
    """Where training runs (logs, checkpoints) live (``runs/`` unless ``SBIR_RUNS_DIR`` is set)."""
    return _env_path("SBIR_RUNS_DIR", PROJECT_ROOT / "runs")


def image_cache_dir() -> Path | None:
    """Where decoded, preprocessed images are kept (``data/.image_cache`` unless ``SBIR_IMAGE_CACHE_DIR``
    is set; ``SBIR_IMAGE_CACHE_DIR=off`` turns the store off). See ``data.image_store``."""
    value = os.environ.get("SBIR_IMAGE_CACHE_DIR", "")
    if value.strip().lower() in ("off", "none", "0"):
        return None
    return _env_path("SBIR_IMAGE_CACHE_DIR", data_dir() / ".image_cache")


def reports_dir() -> Path:
    """Where HTML reports and figures go (``reports/`` unless ``SBIR_REPORTS_DIR`` is set)."""
    return _env_path("SBIR_REPORTS_DIR", PROJECT_ROOT / "reports")


def figures_dir() -> Path:
    return reports_dir() / "figures"


def embedded_dir(profile: str) -> Path:
    """Root of the embedded (procedural) data set generated for ``profile``."""
    return data_dir() / "embedded" / profile


def shared_data(name: str) -> Path | None:
    """A folder of the development data beside the checkout (``../shared/data/NAME``), or None."""
    path = SHARED_DATA_DIR / name
    return path if path.exists() else None
