"""sbir_utils.evaluation.tables on a hand-made long results table: headline, CI table, stage comparison."""

import numpy as np
import pandas as pd

from sbir_utils import evaluation


def _results():
    rows = []
    for stage, acc, mrr in (("stage1", 0.5, 0.6), ("stage2", 0.75, 0.8)):
        for metric, v in (("acc@1", acc), ("mrr", mrr)):
            rows.append({"run": "aafg-fine-SA+CA", "family": "aafg", "group": "ablation", "data": "fine",
                         "seed": 42, "stage": stage, "protocol": "fine", "split": "test", "metric": metric,
                         "value": v, "ci_low": v - 0.1, "ci_high": v + 0.1, "n_queries": 4, "n_gallery": 3,
                         "epoch": 1, "notes": "top-10 re-ranked; 1/4 queries changed rank" if stage == "stage2" else ""})
    rows.append({**rows[0], "run": "random", "family": "baseline", "group": "baseline", "seed": np.nan,
                 "stage": evaluation.BASELINE_STAGE, "value": 0.25, "ci_low": 0.0, "ci_high": 0.5, "notes": "seed 0"})
    return pd.DataFrame(rows, columns=evaluation.RESULT_COLUMNS)


def test_headline_and_ci_tables():
    table = evaluation.headline_table(_results())
    assert table["model"].tolist() == ["aafg-fine-SA+CA", "aafg-fine-SA+CA", "random"]  # baselines last
    assert table["stage"].tolist() == ["1", "2 (re-ranked)", "-"]
    assert table["acc@1 / R@1"].tolist() == ["0.500 [0.400, 0.600]", "0.750 [0.650, 0.850]", "0.250 [0.000, 0.500]"]
    assert table["acc@5 / R@5"].iloc[0] == "not computed" and "mAP@all" not in table.columns
    ci = evaluation.ci_table(_results())
    assert list(ci.columns) == ["run", "seed", "data", "stage", "acc@1", "mrr"] and ci["seed"].tolist() == [42, 42, ""]


def test_stage_comparison_and_results_csv(tmp_path, monkeypatch):
    cmp = evaluation.stage_comparison(_results())
    assert cmp.loc[0, "acc@1 change"] == "+0.250" and cmp.loc[0, "mrr change"] == "+0.200"
    assert cmp.loc[0, "stage 2"] == "top-10 re-ranked; 1/4 queries changed rank"
    monkeypatch.setenv("SBIR_REPORTS_DIR", str(tmp_path))
    files = evaluation.write_results_csv(_results())
    assert files == {"results": tmp_path / "results.csv", "results_long": tmp_path / "results_long.csv"}
    assert pd.read_csv(files["results_long"]).shape == (5, len(evaluation.RESULT_COLUMNS))
    assert b"\r\n" not in files["results"].read_bytes()
