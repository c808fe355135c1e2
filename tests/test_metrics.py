"""The pinned metrics against independent implementations (scikit-learn, brute-force loops) and
hand-worked examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import average_precision_score

from sbir_utils.metrics import (
    BOOTSTRAP_BACKEND,
    bootstrap_ci,
    evaluate_embeddings,
    per_query_from_embeddings,
    per_query_metrics,
    rank_of_first_relevant,
    summarise,
    unique_gallery,
)


def _random_case(seed: int, q: int = 30, g: int = 60, levels: int | None = 4, p_rel: float = 0.2):
    """Scores quantised to ``levels`` values (many ties) and a random relevance matrix, each query with
    at least one relevant item."""
    rng = np.random.default_rng(seed)
    sim = rng.random((q, g))
    if levels:
        sim = np.floor(sim * levels) / levels
    relevant = rng.random((q, g)) < p_rel
    relevant[np.arange(q), rng.integers(0, g, q)] = True
    return sim, relevant


# ---------------------------------------------------------------- independent brute-force references


def _brute_rank(s: np.ndarray, r: np.ndarray) -> int:
    best = max(s[j] for j in range(len(s)) if r[j])
    return sum(1 for j in range(len(s)) if s[j] >= best)


def _brute_order(s: np.ndarray) -> list[int]:
    return sorted(range(len(s)), key=lambda j: (-s[j], j))


def _brute_ap_at_k(s: np.ndarray, r: np.ndarray, k: int, norm: str) -> float:
    order = _brute_order(s)[:k]
    hits, total = 0, 0.0
    for i, j in enumerate(order, start=1):
        if r[j]:
            hits += 1
            total += hits / i
    denom = min(k, int(r.sum())) if norm == "min" else hits
    return total / denom if denom else 0.0


def _brute_p_at_k(s: np.ndarray, r: np.ndarray, k: int) -> float:
    return sum(1 for j in _brute_order(s)[:k] if r[j]) / k


# ---------------------------------------------------------------- against sklearn and the loops


@pytest.mark.parametrize("seed,levels,p_rel", [(0, 3, 0.2), (1, 5, 0.05), (2, None, 0.3), (3, 2, 0.5)])
def test_ap_equals_sklearn_with_ties(seed, levels, p_rel):
    sim, relevant = _random_case(seed, levels=levels, p_rel=p_rel)
    df = per_query_metrics(sim, relevant, ks=(1, 5), map_k=20, p_ks=(10,))
    expected = [average_precision_score(relevant[i], sim[i]) for i in range(len(sim))]
    np.testing.assert_allclose(df["ap"].to_numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed,levels", [(10, 3), (11, 6), (12, None)])
@pytest.mark.parametrize("norm", ["min", "retrieved"])
def test_against_brute_force_loops(seed, levels, norm):
    sim, relevant = _random_case(seed, q=25, g=40, levels=levels)
    df = per_query_metrics(sim, relevant, ks=(1, 3, 10), map_k=7, p_ks=(5, 40), map_norm=norm)
    for i in range(len(sim)):
        rank = _brute_rank(sim[i], relevant[i])
        assert df.loc[i, "rank"] == rank
        assert df.loc[i, "rr"] == pytest.approx(1 / rank)
        for k in (1, 3, 10):
            assert df.loc[i, f"acc@{k}"] == float(rank <= k)
        assert df.loc[i, "ap@7"] == pytest.approx(_brute_ap_at_k(sim[i], relevant[i], 7, norm), abs=1e-12)
        for k in (5, 40):
            assert df.loc[i, f"p@{k}"] == pytest.approx(_brute_p_at_k(sim[i], relevant[i], k), abs=1e-12)
    np.testing.assert_array_equal(rank_of_first_relevant(sim, relevant), df["rank"].to_numpy())


def test_single_relevant_ap_is_reciprocal_rank():
    rng = np.random.default_rng(5)
    sim = rng.random((50, 80))  # continuous: no ties
    relevant = np.zeros_like(sim, dtype=bool)
    relevant[np.arange(50), rng.integers(0, 80, 50)] = True
    df = per_query_metrics(sim, relevant)
    np.testing.assert_allclose(df["ap"], 1.0 / df["rank"], atol=1e-12)
    # Also under ties: the tied group is one threshold, precision = 1 / (size of the ">=" set) = 1/rank.
    sim_t = np.floor(sim * 4) / 4
    df_t = per_query_metrics(sim_t, relevant)
    np.testing.assert_allclose(df_t["ap"], 1.0 / df_t["rank"], atol=1e-12)


# ---------------------------------------------------------------- hand-worked examples


def test_hand_worked_example():
    # Query 0: scores [0.9, 0.8, 0.8, 0.1], relevant = item 2 only.
    #   rank: items with score >= 0.8 are {0, 1, 2} -> rank 3 (the tie with item 1 counts against us).
    #   AP (sklearn): thresholds 0.9 (tp 0/1), 0.8 (tp 1/3) -> recall jumps 0 -> 1 at precision 1/3.
    #   AP@2 (order by (-score, index) = 0, 1, 2, 3): top 2 has no hit -> 0.
    #   P@2 = 0/2 = 0.
    # Query 1: scores [0.2, 0.7, 0.5, 0.7], relevant = items 0 and 2.
    #   rank: best relevant is item 2 (0.5); items >= 0.5: {1, 2, 3} -> rank 3.
    #   AP: thresholds 0.7 (tp 0 of 2), 0.5 (tp 1 of 3 -> recall 1/2, precision 1/3),
    #       0.2 (tp 2 of 4 -> recall 1, precision 1/2) -> AP = 1/2 * 1/3 + 1/2 * 1/2 = 5/12.
    #   order 1, 3, 2, 0 -> AP@2 = 0; P@2 = 0.
    #   AP@4 (min(4, 2) = 2): hits at positions 3 and 4 -> (1/3 + 2/4) / 2 = 5/12.
    sim = np.array([[0.9, 0.8, 0.8, 0.1], [0.2, 0.7, 0.5, 0.7]])
    relevant = np.array([[False, False, True, False], [True, False, True, False]])
    df = per_query_metrics(sim, relevant, ks=(1, 3), map_k=2, p_ks=(2,))
    assert df["rank"].tolist() == [3, 3]
    assert df["acc@1"].tolist() == [0.0, 0.0]
    assert df["acc@3"].tolist() == [1.0, 1.0]
    np.testing.assert_allclose(df["ap"], [1 / 3, 5 / 12])
    np.testing.assert_allclose(df["ap@2"], [0.0, 0.0])
    np.testing.assert_allclose(df["p@2"], [0.0, 0.0])
    df4 = per_query_metrics(sim, relevant, ks=(1,), map_k=4, p_ks=(4,))
    np.testing.assert_allclose(df4["ap@4"], [1 / 3, 5 / 12])
    # P@4: query 0 has 1 relevant in 4 -> 1/4; query 1 has 2 -> 2/4.
    np.testing.assert_allclose(df4["p@4"], [0.25, 0.5])


def test_map_at_k_variants_differ_as_documented():
    # 5 relevant items, only one retrieved in the top 3, at position 1:
    #   "min":       (1/1) / min(3, 5) = 1/3
    #   "retrieved": (1/1) / 1         = 1
    sim = np.array([[1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]])
    relevant = np.array([[True, False, False, True, True, True, True, False]])
    assert per_query_metrics(sim, relevant, map_k=3, p_ks=())["ap@3"][0] == pytest.approx(1 / 3)
    assert per_query_metrics(sim, relevant, map_k=3, p_ks=(), map_norm="retrieved")["ap@3"][0] == 1.0
    with pytest.raises(ValueError, match="map_norm"):
        per_query_metrics(sim, relevant, map_norm="voc")


def test_truncation_ties_break_by_gallery_index():
    # All scores tied: order is 0, 1, 2, 3. Relevant item 1 -> P@1 = 0, P@2 = 1/2; AP@2 = (1/2)/1.
    sim = np.zeros((1, 4))
    relevant = np.array([[False, True, False, False]])
    df = per_query_metrics(sim, relevant, ks=(1,), map_k=2, p_ks=(1, 2))
    assert df["p@1"][0] == 0.0 and df["p@2"][0] == 0.5 and df["ap@2"][0] == 0.5
    assert df["rank"][0] == 4  # but the rank counts all ties against the query


def test_p_at_k_larger_than_gallery_is_nan():
    sim, relevant = _random_case(0, q=4, g=10)
    df = per_query_metrics(sim, relevant, p_ks=(5, 100))
    assert df["p@100"].isna().all() and df["p@5"].notna().all()


# ---------------------------------------------------------------- errors


def test_query_without_relevant_item_is_an_error_naming_it():
    sim, relevant = _random_case(0, q=6, g=10)
    relevant[4] = False
    with pytest.raises(ValueError, match=r"query 4: no relevant item"):
        per_query_metrics(sim, relevant)
    with pytest.raises(ValueError, match=r"query 4: no relevant item"):
        rank_of_first_relevant(sim, relevant)


def test_bad_inputs():
    with pytest.raises(ValueError, match="boolean"):
        per_query_metrics(np.zeros((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="shape|\\(Q, G\\)"):
        per_query_metrics(np.zeros((2, 3)), np.ones((2, 4), dtype=bool))
    sim = np.zeros((2, 3))
    sim[1, 2] = np.nan
    with pytest.raises(ValueError, match="query 1: similarity contains NaN"):
        per_query_metrics(sim, np.ones((2, 3), dtype=bool))


# ---------------------------------------------------------------- embeddings entry point


def test_evaluate_embeddings_matches_per_query_metrics_and_chunks():
    rng = np.random.default_rng(3)
    q_emb, g_emb = rng.normal(size=(37, 8)), rng.normal(size=(23, 8)) * 5  # un-normalised on purpose
    g_lab = np.arange(23) % 6
    q_lab = rng.integers(0, 6, 37)
    qn = q_emb / np.linalg.norm(q_emb, axis=1, keepdims=True)
    gn = g_emb / np.linalg.norm(g_emb, axis=1, keepdims=True)
    ref = per_query_metrics(qn @ gn.T, q_lab[:, None] == g_lab[None, :], p_ks=(10, 20))
    out = evaluate_embeddings(
        torch.tensor(q_emb), torch.tensor(g_emb), torch.tensor(q_lab), g_lab, chunk_size=5, p_ks=(10, 20)
    )
    assert out["n_queries"] == 37 and out["n_gallery"] == 23
    assert out["acc@1"] == pytest.approx(ref["acc@1"].mean(), abs=1e-6)
    assert out["mrr"] == pytest.approx(ref["rr"].mean(), abs=1e-6)
    assert out["mAP@all"] == pytest.approx(ref["ap"].mean(), abs=1e-6)
    assert out["mAP@200"] == pytest.approx(ref["ap@200"].mean(), abs=1e-6)
    assert out["P@10"] == pytest.approx(ref["p@10"].mean(), abs=1e-6)
    default = evaluate_embeddings(q_emb, g_emb, q_lab, g_lab)
    assert set(default) == {
        "acc@1",
        "acc@5",
        "acc@10",
        "mrr",
        "mAP@all",
        "mAP@200",
        "P@100",
        "P@200",
        "n_queries",
        "n_gallery",
    }


def test_evaluate_embeddings_string_labels_and_error_index():
    q = np.eye(3, 4)
    g = np.eye(4)
    out = evaluate_embeddings(q, g, ["a", "b", "c"], ["a", "b", "c", "d"])
    assert out["acc@1"] == 1.0 and out["mrr"] == 1.0
    with pytest.raises(ValueError, match="query 2: no relevant item"):
        per_query_from_embeddings(q, g, ["a", "b", "zzz"], ["a", "b", "c", "d"], chunk_size=2)


# ---------------------------------------------------------------- bootstrap and summary


def test_bootstrap_ci_contains_mean_and_shrinks():
    rng = np.random.default_rng(0)
    small = (rng.random(50) < 0.3).astype(float)
    large = (rng.random(5000) < 0.3).astype(float)
    m_s, lo_s, hi_s = bootstrap_ci(small, n_resamples=500, seed=1)
    m_l, lo_l, hi_l = bootstrap_ci(large, n_resamples=500, seed=1)
    assert lo_s <= m_s <= hi_s and lo_l <= m_l <= hi_l
    assert lo_s < hi_s and (hi_l - lo_l) < (hi_s - lo_s) / 3
    assert bootstrap_ci(small, n_resamples=500, seed=1) == (m_s, lo_s, hi_s)  # deterministic by seed
    assert bootstrap_ci(np.ones(10)) == (1.0, 1.0, 1.0)
    assert all(np.isnan(bootstrap_ci(np.array([np.nan, np.nan]))))
    assert BOOTSTRAP_BACKEND in ("scipy", "numpy")


def test_summarise_names_and_intervals():
    sim, relevant = _random_case(7, q=40, g=30, levels=None)
    per_query = per_query_metrics(sim, relevant, p_ks=(10, 100))
    table = summarise(per_query, n_resamples=200)
    assert list(table.columns) == ["metric", "value", "ci_low", "ci_high", "n"]
    assert table["metric"].tolist() == [
        "mrr",
        "acc@1",
        "acc@5",
        "acc@10",
        "mAP@all",
        "mAP@200",
        "P@10",
        "P@100",
    ]
    row = table.set_index("metric").loc["mAP@all"]
    assert row["value"] == pytest.approx(per_query["ap"].mean())
    assert row["ci_low"] <= row["value"] <= row["ci_high"]
    assert table.set_index("metric").loc["P@100", "n"] == 0  # gallery of 30 < 100


# ---------------------------------------------------------------- unique gallery


def test_unique_gallery():
    paths = ["photos/b.jpg", "photos/a.jpg", "photos/b.jpg", "photos/c.jpg", "photos/a.jpg"]
    labels = [2, 1, 2, 3, 1]
    up, ul, idx = unique_gallery(paths, labels)
    assert up == ["photos/a.jpg", "photos/b.jpg", "photos/c.jpg"]
    assert ul.tolist() == [1, 2, 3]
    assert [up[i] for i in idx] == paths
    with pytest.raises(ValueError, match="photos/a.jpg: listed with label"):
        unique_gallery(["photos/a.jpg", "photos/a.jpg"], [1, 2])


def test_per_query_dataframe_layout():
    sim, relevant = _random_case(1, q=3, g=250)
    df = per_query_metrics(sim, relevant)
    assert isinstance(df, pd.DataFrame) and len(df) == 3
    assert list(df.columns) == ["rank", "rr", "acc@1", "acc@5", "acc@10", "ap", "ap@200", "p@100", "p@200"]
