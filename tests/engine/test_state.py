"""`engine.state`: the job a run was given and the state between epochs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from sbir_utils.config import TrainConfig
from sbir_utils.engine.state import _EpochResult, _Job, _Run


def _job(rank: int = 0) -> _Job:
    return _Job(TrainConfig(), Path("data"), Path("runs/r"), resume=False, overwrite=False, progress=False,
                device=torch.device("cpu"), rank=rank, world=2)


def test_job_main_rank_and_checkpoint_folder():
    assert _job(0).main and not _job(1).main
    assert _job().ckpt_dir == Path("runs/r/checkpoints")
    assert (_Job(TrainConfig(), Path("d"), Path("r"), False, False, False, torch.device("cpu")).rank,
            _Job(TrainConfig(), Path("d"), Path("r"), False, False, False, torch.device("cpu")).world) == (0, 1)


def test_run_starts_at_epoch_one_without_a_writer_or_checkpoint():
    names = [f.name for f in dataclasses.fields(_Run)]
    assert names[:2] == ["job", "train_path"]
    defaults = {f.name: f.default for f in dataclasses.fields(_Run) if f.default is not dataclasses.MISSING}
    assert defaults == {"start_epoch": 1, "train_model": None, "writer": None, "dataset": None, "batches": None, "loader": None,
                        "batch_augment": None, "prior_wall": 0.0, "t_start": 0.0, "last_good": None, "has_pair": False,
                        "channels_last": False}


def test_epoch_result_holds_its_row():
    res = _EpochResult({"epoch": 3, "train_loss": 0.5}, n_pairs=16, t0=1.0, train_time=2.5)
    assert res.row["epoch"] == 3 and res.n_pairs == 16 and res.train_time == 2.5
