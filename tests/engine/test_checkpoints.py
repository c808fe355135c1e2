"""`engine.checkpoints` in a run folder (issue 23): the epoch that is the best one is stored once on disk:
``epoch_XX.pt`` is a hard link to ``best.pt`` (made atomically), or a copy of its bytes where hard links are
unsupported; rotation never touches ``best.pt``. (``fileio.atomic_link`` itself: tests/test_fileio.py.)"""

from __future__ import annotations

import dataclasses
import errno
import os
from pathlib import Path

import pandas as pd
import pytest
import torch

from sbir_utils import engine
from sbir_utils.config import TrainConfig
from sbir_utils.engine import checkpoints, fit, run_folder
from tests.helpers import hard_links_work, make_tiny_dataset

torch.set_num_threads(1)
CFG = TrainConfig(model="convnext_infonce", backbone="test_convnext", image_size=32, embed_dim=16, epochs=2,
                  batch_size=8, lr=1e-3, loss="infonce", seed=7)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("links_data"))


@pytest.fixture
def scores(monkeypatch) -> dict[int, float]:
    """Validation mAP@all by epoch, chosen by the test (so that it decides which epochs improve)."""
    chosen: dict[int, float] = {}
    real = run_folder._validate

    def validate(run, res):
        real(run, res)
        res.row["val_mAP@all"] = chosen[res.row["epoch"]]

    monkeypatch.setattr(run_folder, "_validate", validate)
    return chosen


def _fit(data, run_dir, cfg=CFG, resume=False, **settings):
    settings = {"keep_last": 0, "select_metric": "mAP@all", **settings}
    return fit(dataclasses.replace(cfg, **settings), data, run_dir, resume=resume, progress=False)


def _names(ckpts: Path) -> list[str]:
    return sorted(p.name for p in ckpts.iterdir())


def test_best_epoch_file_is_a_hard_link_to_best_pt(data, tmp_path, scores):
    scores.update({1: 0.5, 2: 0.7})  # both epochs improve: epoch 2 is best
    s = _fit(data, tmp_path / "run")
    ckpts = tmp_path / "run" / "checkpoints"
    assert s["best_epoch"] == 2 and _names(ckpts) == ["best.pt", "epoch_01.pt", "epoch_02.pt"]  # no temporaries
    best, e1, e2 = ckpts / "best.pt", ckpts / "epoch_01.pt", ckpts / "epoch_02.pt"
    assert best.read_bytes() == e2.read_bytes()
    if hard_links_work(tmp_path):
        assert os.stat(best).st_ino == os.stat(e2).st_ino and os.stat(best).st_nlink == 2
        # epoch 1 was best.pt too, until epoch 2 replaced best.pt by a new file: epoch_01.pt kept its bytes.
        assert os.stat(e1).st_ino != os.stat(best).st_ino and os.stat(e1).st_nlink == 1
    for path, epoch in [(best, 2), (e1, 1), (e2, 2)]:
        assert engine.load_checkpoint(path)["epoch"] == epoch  # weights_only=True
    assert s["last_checkpoint"] == str(e2)


def test_an_epoch_that_is_not_best_is_its_own_file(data, tmp_path, scores):
    scores.update({1: 0.7, 2: 0.5})
    _fit(data, tmp_path / "run")
    ckpts = tmp_path / "run" / "checkpoints"
    assert os.stat(ckpts / "best.pt").st_ino == os.stat(ckpts / "epoch_01.pt").st_ino or not hard_links_work(tmp_path)
    assert os.stat(ckpts / "epoch_02.pt").st_ino != os.stat(ckpts / "best.pt").st_ino
    assert engine.load_checkpoint(ckpts / "best.pt")["epoch"] == 1
    assert engine.load_checkpoint(ckpts / "epoch_02.pt")["epoch"] == 2


def test_rotation_never_touches_best_pt_and_resume_continues(data, tmp_path, scores, monkeypatch):
    scores.update({1: 0.5, 2: 0.9, 3: 0.6, 4: 0.8})  # best: epoch 2, rotated away later
    real_rotate = run_folder._rotate_checkpoints
    seen = []

    def rotate(run, keep_last):
        best = run.job.ckpt_dir / "best.pt"
        before = (best.read_bytes(), os.stat(best).st_ino)
        real_rotate(run, keep_last)
        assert (best.read_bytes(), os.stat(best).st_ino) == before
        seen.append(_names(run.job.ckpt_dir))

    monkeypatch.setattr(run_folder, "_rotate_checkpoints", rotate)
    _fit(data, tmp_path / "run", keep_last=1, cfg=dataclasses.replace(CFG, epochs=3))
    resumed = _fit(data, tmp_path / "run", keep_last=1, resume=True, cfg=dataclasses.replace(CFG, epochs=4))
    ckpts = tmp_path / "run" / "checkpoints"
    assert seen == [["best.pt", f"epoch_0{e}.pt"] for e in (1, 2, 3, 4)]
    assert resumed["best_epoch"] == 2 and os.stat(ckpts / "best.pt").st_nlink == 1  # its epoch name is gone
    assert engine.load_checkpoint(ckpts / "best.pt")["epoch"] == 2
    assert engine.load_checkpoint(ckpts / "epoch_04.pt")["epoch"] == 4
    assert pd.read_csv(tmp_path / "run" / "metrics.csv")["epoch"].tolist() == [1, 2, 3, 4]


def test_without_hard_links_the_epoch_file_is_a_copy_with_equal_bytes(data, tmp_path, scores, monkeypatch):
    def no_links(src, dst, *a, **k):
        raise OSError(errno.EPERM, "hard links not supported")

    monkeypatch.setattr(os, "link", no_links)
    scores.update({1: 0.5, 2: 0.7})
    _fit(data, tmp_path / "run")
    ckpts = tmp_path / "run" / "checkpoints"
    assert _names(ckpts) == ["best.pt", "epoch_01.pt", "epoch_02.pt"]
    best, e2 = ckpts / "best.pt", ckpts / "epoch_02.pt"
    assert best.read_bytes() == e2.read_bytes()
    assert os.stat(best).st_ino != os.stat(e2).st_ino and os.stat(best).st_nlink == os.stat(e2).st_nlink == 1
    assert engine.load_checkpoint(e2)["epoch"] == 2


def test_a_failed_link_and_copy_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    old = tmp_path / "epoch_02.pt"
    checkpoints.save_checkpoint({"epoch": 1}, old)
    before = old.read_bytes()
    monkeypatch.setattr(os, "link", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EPERM, "no links")))

    def full(src, dst, *a, **k):
        Path(dst).write_bytes(b"PK partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("shutil.copyfile", full)
    checkpoints.save_checkpoint({"epoch": 2}, tmp_path / "best.pt")
    with pytest.raises(OSError, match=r"epoch_02\.pt: could not write the checkpoint \(No space left on device\)"):
        checkpoints.link_checkpoint(tmp_path / "best.pt", old)
    assert old.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "epoch_02.pt"]
