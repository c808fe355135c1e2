"""Error analysis (notebook 05) on a tiny trained smoke run: partial sketches, attribute confusions,
attention maps, drawer splits."""

import dataclasses

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sbir_utils import analysis, engine, study  # noqa: E402
from sbir_utils.config import load_profile  # noqa: E402
from sbir_utils.data.images import load_image  # noqa: E402
from sbir_utils.data.loading import ImageDataset  # noqa: E402
from sbir_utils.data.procedural import load_attributes  # noqa: E402
from sbir_utils.data.transforms import normalize_batch  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One AAFG SA+CA run, 1 epoch, 64 px inputs (a 2x2 feature map, so attention has positions)."""
    tmp = tmp_path_factory.mktemp("analysis")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SBIR_DATA_DIR", str(tmp / "data"))
        mp.setenv("SBIR_RUNS_DIR", str(tmp / "runs"))
        torch.set_num_threads(1)
        profile = load_profile("smoke")
        profile = dataclasses.replace(profile, aafg=dataclasses.replace(profile.aafg, image_size=64, epochs=1))
        run = analysis.analysis_runs(profile)["fine"]
        study.train(profile, run)
        yield profile, run, analysis.load_results(profile, run)


def test_plan_picks_the_full_model_first_seed():
    runs = analysis.analysis_runs(load_profile("cpu"))
    assert runs["fine"].name == "aafg-fine-SA+CA" and runs["fine"].seed == 42
    assert set(runs) == {"fine", "category", "scene-normal", "scene-unseen-user"}
    assert "category" not in analysis.analysis_runs(load_profile("cpu"), dataset="shoes")


def test_query_table_matches_the_evaluation(trained):
    _, _, res = trained
    q = res.queries
    final = res.evaluation["stage2"] or res.evaluation["stage1"]
    assert len(q) == final["n_queries"] and q["sketch_file"].is_unique
    assert q["acc@1"].mean() == pytest.approx(final["acc@1"])
    gallery_label = dict(zip(res.details["gallery_files"], res.details["gallery_labels"]))
    assert (q["true_file"].map(gallery_label) == q["label"]).all()  # fine-grained: the paired photo
    assert ((q["top1_label"] == q["label"]) == (q["rank"] == 1)).all()
    assert {"category", "drawer", "drawer_unseen"} <= set(q.columns)


def test_partial_sketch_curve(trained):
    profile, _, res = trained
    bs = profile.evaluation.batch_size
    curve = analysis.partial_sketch_curve(res.checkpoint, res.spec, batch_size=bs, n_resamples=50)
    assert curve["fraction"].tolist() == list(analysis.FRACTIONS)
    for col in ("acc@1", "acc@10", "acc@1_low", "acc@1_high", "mrr"):
        assert curve[col].between(0, 1).all(), col
    assert (np.diff(curve["strokes"]) >= 0).all() and (curve["n_queries"] == len(res.queries)).all()
    full = engine.evaluate(res.checkpoint, res.spec.index_dir, "index_test.csv", batch_size=bs)["stage1"]
    last = curve.iloc[-1]
    assert last["source"] == "stored sketch" and last["acc@1"] == pytest.approx(full["acc@1"], abs=1e-12)
    assert last["mrr"] == pytest.approx(full["mrr"], abs=1e-12)


def test_partial_rasters_draw_like_the_generator(trained):
    """All strokes with the drawer's pen: close to the stored sketch (which has a per-stroke width jitter);
    a pen three times wider is much further away."""
    _, _, res = trained
    info = analysis._manifest(res.spec)
    size = info["params"]["generator"]["sketch_size"]
    row = res.queries.iloc[0]
    pts = np.load(analysis.stroke_file(row["sketch_file"]))
    stored = np.asarray(load_image(row["sketch_file"], "sketch"), dtype=float)
    width = info["drawers"][str(row["drawer"])]["line_width"]
    same, wide = (np.asarray(analysis.partial_rasters(pts, [1.0], w, size)[0], dtype=float) for w in (width, 3 * width))
    assert same.shape == stored.shape == (size, size)
    assert np.abs(same - stored).mean() < 0.5 * np.abs(wide - stored).mean()
    few = analysis.partial_rasters(pts, [0.1, 0.5], width, size)
    assert (np.asarray(few[0]) < 128).sum() <= (np.asarray(few[1]) < 128).sum() <= (same < 128).sum()


def test_attribute_confusion_one_row_per_attribute_and_brute_force(trained):
    _, _, res = trained
    attrs = load_attributes(res.spec.index_dir.parent)
    table = analysis.attribute_confusion(res, attrs)
    assert table["attribute"].tolist() == [c.removeprefix("attr_") for c in attrs.columns if c.startswith("attr_")]
    # Force every query's top-1 onto another photo of its category, then check "color" by brute force.
    by_id = attrs.set_index("photo_id")
    gallery = sorted(set(res.details["gallery_labels"]))
    other = {p: next(o for o in gallery if o != p and by_id.loc[o, "category"] == by_id.loc[p, "category"])
             for p in gallery}
    forced = dataclasses.replace(res, queries=res.queries.assign(top1_label=res.queries["label"].map(other)))
    table = analysis.attribute_confusion(forced, attrs).set_index("attribute")
    q = forced.queries
    assert len(analysis.confusions(forced, attrs)) == len(q)
    obs = np.mean([by_id.loc[a, "attr_color"] != by_id.loc[b, "attr_color"] for a, b in zip(q["label"], q["top1_label"])])
    pair_rate = {}
    for cat in by_id.loc[gallery, "category"].unique():
        ids = [g for g in gallery if by_id.loc[g, "category"] == cat]
        pairs = [(a, b) for i, a in enumerate(ids) for b in ids[i + 1:]]
        pair_rate[cat] = np.mean([by_id.loc[a, "attr_color"] != by_id.loc[b, "attr_color"] for a, b in pairs])
    exp = np.mean([pair_rate[by_id.loc[p, "category"]] for p in q["label"]])
    row = table.loc["color"]
    assert row["n_errors"] == len(q) and row["observed"] == pytest.approx(obs) and row["expected"] == pytest.approx(exp)
    if exp > 0:
        assert row["lift"] == pytest.approx(obs / exp) and row["lift_low"] <= row["lift"] <= row["lift_high"]
    assert (table["n_errors"] > 0).sum() > 0
    plt.close(analysis.plot_attribute_confusion(table.reset_index()))


def test_attention_map_shape_matches_the_feature_map(trained):
    _, _, res = trained
    model, cfg, _ = engine.load_model(res.checkpoint)
    files = res.queries["sketch_file"].tolist()[:3]
    x = normalize_batch(torch.stack([ImageDataset(files, "sketch", cfg.image_size)[i] for i in range(3)]))
    photos = normalize_batch(torch.stack([ImageDataset(res.queries["true_file"].tolist()[:3], "photo",
                                                       cfg.image_size)[i] for i in range(3)]))
    with torch.no_grad():
        fmap = model.maps(x)
    m = analysis.attention_map(model, x)
    assert m.shape == (3, *fmap.shape[2:]) and fmap.shape[2] * fmap.shape[3] > 1
    assert torch.allclose(m.sum(dim=(1, 2)), torch.ones(3), atol=1e-5) and (m >= 0).all()
    cross = analysis.attention_map(model, x, photos)
    assert cross.shape == m.shape and torch.allclose(cross.sum(dim=(1, 2)), torch.ones(3), atol=1e-5)
    assert not model.self_attn._forward_hooks and not model.cross_attn._forward_hooks  # hooks removed
    model.self_attn = None
    with pytest.raises(ValueError, match="no self-attention"):
        analysis.attention_map(model, x)


def test_drawer_split_and_group_counts_add_up(trained):
    _, _, res = trained
    split = analysis.drawer_split(res, n_resamples=50)
    for _, t in split.groupby("metric"):
        assert t["n"].sum() == len(res.queries)
    unseen = res.queries["drawer"].astype(int).isin(res.spec.info["unseen_drawers"]).sum()
    assert split.set_index(["group", "metric"]).loc[("unseen drawers", "acc@1"), "n"] == unseen > 0
    per_cat = analysis.per_group(res, "category", n_resamples=50)
    assert per_cat[per_cat.metric == "mrr"]["n"].sum() == len(res.queries)
    assert ((per_cat["ci_low"] <= per_cat["value"]) & (per_cat["value"] <= per_cat["ci_high"])).all()
    with pytest.raises(ValueError, match="no column 'nope'"):
        analysis.per_group(res, "nope")


def test_figures_render(trained):
    _, _, res = trained
    proj = analysis.embedding_projection(res.checkpoint, res.spec, method="pca")
    assert len(proj) == len(res.queries) + res.n_gallery and set(proj["modality"]) == {"sketch", "photo"}
    pairs = list(zip(res.queries["sketch_file"][:2], res.queries["true_file"][:2]))
    figs = [analysis.plot_worst_queries(res, n=3), analysis.plot_rank_histograms({"fine": {"AAFG": res}}),
            analysis.plot_metric_tables({"drawers": analysis.drawer_split(res, n_resamples=20)}),
            analysis.plot_projection({"fine": proj}), analysis.plot_attention(res.checkpoint, pairs)]
    assert all(isinstance(f, plt.Figure) for f in figs)
    for f in figs:
        plt.close(f)
    assert isinstance(analysis.worst_queries(res, 3), pd.DataFrame)
