"""sbir_utils.evaluation.common: checkpoint paths, the missing-run report, first seeds, strict-JSON values."""

import math

import numpy as np

from sbir_utils import evaluation, study
from sbir_utils.config import load_profile
from sbir_utils.evaluation import common


def test_missing_runs_names_the_training_notebook(tmp_path, monkeypatch):
    monkeypatch.setenv("SBIR_RUNS_DIR", str(tmp_path))
    profile = load_profile("smoke")
    aafg = study.Run("aafg-x", "aafg", "fine", 1)
    conv = study.Run("convnext-y", "convnext", "scene-normal", 2)
    ckpt = evaluation.checkpoint_path(profile, aafg)
    assert ckpt == tmp_path / "smoke" / "embedded" / "aafg-x" / "seed1" / "checkpoints" / "best.pt"
    lines = evaluation.missing_runs(profile, [aafg, conv])
    assert len(lines) == 2 and "run notebook 02 (AAFG)" in lines[0] and "notebook 03" in lines[1]
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"x")
    assert evaluation.missing_runs("smoke", [aafg]) == []


def test_first_seed_runs_and_json_safe():
    runs = [study.Run("a", "aafg", "fine", 1), study.Run("b", "aafg", "fine", 1), study.Run("a", "aafg", "fine", 2)]
    assert [(r.name, r.seed) for r in evaluation.first_seed_runs(runs)] == [("a", 1), ("b", 1)]
    safe = common._json_safe({"x": float("nan"), 1: [np.float64(0.5), (np.int64(2),)]})
    assert safe == {"x": None, "1": [0.5, [2]]} and type(safe["1"][0]) is float
    back = common._nan_back({"a": None, "b": 1.0})
    assert math.isnan(back["a"]) and back["b"] == 1.0 and common._nan_back(None) is None
