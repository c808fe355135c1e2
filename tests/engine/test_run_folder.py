"""`engine.run_folder`: an old run is refused unless overwritten (then its files go), the best epoch is chosen
on the selection metric (a NaN never wins but replaces a NaN best), and rotation keeps the newest epochs."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from sbir_utils.engine import run_folder


def _job(tmp_path, overwrite=False, main=True):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    return SimpleNamespace(run_dir=run_dir, ckpt_dir=run_dir / "checkpoints", overwrite=overwrite, main=main)


def test_an_old_run_is_refused_unless_overwritten_then_its_files_go(tmp_path):
    job = _job(tmp_path)
    run_folder._clear_old_run(job)  # an empty folder is a fresh run
    for name in ("checkpoints/best.pt", "checkpoints/epoch_01.pt", "metrics.csv", "model.pth", "tb/events",
                 "config.json", "notes.txt"):
        (job.run_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (job.run_dir / name).write_text("x")
    with pytest.raises(FileExistsError, match=r"already holds a run \(best.pt, ...\)"):
        run_folder._clear_old_run(job)
    run_folder._clear_old_run(_job(tmp_path, overwrite=True, main=False))  # other ranks only check
    assert (job.ckpt_dir / "best.pt").exists() and (job.run_dir / "tb").is_dir()
    run_folder._clear_old_run(_job(tmp_path, overwrite=True))
    assert sorted(p.name for p in job.run_dir.rglob("*")) == ["checkpoints", "config.json", "notes.txt"]


def test_best_epoch_on_the_selection_metric(tmp_path):
    run = SimpleNamespace(select_metric="mAP@all", best={"metric": "mAP@all", "value": None, "epoch": None})
    rows = [{"val_mAP@all": v, "val_acc@1": 0.5} for v in (float("nan"), 0.4, float("nan"), 0.3, 0.6)]
    improved = [run_folder._update_best(run, row, epoch) for epoch, row in enumerate(rows, start=1)]
    assert improved == [True, True, False, False, True] and [r["best"] for r in rows] == improved
    assert run.best == {"metric": "mAP@all", "value": 0.6, "epoch": 5}
    run.best = {"metric": "mAP@all", "value": math.nan, "epoch": 1}
    assert run_folder._update_best(run, {"val_mAP@all": 0.1}, 2) and run.best["epoch"] == 2
    with pytest.raises(ValueError, match=r"select_metric 'mAP@all' is not a validation metric.*\['acc@1'\]"):
        run_folder._update_best(run, {"val_acc@1": 0.5}, 3)


def test_rotation_keeps_the_newest_epochs_by_number(tmp_path):
    job = _job(tmp_path)
    for name in ("best.pt", "epoch_02.pt", "epoch_09.pt", "epoch_10.pt", "epoch_100.pt", "epoch_03.pt"):
        (job.ckpt_dir / name).write_text("x")
    run_folder._rotate_checkpoints(SimpleNamespace(job=job), keep_last=2)
    assert sorted(p.name for p in job.ckpt_dir.iterdir()) == ["best.pt", "epoch_10.pt", "epoch_100.pt"]
