"""End to end: `make reproduce PROFILE=smoke` into a temporary folder, its results pinned by a golden file, and
`make help`. (`pipeline` itself, e.g. a failing notebook leaving the previous reports in place: test_pipeline.py.)"""

import difflib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sbir_utils import paths, pipeline

pytestmark = pytest.mark.slow

# The smoke profile's headline table, byte for byte. A change that moves any result fails here; a deliberate
# one regenerates the file in the same commit (SBIR_UPDATE_GOLDEN=1 make test, or copy the reproduce's
# reports/results.csv) and says in the commit message why the results moved. Pinned on CPU: training on a
# GPU gives other numbers, so the test hides the GPUs from the run.
GOLDEN_RESULTS = Path(__file__).parent / "golden" / "smoke_results.csv"


def check_golden(produced: Path, golden: Path = GOLDEN_RESULTS) -> None:
    """Fail with a diff unless ``produced`` equals ``golden`` byte for byte (or rewrite it when asked)."""
    if os.environ.get("SBIR_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(produced.read_bytes())
        return
    assert golden.exists(), f"{golden} is missing: run SBIR_UPDATE_GOLDEN=1 make test once and commit it"
    if produced.read_bytes() != golden.read_bytes():
        diff = "".join(difflib.unified_diff(golden.read_text().splitlines(True), produced.read_text().splitlines(True),
                                            str(golden), str(produced)))
        pytest.fail(f"smoke results moved (regenerate {golden.name} in the same commit if deliberate):\n{diff}")


def test_golden_check_fails_on_a_moved_number(tmp_path, monkeypatch):
    monkeypatch.delenv("SBIR_UPDATE_GOLDEN", raising=False)
    golden, produced = tmp_path / "golden.csv", tmp_path / "results.csv"
    golden.write_text("model,acc@1\nx,0.250\n")
    produced.write_text("model,acc@1\nx,0.250\n")
    check_golden(produced, golden)
    produced.write_text("model,acc@1\nx,0.251\n")
    with pytest.raises(pytest.fail.Exception, match=r"-x,0.250"):
        check_golden(produced, golden)


def test_make_reproduce_smoke_writes_the_report_site(tmp_path):
    reports = tmp_path / "reports"
    # a runs folder of its own: every run is trained here, as on a fresh clone (make test's build/test/runs
    # keeps the runs of earlier test sessions, which the study would reuse)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CUDA_VISIBLE_DEVICES": "", "SBIR_RUNS_DIR": str(tmp_path / "runs")}
    proc = subprocess.run(
        ["make", "-s", "reproduce", "PROFILE=smoke", f"REPORTS_DIR={reports}", f"PYTHON={sys.executable}"],
        cwd=paths.PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    check_golden(reports / "results.csv")
    index = (reports / "index.html").read_text()
    for nb in pipeline.notebooks():
        html_file = reports / f"{nb.stem}.html"
        assert html_file.exists(), html_file
        assert f'href="{nb.stem}.html"' in index
    audit_html = (reports / "01_data_audit.html").read_text()
    assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', audit_html)) >= 3, "figures missing"
    assert "PASS" in audit_html  # the split-integrity verdict of the generated set
    assert "cdnjs" not in audit_html  # opens offline
    assert len(list((reports / "figures").glob("01_*.png"))) >= 3
    meta = json.loads((reports / "run_metadata.json").read_text())
    assert meta["profile"] == "smoke" and set(meta["notebook_seconds"]) == {nb.stem for nb in pipeline.notebooks()}
    assert meta["runs_trained"] >= 3  # a fresh runs folder: the study's runs were trained, not reused
    assert json.loads((reports / "config.json").read_text())["name"] == "smoke"
    assert not (reports / ".staging").exists()
    # A second run with nothing changed is skipped by make.
    again = subprocess.run(["make", "-s", "reproduce", "PROFILE=smoke", f"REPORTS_DIR={reports}"],
                           cwd=paths.PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "[reproduce]" not in again.stdout


def test_make_help_lists_every_target():
    out = subprocess.run(["make", "-s", "help"], cwd=paths.PROJECT_ROOT, capture_output=True, text=True).stdout
    for target in ("reproduce", "test", "lab", "venv", "data", "clean"):
        assert re.search(rf"^\s+\S*{target}\S*\s", out, re.M), target
    assert Path(paths.PROJECT_ROOT / "Makefile").exists()
