"""Sharded gallery encoding (resumable, rank-split), indexes built from shards, and `sbir embed`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sbir_utils import cli, engine
from sbir_utils.gallery_index import (
    build_index_from_shards,
    encode_shards,
    iter_shards,
    missing_shards,
    shard_key,
)
from sbir_utils.retrieval import topk
from tests.helpers import TINY_TRAIN_ARGS as TINY
from tests.helpers import make_tiny_dataset

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("gi")
    data = make_tiny_dataset(root / "data", photos=(8, 4, 9))
    assert cli.main(["train", "--data_root", str(data), "--log_dir", str(root / "run"), *TINY]) == 0
    ckpt = root / "run" / "checkpoints" / "best.pt"
    model, cfg, _ = engine.load_model(ckpt)
    photos = sorted(str(p) for p in (data / "photos").glob("*.png"))
    return {"ckpt": ckpt, "model": model, "cfg": cfg, "photos": photos, "data": data}


def _encode(t: dict, out: Path, **kw) -> dict:
    key = shard_key(t["ckpt"], t["photos"], t["cfg"].image_size)
    return encode_shards(t["model"], t["photos"], out, key, image_size=t["cfg"].image_size,
                         **{"shard_size": 6, **kw})


def _all(out: Path) -> np.ndarray:
    return np.concatenate([a for _, a in iter_shards(out, verify=True)])


def test_shards_hold_the_gallery_embeddings_in_order(trained, tmp_path):
    manifest = _encode(trained, tmp_path / "s")
    assert manifest["n_shards"] == -(-len(trained["photos"]) // 6) and missing_shards(tmp_path / "s") == []
    ref, _ = engine.encode(trained["model"], trained["photos"], "photo", trained["cfg"].image_size)
    ref = torch.nn.functional.normalize(ref, dim=1).numpy()
    got = _all(tmp_path / "s")
    assert got.shape == ref.shape and np.allclose(got, ref, atol=1e-5)
    assert (tmp_path / "s" / "paths.txt").read_text().split() == trained["photos"]


def test_an_interrupted_encoding_resumes_with_the_missing_shard_only(trained, tmp_path, monkeypatch):
    out = tmp_path / "s"
    _encode(trained, out)
    before = _all(out)
    (out / "shard_00001.json").unlink()  # shard 1 was being written when the run was killed
    (out / "shard_00001.npy").write_bytes(b"half")
    calls = []
    real = engine.encode

    def counting(model, paths, *a, **kw):
        calls.append(len(paths))
        return real(model, paths, *a, **kw)

    monkeypatch.setattr(engine, "encode", counting)
    with pytest.raises(FileNotFoundError, match="1 of 4 shards not encoded"):
        list(iter_shards(out))
    _encode(trained, out)
    assert calls == [6]
    assert np.array_equal(_all(out), before)


def test_ranks_split_the_shards_and_together_equal_one_process(trained, tmp_path):
    _encode(trained, tmp_path / "one")
    _encode(trained, tmp_path / "two", rank=1, world_size=2)
    assert missing_shards(tmp_path / "two") == ["shard_00000.npy", "shard_00002.npy"]
    _encode(trained, tmp_path / "two", rank=0, world_size=2)
    assert np.array_equal(_all(tmp_path / "one"), _all(tmp_path / "two"))


def test_a_folder_of_another_checkpoint_is_refused(trained, tmp_path):
    _encode(trained, tmp_path / "s")
    other = dict(trained, photos=trained["photos"][:-1])
    with pytest.raises(ValueError, match="manifest.json: the shards there belong to another"):
        _encode(other, tmp_path / "s")


def test_a_changed_shard_fails_verification(trained, tmp_path):
    out = tmp_path / "s"
    _encode(trained, out)
    arr = np.load(out / "shard_00000.npy")
    arr[0, 0] += 1
    np.save(out / "shard_00000.npy", arr)
    with pytest.raises(ValueError, match="shard_00000.npy: checksum differs"):
        _all(out)


@pytest.mark.parametrize("kind,params", [("exact", {}), ("flat", {}), ("ivf", {"nlist": 2, "nprobe": 2}),
                                         ("hnsw", {"ef_search": 64})])
def test_index_from_shards_finds_what_exact_search_finds(trained, tmp_path, kind, params):
    pytest.importorskip("faiss")
    out = tmp_path / "s"
    _encode(trained, out)
    gallery = torch.from_numpy(_all(out))
    q = gallery[:5] + 0.01 * torch.randn(5, gallery.shape[1], generator=torch.Generator().manual_seed(0))
    index = build_index_from_shards(out, kind, train_rows=10, **params)
    assert len(index) == len(trained["photos"])
    _, got = index.search(q, 3)
    _, want = topk(q, gallery, 3)
    assert torch.equal(got, want)  # tiny gallery: every kind here is exhaustive


def test_sbir_embed_cli(trained, tmp_path, capsys):
    out = tmp_path / "s"
    sketch = sorted((trained["data"] / "sketches").glob("*.png"))[0]
    rc = cli.main(["embed", "--ckpt", str(trained["ckpt"]), "--photos", str(trained["data"] / "photos"),
                   "--out", str(out), "--shard_size", "7", "--index", "flat", "--query", str(sketch), "--k", "3"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "3 of 3 shards encoded (21 images)" in text and (out / "index_flat.faiss").exists()
    lines = [ln.split() for ln in text.splitlines() if ln.startswith("  ")]
    assert [ln[0] for ln in lines] == ["1", "2", "3"] and all(Path(ln[2]).exists() for ln in lines)
    assert json.loads((out / "manifest.json").read_text())["n"] == 21


def test_sbir_embed_errors_are_one_line(trained, tmp_path, capsys):
    rc = cli.main(["embed", "--ckpt", str(tmp_path / "none.pt"), "--photos", str(trained["data"] / "photos"),
                   "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "none.pt" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    rc = cli.main(["embed", "--ckpt", str(trained["ckpt"]), "--photos", str(empty), "--out", str(tmp_path / "s")])
    assert rc == 2 and "no image files" in capsys.readouterr().err


def test_shard_size_must_be_positive(trained, tmp_path):
    with pytest.raises(ValueError, match="shard_size"):
        _encode(trained, tmp_path / "s", shard_size=0)
