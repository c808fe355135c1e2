"""The state of one training run, shared by ``training`` (which advances it) and ``run_folder`` (which
writes it out): what ``fit`` was asked, what set-up built, and what one epoch of training measured."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from ..config import TrainConfig


@dataclasses.dataclass
class _Job:
    """``fit``'s arguments (the settings in ``cfg``, validated), and this process's device, rank and world
    size. ``cfg.sampler`` may still be ``auto`` and ``cfg.select_metric`` None (resolved in :class:`_Run`)."""

    cfg: TrainConfig
    data_root: Path
    run_dir: Path
    resume: bool
    overwrite: bool
    progress: bool
    device: torch.device
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the process that validates, logs and writes checkpoints."""
        return self.rank == 0

    @property
    def ckpt_dir(self) -> Path:
        """``run_dir/checkpoints``."""
        return self.run_dir / "checkpoints"


@dataclasses.dataclass
class _Run:
    """A run between epochs: its data, model, optimiser, history and log writer (``training._set_up``)."""

    job: _Job
    train_path: Path
    train_df: pd.DataFrame  # sorted training index
    val_df: pd.DataFrame  # sorted validation index
    sampler: str  # resolved: photo_unique | pk | random
    select_metric: str  # resolved: the validation metric choosing best.pt
    options: dict[str, Any]  # the engine options as stored in config.json and the checkpoints
    model: nn.Module  # the model itself (SyncBatchNorm-converted under DDP on GPUs): validated and saved
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    history: list[dict[str, Any]]  # one metrics.csv row per epoch run so far
    best: dict[str, Any]  # {"metric", "value", "epoch"} of the best epoch so far
    start_epoch: int = 1
    train_model: nn.Module | None = None  # what the steps call: ``model`` or its DDP wrapper
    writer: Any = None  # TensorBoard SummaryWriter (rank 0), or None
    dataset: Any = None  # loading.PairDataset of the training index
    batches: Any = None  # the batch sampler (``set_epoch`` before each epoch)
    loader: Any = None  # loading.TrainingBatches over ``dataset`` and ``batches``: each epoch's loader
    batch_augment: Any = None  # batch_augment.BatchAugment (``augment_on: device``), applied in each step
    prior_wall: float = 0.0  # wall time of the epochs before a resume (s)
    t_start: float = 0.0  # time.perf_counter() when this process's epochs began
    last_good: Path | None = None  # newest epoch_XX.pt written (rank 0)
    has_pair: bool = False  # the model produced pair scores in the last step (AAFG with a pair scorer)
    channels_last: bool = False  # model and input batches in NHWC memory format (on CUDA devices)


@dataclasses.dataclass
class _EpochResult:
    """What one epoch of training measured: the start of its metrics.csv ``row`` (epoch, objective, losses
    averaged over steps and ranks, lr), the pairs this rank trained on, and its timing (perf_counter s)."""

    row: dict[str, Any]
    n_pairs: int
    t0: float
    train_time: float
