"""Embedding, exact top-k, faiss indexes and the embedding cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sbir_utils.retrieval import EmbeddingCache, build_index, embed, file_fingerprint, gallery_cache_key, topk


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


def test_embed_batches_order_and_norm():
    data = torch.arange(10 * 3, dtype=torch.float32).reshape(10, 3) + 1
    loader = [(data[i : i + 4], list(range(i, min(i + 4, 10)))) for i in range(0, 10, 4)]
    calls = []

    def encode(x):
        calls.append(torch.is_inference_mode_enabled())
        return x * 3.0  # direction kept, length changed

    z = embed(encode, loader)
    assert z.shape == (10, 3) and all(calls) and len(calls) == 3
    torch.testing.assert_close(z, torch.nn.functional.normalize(data, dim=1))
    assert torch.equal(embed(encode, [data[:5], data[5:]]), z)  # bare tensors work too
    with pytest.raises(ValueError, match="no batches"):
        embed(encode, [])
    with pytest.raises(ValueError, match="batch 0"):
        embed(lambda x: x[:1], [data])


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


def test_embedding_cache(tmp_path):
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"weights v1")
    csv = tmp_path / "index_test.csv"
    csv.write_text("path_sketch,path_image,label\n", encoding="utf-8")
    cache = EmbeddingCache(tmp_path / "cache")
    calls = []

    def compute():
        calls.append(1)
        return torch.arange(6, dtype=torch.float32).reshape(3, 2)

    key = gallery_cache_key(ckpt, csv, 64, modality="photo")
    a = cache.get_or_compute(key, compute)
    b = cache.get_or_compute(dict(reversed(list(key.items()))), compute)  # key order does not matter
    assert torch.equal(a, b) and len(calls) == 1
    assert cache.path_for(key).exists() and cache.path_for(key).with_suffix(".json").exists()
    ckpt.write_bytes(b"weights v2")  # new checkpoint content -> new key -> recompute
    cache.get_or_compute(gallery_cache_key(ckpt, csv, 64, modality="photo"), compute)
    assert len(calls) == 2
    cache.get_or_compute(gallery_cache_key(ckpt, csv, 96, modality="photo"), compute)
    assert len(calls) == 3
    # A corrupt file is recomputed with a warning.
    key2 = gallery_cache_key(ckpt, csv, 96, modality="photo")
    cache.path_for(key2).write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="unreadable"):
        c = cache.get_or_compute(key2, compute)
    assert torch.equal(c, a) and len(calls) == 4
    assert not list((tmp_path / "cache").glob(".*.tmp"))  # atomic writes leave no temporaries
    assert file_fingerprint(ckpt, "stat").startswith("stat:")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        file_fingerprint(tmp_path / "missing.pt")
