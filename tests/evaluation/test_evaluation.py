"""Test-split evaluation (notebook 04): results table, CIs, the per-checkpoint cache, results.csv, the published
numbers, galleries and leakage guards, on one tiny AAFG run (SA+CA, one smoke epoch) trained once per module."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from sbir_utils import engine, evaluation, paths, study  # noqa: E402
from sbir_utils.config import load_profile  # noqa: E402
from sbir_utils.data.index import read_index  # noqa: E402

N_RESAMPLES = 200


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Smoke profile in a temporary data/runs/reports folder with aafg-fine-SA+CA (seed 42) trained."""
    root = tmp_path_factory.mktemp("evaluation")
    with pytest.MonkeyPatch.context() as mp:
        for var, sub in (("SBIR_DATA_DIR", "data"), ("SBIR_RUNS_DIR", "runs"), ("SBIR_REPORTS_DIR", "reports")):
            mp.setenv(var, str(root / sub))
        profile = load_profile("smoke")
        run = next(r for r in study.aafg_runs(profile) if r.name == "aafg-fine-SA+CA" and r.group == "ablation")
        study.train(profile, run)
        results = evaluation.results_table(profile, [run], n_resamples=N_RESAMPLES)
        yield profile, run, results


def _test_split(profile, run):
    spec = study.dataset_spec(profile, run)
    return read_index(spec.csv("test"), spec)


def test_results_table_is_long_with_cis_and_baselines(trained):
    profile, run, results = trained
    assert list(results.columns) == evaluation.RESULT_COLUMNS
    assert not results.duplicated(["run", "data", "seed", "stage", "metric"]).any()
    model = results[results["family"] == "aafg"]
    assert set(model["stage"]) == {"stage1", "stage2"} and set(model["seed"]) == {run.seed}
    assert {"acc@1", "acc@5", "acc@10", "mrr", "mAP@all", "mAP@200"} <= set(model["metric"])
    assert not {"P@100", "P@200"} & set(results["metric"])  # gallery of 8 photos: undefined, left out
    base = results[results["family"] == "baseline"]
    assert set(base["run"]) == {"random", "HOG"} and set(base["stage"]) == {"-"}
    assert base.loc[base["run"] == "HOG", "notes"].iloc[0].startswith("tuned on train: size=")
    assert (results["split"] == "test").all() and (results["protocol"] == "fine").all()
    assert ((results["ci_low"] <= results["value"] + 1e-12) & (results["value"] <= results["ci_high"] + 1e-12)).all()
    assert results["value"].between(0, 1).all()
    test = _test_split(profile, run)
    assert (results["n_queries"] == test["sketch_file"].nunique()).all()
    assert (results["n_gallery"] == test["image_file"].nunique()).all()


def test_per_query_rows_agree_with_the_engine_metrics(trained):
    profile, run, _ = trained
    res = evaluation.evaluate_run(profile, run, n_resamples=0)
    assert res["final_stage"] == "stage2" and res["stage2"] is not None
    for stage in ("stage1", "stage2"):
        pq = res["per_query"][stage]
        assert len(pq) == res["n_queries"] and res["top"][stage].shape == (res["n_queries"], res["n_gallery"])
        assert pq["acc@1"].mean() == pytest.approx(res[stage]["acc@1"])
        assert pq["rr"].mean() == pytest.approx(res[stage]["mrr"])
        # the rank column is the position of the true photo in the stored top list (single relevant photo)
        correct = res["relevant"].argmax(axis=1)
        pos = np.array([list(t).index(c) + 1 for t, c in zip(res["top"][stage], correct)])
        assert (pos == pq["rank"].to_numpy()).all()


def test_second_evaluation_reads_the_cache(trained, monkeypatch):
    profile, run, _ = trained
    first = evaluation.evaluate_run(profile, run, n_resamples=N_RESAMPLES)

    def fail(*args, **kwargs):
        raise AssertionError("engine.evaluate called although the cache is valid")

    monkeypatch.setattr(engine, "evaluate", fail)
    again = evaluation.evaluate_run(profile, run, n_resamples=N_RESAMPLES)
    assert again["cached"]
    pd.testing.assert_frame_equal(first["summary"], again["summary"])
    assert again["gallery_files"] == first["gallery_files"]
    # a changed test index invalidates the cache: now the (failing) engine is called
    csv = study.dataset_spec(profile, run).csv("test")
    original = csv.read_bytes()
    try:
        csv.write_bytes(original + b"\n")
        with pytest.raises(AssertionError, match="engine.evaluate called"):
            evaluation.evaluate_run(profile, run, n_resamples=0)
    finally:
        csv.write_bytes(original)
    assert evaluation.evaluate_run(profile, run, n_resamples=0)["cached"]


def test_results_csv_written(trained):
    _, _, results = trained
    files = evaluation.write_results_csv(results)
    assert files["results"] == paths.reports_dir() / "results.csv"
    headline = pd.read_csv(files["results"], dtype=str, keep_default_na=False)
    assert list(headline["model"]) == ["aafg-fine-SA+CA", "aafg-fine-SA+CA", "random", "HOG"]
    assert {"acc@1 / R@1", "acc@5 / R@5", "acc@10 / R@10", "MRR"} <= set(headline.columns)
    assert headline["acc@1 / R@1"].str.fullmatch(r"\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]").all()
    assert (headline.loc[headline["model"] == "HOG", "seeds"] == "–").all()
    assert len(pd.read_csv(files["results_long"])) == len(results)


def test_headline_mean_std_over_seeds_and_ci_for_one():
    rows = [{"run": "m", "family": "aafg", "group": "seeds", "data": "fine", "seed": s, "stage": "stage1",
             "protocol": "fine", "split": "test", "metric": "acc@1", "value": v, "ci_low": v - 0.1,
             "ci_high": v + 0.1, "n_queries": 10, "n_gallery": 5, "epoch": 1, "notes": ""}
            for s, v in ((1, 0.2), (2, 0.4), (3, 0.6))]
    rows.append({**rows[0], "run": "c", "seed": 1, "protocol": "category", "data": "category",
                 "metric": "mAP@all", "value": 0.5, "ci_low": 0.4, "ci_high": 0.7})
    results = pd.DataFrame(rows)
    table = evaluation.headline_table(results).set_index("model")
    assert table.loc["m", "acc@1 / R@1"] == "0.400 ± 0.200 (3 seeds)" and table.loc["m", "seeds"] == 3
    assert table.loc["c", "mAP@all"] == "0.500 [0.400, 0.700]"
    assert table.loc["c", "P@100"] == "n/a: gallery < 100" and table.loc["c", "acc@1 / R@1"] == "–"
    fine = evaluation.headline_table(results, "fine")
    assert list(fine["model"]) == ["m"] and "acc@1" in fine.columns and "mAP@all" not in fine.columns


def test_published_table_holds_the_reference_numbers():
    pub = evaluation.published_table()
    assert list(pub.columns) == evaluation.PUBLISHED_COLUMNS

    def value(method, dataset, split, metric):
        hit = pub[(pub.method == method) & (pub.dataset == dataset) & (pub.split == split) & (pub.metric == metric)]
        assert len(hit) == 1, (method, dataset, split, metric)
        return hit["value"].iloc[0]

    assert value("ConvNeXt-S + InfoNCE", "FS-COCO", "normal", "R@1") == 51.5
    assert value("ConvNeXt-S + InfoNCE", "FS-COCO", "normal", "R@5") == 74.8
    assert value("Triplet-SN", "QMUL-Shoe-V2", "test", "acc@1") == 28.71
    assert value("Sain et al.", "QMUL-Chair-V2", "test", "acc@10") == 92.18
    assert value("Siam-VGG16", "FS-COCO", "unseen-user (whole users held out)", "R@1") == 10.6
    assert value("SAKE", "Sketchy", "zero-shot, 25 unseen classes", "mAP@all") == 0.547
    assert value("CLIP-for-all", "TU-Berlin", "zero-shot (unseen classes)", "P@100") == 0.732
    assert set(pub["unit"]) == {"percent", "fraction"}


def test_fine_gallery_unique_and_leakage_guards(trained, monkeypatch):
    profile, run, _ = trained
    res = evaluation.evaluate_run(profile, run, n_resamples=0)
    test = _test_split(profile, run)
    assert len(res["gallery_files"]) == len(set(res["gallery_files"])) == test["image_file"].nunique()
    assert set(res["gallery_files"]) == set(test["image_file"])
    assert len(test) > test["image_file"].nunique()  # several sketches per photo, yet each photo once
    checks = evaluation.leakage_checks(profile, [run])
    assert checks["ok"].all() and len(checks) == 3
    # the guard can fail: a gallery listing a photo twice is reported
    real = evaluation.evaluate_run
    monkeypatch.setattr(evaluation, "evaluate_run", lambda *a, **k: {
        **real(*a, **k), "gallery_files": real(*a, **k)["gallery_files"] * 2})
    bad = evaluation.leakage_checks(profile, [run]).set_index("check")
    assert not bad.filter(like="gallery", axis=0)["ok"].any()


def test_gallery_page_uses_stage_two(trained):
    profile, run, _ = trained
    pages = evaluation.write_galleries(profile, [run])
    page = paths.reports_dir() / "galleries" / run.name / "result.html"
    assert pages == [page] and page.is_file()
    text = page.read_text()
    assert "stage 2" in text and text.count('class="row"') == min(profile.evaluation.gallery_rows, 24)
    assert 'href="galleries/aafg-fine-SA%2BCA/result.html"' in evaluation.gallery_links_html(pages)
    assert (paths.reports_dir() / "galleries" / "index.html").is_file()


def test_missing_checkpoint_names_the_notebook(trained):
    profile, _, _ = trained
    untrained = next(r for r in study.aafg_runs(profile) if r.name == "aafg-fine-baseline")
    with pytest.raises(evaluation.MissingRunError, match="run notebook 02"):
        evaluation.evaluate_run(profile, untrained)
    with pytest.raises(evaluation.MissingRunError, match="aafg-fine-baseline seed 42"):
        evaluation.results_table(profile, [untrained])


def test_ablation_figure_and_stage_table(trained):
    profile, run, results = trained
    fig = evaluation.plot_test_results(results)
    assert len(fig.axes) == 1 and len(fig.axes[0].patches) == 2  # stage 1 and stage 2 bars of one run
    table = evaluation.stage_comparison(results)
    assert list(table["run"]) == [run.name] and table["acc@1 change"].iloc[0] != "—"
    scales = evaluation.attention_scales(profile, [run])
    assert {"self_attn gamma", "cross_attn gamma"} <= set(scales.columns)
