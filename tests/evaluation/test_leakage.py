"""sbir_utils.evaluation.leakage: the guards pass on clean splits and name a shared photo and a bad gallery."""

import pandas as pd

from sbir_utils import evaluation, study
from sbir_utils.config import load_profile
from sbir_utils.evaluation import leakage


def _frames(val_photo):
    def df(s, p):
        return pd.DataFrame({"sketch_file": s, "image_file": p, "label": p, "path_sketch": s, "path_image": p})
    return {"train": df(["s1"], ["p1"]), "val": df(["s2"], [val_photo]), "test": df(["s3", "s4"], ["p3", "p3"])}


def test_leakage_checks(monkeypatch):
    monkeypatch.setattr(study, "dataset_spec", lambda *a, **k: None)
    gallery = {"files": ["p3"]}
    monkeypatch.setattr(evaluation, "evaluate_run", lambda *a, **k: {
        "gallery_files": gallery["files"], "query_files": ["s3", "s4"]})
    profile, run = load_profile("smoke"), study.Run("aafg-x", "aafg", "fine", 1)
    monkeypatch.setattr(leakage, "read_splits", lambda spec: _frames("p2"))
    clean = evaluation.leakage_checks(profile, [run])
    assert list(clean.columns) == ["data", "check", "count", "ok", "detail"] and clean["ok"].all()
    assert clean["check"].tolist()[1:] == ["gallery = the 1 test photos, each once",
                                           "queries = the 2 test sketches, each once"]
    monkeypatch.setattr(leakage, "read_splits", lambda spec: _frames("p3"))
    gallery["files"] = ["p3", "p3"]
    bad = evaluation.leakage_checks(profile, [run])
    assert bad["ok"].tolist() == [False, False, True] and bad["detail"].iloc[1] == "failed: aafg-x"
    assert "p3" in bad["detail"].iloc[0]
