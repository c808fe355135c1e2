"""The training engine shared by AAFG and ConvNeXt-InfoNCE: ``fit`` and ``evaluate``.

One concern per module: ``rng`` (seeding, RNG state), ``device`` (device, autocast), ``checkpoints``
(checkpoint files, ``load_model``), ``distributed`` (process group, gathering), ``inference`` (``encode``,
``retrieval_metrics``, ``evaluate``), ``objectives`` (loss, warm-up, LR schedule),
``state`` (a run's state), ``training`` (``fit``: set-up, resume, epochs, steps) and ``run_folder`` (the
files below, validation and best-epoch choice). Everything callers use is importable from here.

A run directory holds::

    config.json            the resolved settings: "train" (TrainConfig's model and optimisation fields),
                           "options" (its training-procedure fields, resolved, + data paths), "device"
    metrics.csv            one row per epoch: loss, lr, validation metrics, throughput, wall time
    tb/                    TensorBoard scalars (tensorboard --logdir RUN_DIR/tb)
    checkpoints/epoch_XX.pt, checkpoints/best.pt   (the best epoch's epoch_XX.pt is a hard link to best.pt:
                           one file on disk, a copy where links are unsupported)
    model.pth              (with save_state_dict=True) a plain state dict of the best model, seed format

Determinism: python/numpy/torch are seeded from ``cfg.seed`` at the start and re-seeded from
``cfg.seed + epoch`` at the start of every epoch (so ``resume`` continues exactly), batch order comes
from ``seed + epoch``, augmentation comes from the re-seeded generator without loader workers and, with
workers (which persist across epochs), from a generator seeded per row by ``(seed, epoch, row)``
(``data.loading.TrainingBatches``), so any worker count trains the same run,
``torch.use_deterministic_algorithms(True, warn_only=True)`` is on and index rows are sorted.

Model selection: ``best.pt`` is the epoch with the highest validation retrieval metric (default
``acc@1`` for fine-grained / scene data, ``mAP@all`` for category-level data, computed on the
stage-2 ranking when the model has a cross-attention re-ranker); the test split is never read here.

Objective: ``cfg.loss`` (``triplet`` = batch-hard triplet, ``infonce``) on the stage-1 embeddings, plus
for AAFG with cross-attention ``pair_weight`` x the pair-ranking loss (``losses.pair_ranking_loss``).
``warmup_epochs`` > 0 with ``warmup_loss`` (``infonce`` | ``semihard``) trains the first epochs with an
easier objective. From random initialisation all pooled features point the same way (mean cosine
~0.99 between different images) and batch-hard triplet collapses (every embedding alike, the triplet
term pinned at the margin, ``val_mean_cos`` -> 1.00 in metrics.csv); neither semi-hard mining nor an
InfoNCE warm-up prevented that on the real shoes. A BN neck (``head_bn``; by default on for AAFG, and
for ConvNeXt-InfoNCE from random initialisation) does: it centres the embeddings (see ``models.aafg``).

Distributed: under ``torchrun`` (``WORLD_SIZE`` > 1) a process group is initialised (gloo on CPU, nccl
on GPU), the model is wrapped in DistributedDataParallel and rank 0 validates, logs and writes
checkpoints. ``batch_size`` is per process: all ranks draw the same global batch of ``batch_size x
world_size`` rows and each takes a slice; the embeddings are gathered before the loss
(:func:`gather_batch`), so InfoNCE negatives and batch-hard mining range over the global batch, and on
GPUs BatchNorm is synchronised (SyncBatchNorm). A step of N processes then updates the model as one
process with the global batch would (tested on CPU with a model without BatchNorm, which cannot be
synchronised there); only AAFG's pair-ranking term and the sketch augmentation draws stay per rank.
"""

from __future__ import annotations

from .checkpoints import (
    CKPT_FORMAT,
    latest_checkpoint,
    load_checkpoint,
    load_model,
    save_checkpoint,
    train_config_from_dict,
)
from .device import _unwrap as _unwrap
from .device import autocast, resolve_device
from .distributed import _all_mean as _all_mean
from .distributed import _GatherWithGrad as _GatherWithGrad
from .distributed import _init_distributed as _init_distributed
from .distributed import gather_batch
from .inference import _resolve_csv as _resolve_csv
from .inference import _sorted_index as _sorted_index
from .inference import encode, evaluate, retrieval_metrics
from .objectives import WARMUP_LOSSES, compute_loss, cosine_lr
from .objectives import _objective as _objective
from .rng import rng_state, seed_everything, set_rng_state
from .training import NonFiniteLossError, fit
from .training import _fit as _fit

__all__ = [
    "CKPT_FORMAT", "WARMUP_LOSSES", "NonFiniteLossError", "autocast", "compute_loss", "cosine_lr", "encode",
    "evaluate", "fit", "gather_batch", "latest_checkpoint", "load_checkpoint", "load_model", "resolve_device",
    "retrieval_metrics", "rng_state", "save_checkpoint", "seed_everything", "set_rng_state",
    "train_config_from_dict",
]
