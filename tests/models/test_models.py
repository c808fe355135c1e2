"""Backbones, AAFG (leak-free stage 1, stage-2 re-ranking), ConvNeXt-InfoNCE and its seed state dicts."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from sbir_utils.config import TrainConfig
from sbir_utils.models import (
    AAFG,
    ConvNeXtInfoNCE,
    WeightsUnavailableError,
    build_model,
    build_trunk,
    rerank,
    stage2_similarity,
)

torch.set_num_threads(1)


def _x(n: int = 4, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def aafg() -> AAFG:
    torch.manual_seed(0)
    model = AAFG("resnet18", embed_dim=16).eval()
    with torch.no_grad():  # make both attention blocks active (they start as the identity)
        model.self_attn.gamma.fill_(0.7)
        model.cross_attn.gamma.fill_(0.9)
    return model


@pytest.mark.parametrize("name,channels", [("resnet18", 512), ("convnext_atto", 320), ("timm:resnet18", 512)])
def test_trunks_return_last_feature_map(name, channels):
    trunk = build_trunk(name)
    out = trunk(_x(2, 64))
    assert out.shape == (2, channels, 2, 2) and trunk.num_features == channels


def test_unknown_backbone_and_missing_weights_are_clear(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown backbone"):
        build_trunk("no_such_net")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(WeightsUnavailableError, match=r"resnet18-.*\.pth.*checkpoints"):
        build_trunk("resnet18", "imagenet")
    with pytest.raises(WeightsUnavailableError, match="--weights"):
        build_trunk("convnext_atto", "imagenet")
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        build_trunk("resnet18", str(tmp_path / "nope.pth"))
    bad = tmp_path / "bad.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, bad)
    with pytest.raises(WeightsUnavailableError, match="bad.pth"):
        build_trunk("resnet18", str(bad))


def test_local_weight_files_load(tmp_path):
    import timm

    tv = torchvision.models.resnet18(weights=None)
    torch.save(tv.state_dict(), tmp_path / "r18.pth")  # the file torchvision's hub would download
    trunk = build_trunk("resnet18", str(tmp_path / "r18.pth"))
    assert torch.equal(trunk.net.conv1.weight, tv.conv1.weight)
    tm = timm.create_model("convnext_atto", pretrained=False)
    torch.save(tm.state_dict(), tmp_path / "atto.pth")
    trunk = build_trunk("convnext_atto", str(tmp_path / "atto.pth"))
    assert torch.equal(trunk.net.stem[0].weight, tm.stem[0].weight)


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


class _SeedSbirModel(nn.Module):
    """The ConvNeXt-InfoNCE seed's model, attribute for attribute (its model.py), for the format test."""

    def __init__(self):
        super().__init__()
        self.embedding_net = torchvision.models.convnext_small().features
        self.num_features = 768
        self.pool = nn.AdaptiveAvgPool2d(1)

    def get_embedding(self, data):
        return F.normalize(self.pool(self.embedding_net(data)).view(-1, self.num_features))


def test_seed_convnext_state_dict_loads_strictly(tmp_path):
    from sbir_utils.engine import load_model

    torch.manual_seed(0)
    seed_model = _SeedSbirModel().eval()
    path = tmp_path / "model_normal.pth"
    torch.save(seed_model.state_dict(), path)  # exactly how the seed saves (and releases) its models
    ours = ConvNeXtInfoNCE("convnext_small", embed_dim=None)
    ours.load_state_dict(torch.load(path, weights_only=True), strict=True)
    ours.eval()
    x = _x(2, 32)
    with torch.no_grad():
        assert torch.allclose(ours.embed(x), seed_model.get_embedding(x), atol=1e-5)
    cfg = TrainConfig(model="convnext_infonce", backbone="convnext_small", embed_dim=128)
    loaded, cfg2, _ = load_model(path, cfg)  # the CLI's --model_path route: head follows the file
    assert cfg2.embed_dim == 0 and loaded.head is None


def test_convnext_infonce_round_trip_with_head(tmp_path):
    m = ConvNeXtInfoNCE("convnext_atto", embed_dim=32)
    assert m.head is not None and m.embed_dim == 32
    torch.save(m.state_dict(), tmp_path / "m.pth")
    m2 = ConvNeXtInfoNCE("convnext_atto", embed_dim=32)
    m2.load_state_dict(torch.load(tmp_path / "m.pth", weights_only=True), strict=True)
    m.eval(), m2.eval()
    with torch.no_grad():
        out = m2(_x(2), _x(2, seed=1))
        assert torch.allclose(m.embed(_x(2)), out["sketch"], atol=1e-6)
    assert sorted(k for k in m.state_dict() if not k.startswith("embedding_net.")) == ["head.bias", "head.weight"]
    assert ConvNeXtInfoNCE("convnext_atto", embed_dim=320).head is None


def test_build_model_factory():
    cfg = TrainConfig(model="aafg", backbone="resnet18", embed_dim=8, self_attention=False)
    m = build_model(cfg)
    assert isinstance(m, AAFG) and m.self_attn is None and m.has_pair_scorer
    m = build_model(dataclasses.replace(cfg, model="convnext_infonce", backbone="convnext_atto"))
    assert isinstance(m, ConvNeXtInfoNCE) and not m.has_pair_scorer
    with pytest.raises(ValueError, match="unknown model"):
        build_model(dataclasses.replace(cfg, model="clip"))


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


def test_convnext_bn_neck_only_from_random_init(tmp_path):
    """ConvNeXt-InfoNCE gets the BN neck by default only from random initialisation (it sat at
    log(batch) without one); with pretrained weights it keeps the seed's layout."""
    cfg = TrainConfig(model="convnext_infonce", backbone="convnext_atto", embed_dim=16)
    torch.manual_seed(0)
    random_init = build_model(cfg)
    assert {"neck.sketch.running_mean", "neck.photo.weight"} <= set(random_init.state_dict())
    x = 2.0 + 0.3 * _x(16, 64, seed=3)  # mostly white, like a normalised sketch or a bright photo

    def mean_cos(e: torch.Tensor) -> float:
        return float((e @ e.T).fill_diagonal_(0).sum()) / (len(e) * (len(e) - 1))

    torch.manual_seed(0)
    without = build_model(cfg, head_bn=False)
    with torch.no_grad():
        assert abs(mean_cos(random_init(x, x)["photo"])) < 0.2
        assert mean_cos(without(x, x)["photo"]) > 0.6
    weights = tmp_path / "atto.pth"
    torch.save(random_init.embedding_net.net.state_dict(), weights)
    pretrained = build_model(dataclasses.replace(cfg, weights=str(weights)))
    assert pretrained.neck is None and not any(k.startswith("neck.") for k in pretrained.state_dict())
    assert without.neck is None


def test_grid_pooling_keeps_the_layout_and_avg_keeps_the_seeds_layout():
    """pool="grid2": the embedding is the four quadrant means of the trunk's map, channel by channel
    (computed here by hand), so swapping the image's halves changes it; "avg" is the seed's global mean
    with the seed's state-dict shapes; AAFG and unknown pools are refused."""
    from sbir_utils.models import build_model
    from sbir_utils.models.siamese import ConvNeXtInfoNCE

    torch.manual_seed(0)
    grid = ConvNeXtInfoNCE("test_convnext", embed_dim=0, pool="grid2").eval()
    x = torch.randn(2, 3, 64, 64)
    maps = grid.embedding_net(x)
    h, w = maps.shape[-2] // 2, maps.shape[-1] // 2
    quads = [maps[:, :, :h, :w], maps[:, :, :h, w:], maps[:, :, h:, :w], maps[:, :, h:, w:]]
    by_hand = torch.stack([q.mean(dim=(2, 3)) for q in quads], dim=2).flatten(1)  # (B, C * 4), channel-major
    assert grid.embed_dim == 4 * grid.num_features
    torch.testing.assert_close(grid.embed_photo(x), F.normalize(by_hand, dim=-1))
    swapped = torch.cat([x[..., 32:], x[..., :32]], dim=-1)
    assert not torch.allclose(grid.embed_photo(swapped), grid.embed_photo(x), atol=1e-3)
    avg = ConvNeXtInfoNCE("test_convnext", embed_dim=16)
    assert avg.head.in_features == avg.num_features  # the seed's layout is unchanged
    assert ConvNeXtInfoNCE("test_convnext", embed_dim=16, pool="grid2").head.in_features == 4 * avg.num_features
    with pytest.raises(ValueError, match="pool must be one of"):
        ConvNeXtInfoNCE("test_convnext", pool="max")
    with pytest.raises(ValueError, match="only the convnext_infonce model"):
        build_model(TrainConfig(model="aafg", backbone="test_resnet", pool="grid2"))
