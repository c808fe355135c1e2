"""Exact top-k, faiss indexes and file fingerprints."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from sbir_utils.retrieval import build_index, file_fingerprint, topk


@pytest.fixture(autouse=True)
def _one_thread():
    import faiss

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _unit(n: int, d: int, seed: int) -> torch.Tensor:
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.normalize(x, dim=1)


def test_topk_matches_full_sort_and_chunks():
    q, g = _unit(50, 16, 0), _unit(300, 16, 1)
    scores, idx = topk(q, g, 7, chunk_size=13)
    full = q @ g.T
    ref_idx = torch.argsort(full, dim=1, descending=True, stable=True)[:, :7]
    assert torch.equal(idx, ref_idx)
    torch.testing.assert_close(scores, torch.gather(full, 1, ref_idx))
    s2, i2 = topk(q.numpy() * 4.0, g.numpy(), 7)  # numpy input, un-normalised query
    assert torch.equal(i2, idx)


def test_topk_ties_lower_index_first_also_at_the_cut():
    # Gallery: 6 copies of one direction (indices 1..6) and other vectors; k=3 must take 1, 2, 3.
    g = torch.zeros(8, 2)
    g[:, 0] = 1.0
    g[0] = torch.tensor([0.0, 1.0])
    g[7] = torch.tensor([-1.0, 0.0])
    q = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    scores, idx = topk(q, g, 3)
    assert idx.tolist() == [[1, 2, 3], [1, 2, 3]]
    # Ties inside the top k but not at the cut: quantised random scores.
    rng = np.random.default_rng(0)
    gq = torch.tensor(rng.integers(0, 3, (200, 4)), dtype=torch.float32) + 0.1
    qq = torch.tensor(rng.integers(0, 3, (20, 4)), dtype=torch.float32) + 0.1
    s, i = topk(qq, gq, 15, chunk_size=7)
    full = torch.nn.functional.normalize(qq, dim=1) @ torch.nn.functional.normalize(gq, dim=1).T
    ref = torch.argsort(-full, dim=1, stable=True)[:, :15]
    assert torch.equal(i, ref)


def test_topk_errors():
    with pytest.raises(ValueError, match="k must be"):
        topk(_unit(2, 4, 0), _unit(3, 4, 1), 4)
    with pytest.raises(ValueError, match="dimensions differ"):
        topk(_unit(2, 4, 0), _unit(3, 5, 1), 1)
    bad = _unit(2, 4, 0)
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="query contains NaN"):
        topk(bad, _unit(3, 4, 1), 1)


def test_faiss_flat_equals_topk_and_exact_index():
    q, g = _unit(40, 32, 2), _unit(2000, 32, 3)
    ref_s, ref_i = topk(q, g, 10)
    s, i = build_index(g, "flat").search(q, 10)
    assert torch.equal(i, ref_i)
    torch.testing.assert_close(s, ref_s, atol=1e-5, rtol=0)
    s, i = build_index(g, "exact", chunk_size=8).search(q, 10)
    assert torch.equal(i, ref_i)
    torch.testing.assert_close(s, ref_s, atol=1e-6, rtol=0)  # BLAS blocking differs with the chunk size


@pytest.mark.parametrize(
    "kind,params",
    [
        ("ivf", {"nprobe": 128}),  # of nlist = 512; nprobe 48 gave recall 0.77, 96 gave 0.90
        ("hnsw", {"M": 16, "ef_construction": 100, "ef_search": 128}),
    ],
)
def test_approximate_indexes_recall(kind, params):
    # 20k random unit vectors: structure-free, the hard case for approximate search.
    g, q = _unit(20_000, 32, 4), _unit(200, 32, 5)
    _, exact = topk(q, g, 10)
    index = build_index(g, kind, **params)
    assert len(index) == 20_000
    _, approx = index.search(q, 10)
    recall = np.mean([len(set(a.tolist()) & set(e.tolist())) / 10 for a, e in zip(approx, exact)])
    assert recall >= 0.9, f"{kind} recall@10 = {recall:.3f}"


def test_build_index_rejects_unknowns():
    with pytest.raises(ValueError, match="kind must be"):
        build_index(_unit(10, 4, 0), "lsh")
    with pytest.raises(ValueError, match="unknown parameters"):
        build_index(_unit(100, 4, 0), "hnsw", efsearch=3)


def test_file_fingerprint_follows_content_and_names_a_missing_file(tmp_path):
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"weights v1")
    first = file_fingerprint(ckpt)
    assert first == "sha256:" + hashlib.sha256(b"weights v1").hexdigest()
    ckpt.write_bytes(b"weights v2")
    assert file_fingerprint(ckpt) != first
    assert file_fingerprint(ckpt, "stat").startswith("stat:")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        file_fingerprint(tmp_path / "missing.pt")
