"""The run folder (layout in the package docstring): clearing an old run, ``config.json`` and the
TensorBoard writer, rank 0's end of every epoch (validation row, best epoch, ``best.pt`` / ``model.pth`` /
``epoch_XX.pt`` and their rotation, ``metrics.csv``, TensorBoard, the progress line) and the summary."""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..config import core_fields
from ..fileio import atomic_path, atomic_write, atomic_write_text
from . import checkpoints
from .inference import retrieval_metrics
from .rng import rng_state
from .state import _EpochResult, _Job, _Run


def _clear_old_run(job: _Job) -> None:
    """A fresh run: refuse a folder holding one unless ``overwrite``; then rank 0 deletes its checkpoints,
    metrics.csv, model.pth and tb/. Every rank checks, so that all fail together."""
    old = sorted(job.ckpt_dir.glob("*.pt")) + [p for p in (job.run_dir / "metrics.csv", job.run_dir / "model.pth")
                                               if p.exists()]
    if old and not job.overwrite:
        raise FileExistsError(f"{job.run_dir}: already holds a run ({old[0].name}, ...); resume it, choose another "
                              "log dir, or overwrite it")
    for p in old if job.main else []:
        p.unlink(missing_ok=True)
    if job.main and (job.run_dir / "tb").is_dir():
        import shutil

        shutil.rmtree(job.run_dir / "tb")


def _open_log(run: _Run) -> Any:
    """Rank 0: write ``config.json`` and open the TensorBoard writer (None elsewhere, or without tensorboard)."""
    job = run.job
    writer = None
    if job.main:
        job.run_dir.mkdir(parents=True, exist_ok=True)
        resolved = {"train": core_fields(job.cfg), "options": run.options, "device": str(job.device)}
        atomic_write_text(job.run_dir / "config.json", json.dumps(resolved, indent=2, default=str) + "\n")
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(job.run_dir / "tb"), purge_step=run.start_epoch)
        except ImportError:  # pragma: no cover - tensorboard is a pinned dependency
            warnings.warn("tensorboard is not installed: no TensorBoard logs", stacklevel=2)
    return writer


def _end_epoch(run: _Run, epoch: int, res: _EpochResult) -> None:
    """Rank 0 after training ``epoch``: validate, choose the best epoch, write checkpoints and logs."""
    row = res.row
    _validate(run, res)
    improved = _update_best(run, row, epoch)
    run.history.append(row)
    _save_checkpoints(run, epoch, improved)
    _log_epoch(run, row, epoch, improved)


def _validate(run: _Run, res: _EpochResult) -> None:
    """Add the validation metrics (``val_*``, ``val_s2_*``, ``val_mean_cos``) and throughput / timing to
    ``res.row``."""
    job, cfg, row = run.job, run.job.cfg, res.row
    val = retrieval_metrics(run.model, run.val_df, cfg.image_size, max(cfg.batch_size, 32), job.device, cfg.rerank_k,
                            cfg.amp, cfg.num_workers, photo_mode=cfg.photo_mode, crop=cfg.crop)
    row.update({f"val_{k}": v for k, v in val["stage1"].items() if not k.startswith("n_")})
    if val["stage2"] is not None:
        row.update({f"val_s2_{k}": v for k, v in val["stage2"].items()
                    if not k.startswith("n_") and k != "rerank_k"})
    row["val_mean_cos"] = val["mean_cos"]
    row["pairs_per_s"] = res.n_pairs * job.world / max(res.train_time, 1e-9)
    row["epoch_time_s"] = time.perf_counter() - res.t0
    row["wall_time_s"] = run.prior_wall + time.perf_counter() - run.t_start


def _update_best(run: _Run, row: dict[str, Any], epoch: int) -> bool:
    """Whether ``epoch`` beats the best so far on ``select_metric`` (NaN never does, but replaces a NaN best);
    updates ``run.best`` and sets ``row["best"]``."""
    select_metric = run.select_metric
    value = row.get(f"val_{select_metric}")
    if value is None:
        raise ValueError(f"select_metric {select_metric!r} is not a validation metric; choose one of "
                         f"{sorted(k[4:] for k in row if k.startswith('val_'))}")
    best = run.best
    improved = best["value"] is None or (not math.isnan(value) and (math.isnan(best["value"]) or value > best["value"]))
    if improved:
        run.best = {"metric": select_metric, "value": float(value), "epoch": epoch}
    row["best"] = improved
    return improved


def _save_checkpoints(run: _Run, epoch: int, improved: bool) -> None:
    """``best.pt`` (and ``model.pth``) when ``improved``, then ``epoch_XX.pt`` (then a hard link to ``best.pt``);
    keep the newest ``keep_last``."""
    job, cfg = run.job, run.job.cfg
    state = {"format": checkpoints.CKPT_FORMAT, "epoch": epoch, "model": run.model.state_dict(),
             "optimizer": run.optimizer.state_dict(),
             "scheduler": {"kind": "cosine", "base_lr": cfg.lr, "epochs": cfg.epochs, "next_epoch": epoch + 1},
             "scaler": run.scaler.state_dict(), "rng": rng_state(), "config": core_fields(cfg),
             "options": run.options, "history": run.history, "best": run.best}
    # best.pt (and model.pth) before epoch_XX.pt: a run killed in between resumes from the previous
    # epoch and writes them again, instead of keeping a best.pt older than the "best" it records.
    epoch_path = job.ckpt_dir / f"epoch_{epoch:02d}.pt"
    if improved:
        best = job.ckpt_dir / "best.pt"
        checkpoints.save_checkpoint(state, best)
        if cfg.save_state_dict:
            with atomic_path(job.run_dir / "model.pth") as tmp:
                torch.save(run.model.state_dict(), tmp)
        # The same state: epoch_XX.pt is a second name of best.pt's file (a hard link; a copy of its bytes
        # where links are unsupported), not a second copy on disk. A later best.pt is a new file (atomic
        # rename), so this epoch's file keeps its bytes; rotation unlinks only the epoch name.
        run.last_good = checkpoints.link_checkpoint(best, epoch_path)
    else:
        run.last_good = checkpoints.save_checkpoint(state, epoch_path)
    if cfg.keep_last > 0:
        _rotate_checkpoints(run, cfg.keep_last)


def _rotate_checkpoints(run: _Run, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` ``epoch_XX.pt`` files."""
    found = sorted(run.job.ckpt_dir.glob("epoch_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    for old in found[:-keep_last]:
        old.unlink()


def _log_epoch(run: _Run, row: dict[str, Any], epoch: int, improved: bool) -> None:
    """Rewrite ``metrics.csv``, add the row's numbers to TensorBoard and print one line to stderr."""
    frame = pd.DataFrame(run.history)
    atomic_write(run.job.run_dir / "metrics.csv", lambda p, f=frame: f.to_csv(p, index=False, lineterminator="\n"))
    if run.writer is not None:
        for k, v in row.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "epoch":
                run.writer.add_scalar(k.replace("val_", "val/").replace("train_", "train/"), v, epoch)
        run.writer.flush()
    s2 = f" s2 acc@1 {row['val_s2_acc@1']:.3f}" if "val_s2_acc@1" in row else ""
    print(f"epoch {epoch}/{run.job.cfg.epochs} [{row['objective']}] loss {row['train_loss']:.4f} | val acc@1 "
          f"{row['val_acc@1']:.3f} acc@10 {row['val_acc@10']:.3f} mAP {row['val_mAP@all']:.3f}{s2} "
          f"mean cos {row['val_mean_cos']:.2f} | {row['pairs_per_s']:.1f} pairs/s "
          f"{row['epoch_time_s']:.0f} s" + (" *" if improved else ""), file=sys.stderr, flush=True)


def _summary(run: _Run) -> dict[str, Any]:
    """``fit``'s return value: run_dir, rank, world_size and, on rank 0, the best and final epochs."""
    job = run.job
    summary: dict[str, Any] = {"run_dir": str(job.run_dir), "rank": job.rank, "world_size": job.world}
    if job.main:
        history, best, last_good = run.history, run.best, run.last_good
        final = history[-1] if history else {}
        summary.update(
            best_metric=best["metric"], best_value=best["value"], best_epoch=best["epoch"],
            best_checkpoint=str(job.ckpt_dir / "best.pt"), last_checkpoint=str(last_good) if last_good else None,
            epochs_run=len(history), final={k: v for k, v in final.items() if k.startswith("val_")},
            pairs_per_s=float(np.mean([h["pairs_per_s"] for h in history])) if history else float("nan"),
            wall_time_s=final.get("wall_time_s", 0.0), options=run.options)
    return summary
