"""sbir_utils.evaluation.baseline_runs: the baselines' cache (written once, then read), keyed by the CSVs."""

import pandas as pd

from sbir_utils import evaluation, study
from sbir_utils.config import load_profile
from sbir_utils.evaluation import baseline_runs


class _Spec:
    def __init__(self, root):
        self.root = root

    def csv(self, split):
        return self.root / f"index_{split}.csv"


def test_evaluate_baselines_caches_and_reuses(tmp_path, monkeypatch):
    monkeypatch.setenv("SBIR_RUNS_DIR", str(tmp_path / "runs"))
    for split in ("train", "test"):
        (tmp_path / f"index_{split}.csv").write_text(f"{split}\n", encoding="utf-8")
    spec = _Spec(tmp_path)
    monkeypatch.setattr(study, "dataset_spec", lambda *a, **k: spec)
    test = pd.DataFrame({"sketch_file": ["a", "a", "b"], "image_file": ["p", "p", "q"], "label": ["1", "1", "2"]})
    monkeypatch.setattr(baseline_runs, "read_splits", lambda s, splits: {"train": test, "test": test})
    calls = []

    def fake(train, test_df, seed=0):  # the patch of evaluation.baseline_per_query reaches the caller
        calls.append(len(test_df))
        return ({"random": pd.DataFrame({"rank": [1, 2]}), "HOG size=64": pd.DataFrame({"rank": [2, 1]})},
                {"size": 64}, len(test_df), 2)

    monkeypatch.setattr(evaluation, "baseline_per_query", fake)
    profile = load_profile("smoke")
    run = study.Run("aafg-x", "aafg", "fine", 1)
    first = evaluation.evaluate_baselines(profile, run)
    assert calls == [2] and not first["cached"]  # test sketches once each
    folder = tmp_path / "runs" / "smoke" / "embedded" / "baselines" / "fine"
    assert sorted(p.name for p in folder.iterdir()) == ["0.csv", "1.csv", "baselines.json"]
    again = evaluation.evaluate_baselines(profile, run)
    assert again["cached"] and calls == [2] and list(again["per_query"]) == ["random", "HOG size=64"]
    assert again["hog_settings"] == {"size": 64} and again["per_query"]["HOG size=64"]["rank"].tolist() == [2, 1]
    (tmp_path / "index_test.csv").write_text("changed\n", encoding="utf-8")
    assert not evaluation.evaluate_baselines(profile, run)["cached"] and calls == [2, 2]
