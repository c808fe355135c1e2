"""`models.aafg`: AAFG's embeddings and attention switches, the leak-free stage-1 sketch embedding, the stage-2
pair score, hardest negatives, re-ranking of the top k, and the BN neck."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sbir_utils.models import AAFG, rerank, stage2_similarity
from tests.helpers import random_images as _x

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def aafg() -> AAFG:
    torch.manual_seed(0)
    model = AAFG("resnet18", embed_dim=16).eval()
    with torch.no_grad():  # make both attention blocks active (they start as the identity)
        model.self_attn.gamma.fill_(0.7)
        model.cross_attn.gamma.fill_(0.9)
    return model


def test_aafg_embeddings_and_switches():
    for sa, ca in ((False, False), (True, False), (False, True), (True, True)):
        m = AAFG("resnet18", embed_dim=24, self_attention=sa, cross_attention=ca)
        assert (m.self_attn is not None) == sa and m.has_pair_scorer == ca
        out = m(_x(4), _x(4, seed=1), torch.arange(4))
        assert out["sketch"].shape == out["photo"].shape == (4, 24)
        assert torch.allclose(out["sketch"].norm(dim=1), torch.ones(4), atol=1e-5)
        assert ("pair_scores" in out) == ca
        if ca:
            assert out["pair_scores"].shape == (4, 4) and out["pair_valid"].all()
    norms = [mod for mod in AAFG("resnet18").modules() if isinstance(mod, (nn.LayerNorm, nn.GroupNorm))]
    assert norms and all(isinstance(n, nn.GroupNorm) and n.num_groups == 1 for n in norms)


def test_stage1_sketch_embedding_ignores_gallery_and_paired_photo(aafg):
    sketches, photos_a, photos_b = _x(4, seed=2), _x(4, seed=3), _x(4, seed=4)
    with torch.no_grad():
        alone = aafg.embed_sketch(sketches[:1])
        in_batch = aafg.embed_sketch(sketches)[:1]
        with_a = aafg(sketches, photos_a)["sketch"]
        with_b = aafg(sketches, photos_b)["sketch"]
        # ... while the stage-2 pair score does look at the photo.
        s_maps = aafg.maps(sketches)
        score_a = aafg.pair_score(s_maps, aafg.maps(photos_a))
        score_b = aafg.pair_score(s_maps, aafg.maps(photos_b))
    assert torch.allclose(alone, in_batch, atol=1e-5)
    assert torch.allclose(with_a, with_b, atol=1e-6)
    assert torch.allclose(with_a[:1], alone, atol=1e-5)
    assert not torch.allclose(score_a, score_b, atol=1e-3)


def test_pair_score_starts_as_stage1_cosine():
    torch.manual_seed(1)
    m = AAFG("resnet18", embed_dim=16).eval()  # gamma = 0: attention blocks are the identity
    s, p = _x(3, seed=5), _x(3, seed=6)
    with torch.no_grad():
        cos = (m.embed_sketch(s) * m.embed_photo(p)).sum(1)
        assert torch.allclose(m.pair_score(m.maps(s), m.maps(p)), cos, atol=1e-5)


def test_hardest_negatives_skip_same_label():
    m = AAFG("resnet18", embed_dim=8, pair_negatives=3)
    out = m(_x(4), _x(4, seed=1), torch.tensor([0, 0, 1, 2]))
    valid = out["pair_valid"]
    assert valid[:, 0].all()
    # rows 0 and 1 share a label: only 2 negatives each; rows 2 and 3 have 3.
    assert valid.sum(1).tolist() == [3, 3, 4, 4]


def test_rerank_reorders_only_the_top_k(aafg):
    q, g = _x(3, seed=7), _x(6, seed=8)
    with torch.no_grad():
        qm, gm = aafg.maps(q), aafg.maps(g)
        sim = aafg.embed_maps(qm) @ aafg.embed_maps(gm).T
    top = sim.topk(4, dim=1).indices
    new, scores = rerank(aafg, qm, gm, top, batch_size=5)
    assert all(sorted(a.tolist()) == sorted(b.tolist()) for a, b in zip(new, top))
    assert (scores[:, :-1] >= scores[:, 1:]).all()
    with torch.no_grad():
        direct = aafg.pair_score(qm[:1].expand(4, -1, -1, -1), gm[new[0]])
    assert torch.allclose(direct, scores[0], atol=1e-5)
    sim2 = stage2_similarity(sim, new, scores)
    order = sim2.argsort(dim=1, descending=True)
    assert torch.equal(order[:, :4], new)  # re-ranked candidates first, in pair-score order
    rest = [i for i in sim[0].argsort(descending=True).tolist() if i not in top[0].tolist()]
    assert order[0, 4:].tolist() == rest  # the others keep their stage-1 order


def test_bn_neck_centres_random_init_embeddings():
    """From random initialisation every image gets nearly the same direction (the root of the triplet
    collapse); the BN neck removes the shared component in training."""

    def mean_cos(e: torch.Tensor) -> float:
        g = e @ e.T
        return float((g.sum() - g.diagonal().sum()) / (len(e) * (len(e) - 1)))

    x = _x(16, 64, seed=9)
    torch.manual_seed(0)
    plain = AAFG("resnet18", embed_dim=32, head_bn=False, cross_attention=False)
    torch.manual_seed(0)
    neck = AAFG("resnet18", embed_dim=32, head_bn=True, cross_attention=False)
    with torch.no_grad():
        assert mean_cos(plain(x, x)["photo"]) > 0.6  # ~0.75 on noise, ~0.98 on real photos
        assert abs(mean_cos(neck(x, x)["photo"])) < 0.2
    assert plain.neck is None and set(neck.neck) == {"sketch", "photo"}
