"""Losses checked against pytorch-metric-learning and direct cross-entropy."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners
from pytorch_metric_learning import reducers as pml_reducers

from sbir_utils.losses import batch_hard_triplet, info_nce, pair_ranking_loss, pairwise_distance


def _emb(n: int, d: int = 8, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g), dim=-1)


@pytest.mark.parametrize("labels", [
    list(range(8)),  # fine-grained: label = photo id, each anchor's only positive is its own photo
    [0, 0, 1, 1, 2, 2, 3, 3],  # category-level: several photos per label
    [0, 0, 0, 1, 1, 2, 2, 2],
])
def test_batch_hard_triplet_matches_pytorch_metric_learning(labels):
    anchors, refs = _emb(8, seed=1), _emb(8, seed=2)
    lab = torch.tensor(labels)
    ours = batch_hard_triplet(anchors, refs, lab, lab.clone(), margin=0.2)
    miner = pml_miners.BatchHardMiner()
    loss_fn = pml_losses.TripletMarginLoss(margin=0.2, reducer=pml_reducers.MeanReducer())
    # The library trap: the same tensor as labels and ref_labels silently changes the mining.
    triplets = miner(anchors, lab, refs, lab.clone())
    theirs = loss_fn(anchors, lab, triplets, refs, lab.clone())
    assert ours.item() > 0
    assert torch.allclose(ours, theirs, atol=1e-5), (ours, theirs)


def test_batch_hard_triplet_is_label_aware_and_has_gradients():
    anchors = _emb(4, seed=3).requires_grad_(True)
    refs = anchors.detach().clone()
    refs[1] = refs[0]  # photo 1 identical to photo 0
    same = torch.tensor([0, 0, 1, 2])  # ... and with the same label: not a negative for anchor 0
    diff = torch.tensor([0, 1, 2, 3])  # ... with another label: the hardest possible negative
    assert batch_hard_triplet(anchors, refs, diff) > batch_hard_triplet(anchors, refs, same)
    loss = batch_hard_triplet(anchors, refs, diff)
    loss.backward()
    assert torch.isfinite(anchors.grad).all()
    # Collapsed embeddings give exactly the margin: the signature of triplet collapse.
    flat = F.normalize(torch.ones(4, 8), dim=-1)
    assert batch_hard_triplet(flat, flat.clone(), diff, margin=0.2).item() == pytest.approx(0.2, abs=1e-5)


def test_semihard_picks_negatives_beyond_the_positive():
    # Anchor 0 at angle 0; its photo at distance ~0.35; negatives at ~0.1 (harder than the positive)
    # and ~0.5 (semi-hard). Semi-hard mining must use the 0.5 one, batch-hard the 0.1 one.
    ang = torch.tensor([0.0, 0.35, 0.1, 0.5])
    pts = torch.stack([torch.cos(ang), torch.sin(ang)], 1)
    anchors = pts[:1]
    lab_a, lab_r = torch.tensor([0]), torch.tensor([0, 1, 2])
    refs = pts[1:]
    d = pairwise_distance(anchors, refs)[0]
    hard = batch_hard_triplet(anchors, refs, lab_a, lab_r, margin=0.2, mining="hard")
    semi = batch_hard_triplet(anchors, refs, lab_a, lab_r, margin=0.2, mining="semihard")
    assert hard.item() == pytest.approx((d[0] - d[1] + 0.2).item(), abs=1e-5)
    assert semi.item() == pytest.approx(max(0.0, (d[0] - d[2] + 0.2).item()), abs=1e-5)
    with pytest.raises(ValueError, match="mining"):
        batch_hard_triplet(anchors, refs, lab_a, lab_r, mining="easy")


@pytest.mark.parametrize("tau", [0.05, 0.5])
def test_info_nce_equals_cross_entropy_over_similarities(tau):
    s, p = _emb(6, seed=4), _emb(6, seed=5)
    sim = s @ p.T
    target = torch.arange(6)
    assert torch.allclose(info_nce(s, p, tau), F.cross_entropy(sim / tau, target), atol=1e-5)
    sym = 0.5 * (F.cross_entropy(sim / tau, target) + F.cross_entropy(sim.T / tau, target))
    assert torch.allclose(info_nce(s, p, tau, symmetric=True), sym, atol=1e-5)
    # Distinct labels: passing them changes nothing.
    assert torch.allclose(info_nce(s, p, tau, labels=torch.arange(6)), info_nce(s, p, tau), atol=1e-6)


def test_info_nce_masks_duplicate_labels():
    s, p = _emb(4, seed=6), _emb(4, seed=7)
    labels = torch.tensor([0, 0, 1, 2])  # rows 0 and 1 are two sketches of one photo
    tau = 0.1
    sim = s @ p.T / tau
    # Row 0 must not treat column 1 (the same photo) as a negative, nor row 1 column 0.
    expected = torch.stack([
        -F.log_softmax(sim[0, [0, 2, 3]], 0)[0],
        -F.log_softmax(sim[1, [1, 2, 3]], 0)[0],
        -F.log_softmax(sim[2], 0)[2],
        -F.log_softmax(sim[3], 0)[3],
    ]).mean()
    assert torch.allclose(info_nce(s, p, tau, labels=labels), expected, atol=1e-5)


def test_pair_ranking_loss():
    scores = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.8, -1.0]])
    valid = torch.tensor([[True, True, True], [True, True, False]])
    expected = torch.stack([
        F.cross_entropy(scores[0:1] / 0.1, torch.tensor([0])),
        F.cross_entropy(scores[1:2, :2] / 0.1, torch.tensor([0])),
    ]).mean()
    assert torch.allclose(pair_ranking_loss(scores, valid, 0.1), expected, atol=1e-5)
