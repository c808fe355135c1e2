"""Training: ``fit`` and its steps, set-up (data, model, optimiser), resume, one epoch and one optimisation
step, in the order of random draws that makes runs repeatable and ``resume`` exact (see the package
docstring: determinism, objective, distributed); the run folder's files are written by ``run_folder``."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.distributed as dist
from torch import nn

from ..config import TrainConfig, check_train_config, core_fields
from ..data.batch_augment import BatchAugment, step_generator
from ..data.index import DatasetSpec, IndexValidationError, load_spec
from ..data.loading import PairDataset, TrainingBatches, make_batch_sampler
from ..data.transforms import normalize_batch, require_photo_mode
from ..models import build_model, freeze_batchnorm, read_state_dict
from . import objectives, run_folder
from .checkpoints import latest_checkpoint, load_checkpoint
from .device import autocast, prefers_channels_last, resolve_device
from .distributed import _all_mean, _init_distributed, gather_batch
from .inference import _resolve_csv, _sorted_index
from .objectives import cosine_lr
from .rng import seed_everything, set_rng_state
from .state import _EpochResult, _Job, _Run


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss; the run stopped and the last good checkpoint was kept."""


def fit(cfg: TrainConfig, data_root: str | Path, run_dir: str | Path, *, resume: bool = False,
        overwrite: bool = False, progress: bool = True, device: str | torch.device | None = None) -> dict[str, Any]:
    """Train ``cfg.model`` on ``data_root/cfg.train_csv``, validate on ``cfg.val_csv`` every epoch.

    Args:
        cfg: every setting of the run, checked first (``config.check_train_config``): the model and
            optimisation (epochs, batch_size per process, lr, loss, margin, warm-up ...) and the training
            procedure (``config.OPTION_FIELDS``): sampler (``auto``: PK for category-level data, else
            photo-unique), mining, symmetric, pair_weight / pair_negatives (AAFG pair-ranking loss), head_bn
            (BN neck; None: always on for AAFG, on for ConvNeXt-InfoNCE only from random initialisation),
            select_metric (chooses ``best.pt``), model_path (start from this state dict or engine checkpoint),
            train_csv / val_csv, save_state_dict (also write ``run_dir/model.pth``), keep_last (newest
            ``epoch_XX.pt`` files kept, 0: all), skip_missing (leave out index rows whose files are missing,
            counted in config.json's ``options["skipped_rows"]``; else they stop the run, all listed).
        data_root: index folder (``index_*.csv`` + optional ``dataset.json``).
        run_dir: output folder (see the package docstring).
        resume: continue from the newest ``checkpoints/epoch_XX.pt`` of ``run_dir`` up to ``cfg.epochs``.
        overwrite: when not resuming and ``run_dir`` already holds a run, replace it (its checkpoints,
            metrics.csv, tb/ and model.pth are deleted); without it that is an error.
        progress: show a tqdm bar (stderr, redrawn at most every 5 s).
        device: ``cpu``, ``cuda``, ``cuda:N`` or None (a GPU when there is one).
    Returns:
        summary dict: run_dir, best_epoch, best_metric, best_value, best_checkpoint, last_checkpoint,
        epochs_run, final validation metrics, pairs_per_s, wall_time_s, options.
    """
    check_train_config(cfg)
    require_photo_mode(cfg.photo_mode)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    device = resolve_device(device)
    rank, world, device, created_pg = _init_distributed(device)
    try:
        job = _Job(cfg=cfg, data_root=Path(data_root), run_dir=Path(run_dir), resume=resume, overwrite=overwrite,
                   progress=progress, device=device, rank=rank, world=world)
        return _fit(job)
    finally:
        if created_pg and dist.is_initialized():
            dist.destroy_process_group()


def _fit(job: _Job) -> dict[str, Any]:
    """The run ``job`` describes, in this process: set up (or resume), train the remaining epochs (rank 0
    validating and writing after each), return the summary."""
    run = _set_up(job)
    try:
        for epoch in range(run.start_epoch, job.cfg.epochs + 1):
            res = _train_epoch(run, epoch)
            if job.main:
                run_folder._end_epoch(run, epoch, res)
            if job.world > 1:
                dist.barrier()
    finally:
        run.loader.close()  # its persistent workers, if any
    if run.writer is not None:
        run.writer.close()
    return run_folder._summary(run)


def _set_up(job: _Job) -> _Run:
    """Data, model, optimiser, resumed state, DDP wrapper, log and batch sampler of a run, in the order whose
    random draws a resumed run repeats."""
    cfg, device = job.cfg, job.device
    spec, train_path, val_path, train_df, val_df = _read_data(job)
    sampler, select_metric, options = _resolve_options(job, spec, train_path, val_path)
    if cfg.skip_missing:
        options["skipped_rows"] = {"train": dict(train_df.attrs["skipped"]), "val": dict(val_df.attrs["skipped"])}
    seed_everything(cfg.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
    model = _build_model(job, options)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    fp16 = cfg.amp and device.type == "cuda" and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler("cuda", enabled=fp16)
    run = _Run(job, train_path, train_df, val_df, sampler, select_metric, options, model, optimizer, scaler,
               history=[], best={"metric": select_metric, "value": None, "epoch": None})
    if job.resume:
        _resume(run)
    else:
        run_folder._clear_old_run(job)
    run.model, run.train_model = _wrap_ddp(model, device, job.world)
    run.channels_last = prefers_channels_last(device)
    run.writer = run_folder._open_log(run)
    on_device = cfg.augment and cfg.augment_on == "device"  # the loader then yields the un-augmented training base
    run.dataset = PairDataset(train_df, cfg.image_size, train=True, augment=cfg.augment, photo_mode=cfg.photo_mode,
                              crop=cfg.crop, base=on_device)
    run.batch_augment = BatchAugment() if on_device else None
    run.batches = make_batch_sampler(train_df, cfg.batch_size, sampler, seed=cfg.seed, rank=job.rank,
                                     world_size=job.world)
    run.loader = TrainingBatches(run.dataset, run.batches, cfg.num_workers, cfg.seed,
                                 pin_memory=device.type == "cuda")
    run.prior_wall = float(run.history[-1]["wall_time_s"]) if run.history else 0.0
    run.t_start = time.perf_counter()
    run.last_good = latest_checkpoint(job.run_dir) if job.main else None
    return run


def _read_data(job: _Job) -> tuple[DatasetSpec, Path, Path, pd.DataFrame, pd.DataFrame]:
    """``(spec, train_path, val_path, train_df, val_df)``: the index files, sorted; training needs two labels.
    The problems of both files (e.g. missing files) are raised together, each file's summary line first."""
    spec = load_spec(job.data_root)
    train_path, val_path = _resolve_csv(spec, job.cfg.train_csv), _resolve_csv(spec, job.cfg.val_csv)
    frames, problems = [], []
    for path in (train_path, val_path):
        try:
            frames.append(_sorted_index(path, spec, job.cfg.skip_missing))
        except IndexValidationError as exc:
            problems.append(exc.problems)
    if problems:
        raise IndexValidationError([p[0] for p in problems] + [x for p in problems for x in p[1:]])
    train_df, val_df = frames
    if train_df["label"].nunique() < 2:
        raise ValueError(f"{train_path}: every row has the label {train_df['label'].iloc[0]!r}; training needs at "
                         "least two labels (photos or classes), so that a batch holds negatives")
    return spec, train_path, val_path, train_df, val_df


def _resolve_options(job: _Job, spec: DatasetSpec, train_path: Path,
                     val_path: Path) -> tuple[str, str, dict[str, Any]]:
    """``(sampler, select_metric, options)``: the ``auto`` / None defaults chosen from the data's protocol and
    the model; ``options`` as stored in config.json and every checkpoint."""
    cfg, sampler, select_metric = job.cfg, job.cfg.sampler, job.cfg.select_metric
    if sampler == "auto":
        sampler = "pk" if spec.protocol == "category" else "photo_unique"
    if select_metric is None:
        select_metric = "mAP@all" if spec.protocol == "category" else "acc@1"
        if cfg.model == "aafg" and cfg.cross_attention and cfg.rerank_k > 0:
            select_metric = "s2_" + select_metric
    options = dict(sampler=sampler, warmup_epochs=cfg.warmup_epochs, warmup_loss=cfg.warmup_loss, mining=cfg.mining,
                   symmetric=cfg.symmetric, pair_weight=cfg.pair_weight, pair_negatives=cfg.pair_negatives,
                   head_bn=cfg.head_bn, select_metric=select_metric, world_size=job.world,
                   data_root=str(spec.index_dir), train_csv=str(train_path), val_csv=str(val_path),
                   protocol=spec.protocol, model_path=str(cfg.model_path) if cfg.model_path else None)
    return sampler, select_metric, options


def _build_model(job: _Job, options: dict[str, Any]) -> nn.Module:
    """The model on ``job.device``, from ``cfg.model_path``'s weights if given; records the resolved BN neck in
    ``options["head_bn"]``."""
    cfg, head_bn, state = job.cfg, job.cfg.head_bn, None
    if cfg.model_path:
        obj = load_checkpoint(cfg.model_path)
        state = obj["model"] if isinstance(obj, dict) and "model" in obj and "config" in obj else read_state_dict(cfg.model_path)
        if head_bn is None:  # follow the file (the seed's state dicts have no BN neck)
            head_bn = any(k.startswith("neck.") for k in state)
    model = build_model(cfg, pair_negatives=cfg.pair_negatives, head_bn=head_bn)
    options["head_bn"] = getattr(model, "neck", None) is not None  # as resolved (None: the model's default)
    if state is not None:
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ValueError(f"{cfg.model_path}: does not fit a {cfg.model} with backbone {cfg.backbone} and "
                             f"embed_dim {cfg.embed_dim} ({str(exc).splitlines()[1].strip()[:300]})") from None
    model.to(job.device)
    if prefers_channels_last(job.device):
        model.to(memory_format=torch.channels_last)
    return model


def _resume(run: _Run) -> None:
    """Continue from the newest ``epoch_XX.pt``: weights, optimiser, scaler, RNG states, history and best;
    the settings must equal the stored ones (except ``epochs`` and ``num_workers``)."""
    job = run.job
    last = latest_checkpoint(job.run_dir)
    if last is None:
        raise FileNotFoundError(f"{job.ckpt_dir}: no epoch_XX.pt checkpoint to resume from")
    ckpt = load_checkpoint(last)
    free = ("epochs", "num_workers")  # may change on resume
    stored = {k: v for k, v in ckpt["config"].items() if k not in free}
    now = {k: v for k, v in core_fields(job.cfg).items() if k not in free}
    if stored != now:
        diff = sorted(k for k in set(stored) | set(now) if stored.get(k) != now.get(k))
        raise ValueError(f"{last}: was trained with different settings ({diff}); resume with the same ones")
    run.model.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scaler.load_state_dict(ckpt["scaler"])
    set_rng_state(ckpt["rng"])
    run.history, run.best = list(ckpt["history"]), dict(ckpt["best"])
    run.start_epoch = int(ckpt["epoch"]) + 1


def _wrap_ddp(model: nn.Module, device: torch.device, world: int) -> tuple[nn.Module, nn.Module]:
    """``(model, train_model)``: under DDP the model (SyncBatchNorm on GPUs) and its DDP wrapper; else both
    the model itself."""
    train_model: nn.Module = model
    if world > 1:
        if device.type == "cuda":  # BatchNorm statistics of the global batch (SyncBatchNorm needs a GPU)
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        train_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            # AAFG's pair scorer and the timm ConvNeXt's classifier-head norm (kept for the seed's state-dict
            # layout, never used for embeddings) get no gradient in some or all steps.
            find_unused_parameters=True)
    return model, train_model


def _train_epoch(run: _Run, epoch: int) -> _EpochResult:
    """Train ``epoch`` (1-based) on every rank: re-seed, draw the batches, set the cosine lr, step through
    the loader; losses are averaged over steps and ranks."""
    from tqdm import tqdm

    job, cfg = run.job, run.job.cfg
    seed_everything(cfg.seed + epoch)
    loader = run.loader.epoch(epoch)
    if len(run.batches) == 0:
        raise ValueError(f"{run.train_path}: too few rows for one batch of {cfg.batch_size} "
                         f"({len(run.train_df)} rows, sampler {run.sampler}, {job.world} process(es))")
    objective = objectives._objective(epoch, cfg)
    lr = cosine_lr(cfg.lr, epoch, cfg.epochs)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    run.train_model.train()
    if cfg.freeze_bn:
        freeze_batchnorm(run.model)
    sums: dict[str, float] = {"loss": 0.0, "loss_embed": 0.0, "loss_pair": 0.0}
    n_steps, n_pairs, pending = 0, 0, None
    t0 = time.perf_counter()
    bar = tqdm(loader, desc=f"epoch {epoch}/{cfg.epochs}", file=sys.stderr, mininterval=5.0,
               disable=not (job.progress and job.main), leave=False)
    for step, batch in enumerate(bar, 1):
        done = _train_step(run, batch, objective, (epoch, step))
        if pending is not None:  # the previous step's numbers: by now the device has finished it
            _add_step(run, pending, sums, epoch)
        pending = (step, done)
        n_steps += 1
        n_pairs += batch[0].shape[0]
        if step % 10 == 0:
            bar.set_postfix(loss=f"{sums['loss'] / max(n_steps - 1, 1):.4f}", refresh=False)
    if pending is not None:
        _add_step(run, pending, sums, epoch)
    bar.close()
    train_time = time.perf_counter() - t0
    means = _all_mean([sums[k] / n_steps for k in ("loss", "loss_embed", "loss_pair")], job.world, job.device)
    row: dict[str, Any] = {"epoch": epoch, "objective": objective, "train_loss": means[0],
                           "loss_embed": means[1], "loss_pair": means[2] if run.has_pair else float("nan"),
                           "lr": lr}
    return _EpochResult(row, n_pairs, t0, train_time)


def _train_step(run: _Run, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], objective: str,
                key: tuple[int, int]) -> torch.Tensor:
    """One optimisation step on ``batch`` = (sketches uint8 (B, 1, S, S), photos uint8 (B, C, S, S), labels (B,)),
    normalised on the device (``transforms.normalize_batch``); with ``run.batch_augment`` the batch is the
    training base (2S) and is augmented there first, drawing from a generator seeded by ``(seed, *key, rank)``
    (``key`` = (epoch, step)). Sets ``run.has_pair`` (the model produced pair scores).

    Returns the step's numbers, on the device and not yet read: ``(non-finite flag (max over ranks), loss,
    loss_embed, loss_pair)``. Reading them waits for the device, so the loop reads a step's numbers only
    after it has queued the next step (:func:`_add_step`); a non-finite loss then stops every rank one step
    later, before anything is written."""
    job, device = run.job, run.job.device
    sketch, photo = batch[:2]
    if run.batch_augment is not None:
        sketch, photo = run.batch_augment(sketch.to(device, non_blocking=True), photo.to(device, non_blocking=True),
                                          job.cfg.image_size, step_generator(device, job.cfg.seed, *key, job.rank))
    sketch, photo = (normalize_batch(t, device, run.channels_last) for t in (sketch, photo))
    labels = batch[2].to(device, non_blocking=True)
    with autocast(device, job.cfg.amp):
        out = run.train_model(sketch, photo, labels)
        out, batch_labels = gather_batch(out, labels, job.world)
        loss, parts = objectives.compute_loss(out, batch_labels, job.cfg, objective, job.cfg.symmetric,
                                               job.cfg.pair_weight)
    run.has_pair = "pair_scores" in out
    bad = (~torch.isfinite(loss.detach())).float()
    if job.world > 1:
        dist.all_reduce(bad, op=dist.ReduceOp.MAX)
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    run.scaler.step(run.optimizer)
    run.scaler.update()
    zero = torch.zeros((), device=device)
    return torch.stack([bad, loss.detach().float(), parts["loss_embed"].float(),
                        parts.get("loss_pair", zero).float()])


def _add_step(run: _Run, pending: tuple[int, torch.Tensor], sums: dict[str, float], epoch: int) -> None:
    """Read a finished step's numbers (one host synchronisation) into ``sums``; a non-finite loss on any rank
    raises :class:`NonFiniteLossError` naming the step and the last good checkpoint (nothing of this epoch
    has been written, so that checkpoint is the run's latest)."""
    step, numbers = pending
    bad, loss, embed, pair = numbers.tolist()
    if bad > 0:
        where = f"{run.last_good}" if run.last_good else "none written yet"
        raise NonFiniteLossError(
            f"epoch {epoch}, batch {step}: the loss is not finite ({loss}); training stopped. "
            f"Last good checkpoint: {where}. Try a lower --lr, or turn --amp off.")
    sums["loss"] += loss
    sums["loss_embed"] += embed
    sums["loss_pair"] += pair  # 0 without a pair term; the row shows NaN when the model has no pair scorer
