"""Faults (issue 8): a training run SIGKILLed at several points and resumed ends exactly like an uninterrupted
one; checkpoints are written atomically (a full disk keeps the previous one); crafted pickles are refused as
checkpoints and as QMUL stroke files, with a clear message and without running their code."""

from __future__ import annotations

import dataclasses
import errno
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import TINY_TRAIN, make_tiny_dataset, one_line_error, run_cli, subprocess_env

from sbir_utils import engine
from sbir_utils.config import TrainConfig
from sbir_utils.data import safe_pickle
from sbir_utils.data.safe_pickle import UnsafePickleError
from sbir_utils.fileio import atomic_write_text

TIMING = ["pairs_per_s", "epoch_time_s", "wall_time_s"]
EPOCHS = 5
# 12 training photos x 2 sketches in batches of 4: 6 steps, about 0.15 s per epoch on one core.
FLAGS = ["--profile", "smoke", "--backbone", "test_resnet", "--image_size", "32", "--epochs", str(EPOCHS),
         "--batch_size", "4", "--embed_dim", "16", "--lr", "1e-3", "--no_progress", "--no_cuda", "--keep_last", "2"]
# The kill points are drawn at random; set SBIR_KILL_SEED to explore others (the seed is in the failure message).
KILL_SEED = int(os.environ.get("SBIR_KILL_SEED", "8"))


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("faults") / "data", photos=(12, 3, 3))


def _metrics(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "metrics.csv").drop(columns=TIMING)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def _epochs_on_disk(run: Path) -> set[str]:
    return {p.name for p in (run / "checkpoints").glob("epoch_*.pt")} if (run / "checkpoints").is_dir() else set()


def _run_and_kill(cmd: list[str], run: Path, wait_for: str, delay: float, log: Path) -> tuple[int, set[str]]:
    """Start ``cmd``; once ``wait_for`` happens ("config" written, or a "checkpoint" not there at the start),
    wait ``delay`` s and SIGKILL it. Returns (exit status, epoch checkpoints on disk after the kill)."""
    before = _epochs_on_disk(run)
    config = run / "config.json"
    config_mtime = config.stat().st_mtime_ns if config.exists() else None
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out, env=subprocess_env(), cwd=run.parent)
        deadline = time.monotonic() + 60
        try:
            while proc.poll() is None and time.monotonic() < deadline:
                if wait_for == "config":
                    hit = config.exists() and config.stat().st_mtime_ns != config_mtime
                else:
                    hit = bool(_epochs_on_disk(run) - before)
                if hit:
                    time.sleep(delay)
                    break
                time.sleep(0.005)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
        finally:
            rc = proc.wait(timeout=30)
    return rc, _epochs_on_disk(run)


def test_sigkill_at_several_points_then_resume_matches_an_uninterrupted_run(data, tmp_path, capsys):
    rng = random.Random(KILL_SEED)
    ref = tmp_path / "reference"
    rc, err = run_cli(capsys, ["train", "--data_root", str(data), "--log_dir", str(ref), *FLAGS])
    assert rc == 0, err

    run = tmp_path / "killed"
    run.mkdir()
    log = tmp_path / "children.log"
    base = [sys.executable, "-m", "sbir_utils", "train", "--data_root", str(data), "--log_dir", str(run), *FLAGS]
    story = [f"SBIR_KILL_SEED={KILL_SEED}"]

    # 1. Killed before the first checkpoint: --resume says so in one line, and a fresh start is allowed.
    rc, on_disk = _run_and_kill(base, run, "config", 0.0, log)
    story.append(f"killed after config.json: rc {rc}, {sorted(on_disk)}")
    if not on_disk:
        rc, err = run_cli(capsys, ["train", "--data_root", str(data), "--log_dir", str(run), *FLAGS, "--resume"])
        assert rc == 2 and "no epoch_XX.pt checkpoint to resume from" in one_line_error(err)
    # 2., 3. Killed at a random moment after the next checkpoint appears (mid-epoch or mid-save), twice.
    killed = 0
    for i in range(2):
        cmd = base + (["--resume"] if _epochs_on_disk(run) else [])
        rc, on_disk = _run_and_kill(cmd, run, "checkpoint", rng.uniform(0.0, 0.12), log)
        story.append(f"kill {i + 2}: rc {rc}, {sorted(on_disk)}")
        killed += rc == -signal.SIGKILL
    assert killed >= 1, f"no run was actually interrupted: {story}"
    assert f"epoch_{EPOCHS:02d}.pt" not in _epochs_on_disk(run), story
    # 4. Resume to the end (in this process: it is not killed, and that saves a start-up of torch).
    rc, err = run_cli(capsys, ["train", "--data_root", str(data), "--log_dir", str(run), *FLAGS, "--resume"])
    assert rc == 0, f"{story}\n{err[-3000:]}"

    print("; ".join(story))  # shown with -s or on failure
    pd.testing.assert_frame_equal(_metrics(run), _metrics(ref), obj=f"metrics.csv ({story})")
    last = f"epoch_{EPOCHS:02d}.pt"
    assert _same_weights(run / "checkpoints" / last, ref / "checkpoints" / last), story
    assert _same_weights(run / "checkpoints" / "best.pt", ref / "checkpoints" / "best.pt"), story
    visible = sorted(p.name for p in (run / "checkpoints").iterdir() if not p.name.startswith("."))
    assert visible == sorted(p.name for p in (ref / "checkpoints").iterdir()), story
    # A kill during a save may leave a hidden temporary file; never a half-written checkpoint under a real name.
    assert all(p.suffix == ".tmp" for p in (run / "checkpoints").iterdir() if p.name.startswith(".")), story


class _Killed(BaseException):
    """Stands in for SIGKILL at an exact point (nothing in the engine catches a BaseException)."""


def test_death_right_after_the_first_checkpoint_write_of_an_improving_epoch_keeps_best_pt_right(
        data, tmp_path, monkeypatch):
    """Between the two files an improving epoch writes (best.pt and epoch_XX.pt), a killed run must not resume
    with a best.pt older than the best epoch its history records."""
    # Validation mAP of this run: 0.72, 0.75, 0.72, 0.83 (epochs 2 and 4 improve).
    cfg = TrainConfig(model="convnext_infonce", backbone="test_convnext", image_size=32, embed_dim=16, epochs=4,
                      batch_size=4, lr=3e-3, loss="infonce", seed=42, keep_last=0, select_metric="mAP@all")
    kw = dict(progress=False)
    ref = engine.fit(cfg, data, tmp_path / "ref", **kw)
    improving = [int(e) for e, b in zip(*pd.read_csv(tmp_path / "ref" / "metrics.csv")[["epoch", "best"]].T.values)
                 if b and e >= 2]
    assert improving, "the reference run must improve after epoch 1 for this test to mean anything"
    target = improving[-1]

    real = engine.save_checkpoint

    def dies_after_first_write(state, path):
        real(state, path)
        if state["epoch"] == target:
            raise _Killed(path.name)

    monkeypatch.setattr(engine.checkpoints, "save_checkpoint", dies_after_first_write)  # as run_folder calls it
    with pytest.raises(_Killed):
        engine.fit(cfg, data, tmp_path / "run", **kw)
    monkeypatch.setattr(engine.checkpoints, "save_checkpoint", real)
    resumed = engine.fit(cfg, data, tmp_path / "run", resume=True, **kw)
    assert resumed["best_epoch"] == ref["best_epoch"] == target
    best = torch.load(tmp_path / "run" / "checkpoints" / "best.pt", weights_only=True)
    assert best["epoch"] == target
    assert _same_weights(tmp_path / "run" / "checkpoints" / "best.pt", tmp_path / "ref" / "checkpoints" / "best.pt")


# ---- atomic writes ----------------------------------------------------------------------------------------

def _disk_full(obj, f, *args, **kwargs):
    """torch.save on a full disk."""
    with open(f, "wb") as fh:  # a partial write first, as a real full disk would leave
        fh.write(b"PK\x03\x04 partial")
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "epoch_01.pt"
    engine.save_checkpoint({"epoch": 1, "model": {"w": torch.ones(3)}}, path)
    before = path.read_bytes()
    monkeypatch.setattr(torch, "save", _disk_full)
    with pytest.raises(OSError) as info:
        engine.save_checkpoint({"epoch": 2, "model": {"w": torch.zeros(3)}}, path)
    assert info.value.errno == errno.ENOSPC and "epoch_01.pt: could not write the checkpoint" in str(info.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["epoch_01.pt"]  # no temporary file left behind
    assert engine.load_checkpoint(path)["epoch"] == 1


def test_full_disk_during_training_is_one_line_and_resume_then_matches(data, tmp_path, monkeypatch, capsys):
    flags = [*TINY_TRAIN, "--epochs", "2", "--keep_last", "0"]
    rc, err = run_cli(capsys, ["train", "--data_root", str(data), "--log_dir", str(tmp_path / "ref"), *flags])
    assert rc == 0, err
    real_save = torch.save

    def full_at_epoch_2(obj, f, *a, **k):
        if "epoch_02" in str(f):
            return _disk_full(obj, f)
        return real_save(obj, f, *a, **k)

    # An improving epoch 2 makes epoch_02.pt a hard link to best.pt (or a copy of it): the disk is full there too.
    real_link, real_copy = os.link, shutil.copyfile

    def link_full_at_epoch_2(src, dst, *a, **k):
        if "epoch_02" in str(dst):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_link(src, dst, *a, **k)

    def copy_full_at_epoch_2(src, dst, *a, **k):
        if "epoch_02" in str(dst):
            return _disk_full(None, dst)
        return real_copy(src, dst, *a, **k)

    run = tmp_path / "run"
    monkeypatch.setattr(torch, "save", full_at_epoch_2)
    monkeypatch.setattr(os, "link", link_full_at_epoch_2)
    monkeypatch.setattr(shutil, "copyfile", copy_full_at_epoch_2)
    rc, err = run_cli(capsys, ["train", "--data_root", str(data), "--log_dir", str(run), *flags])
    line = one_line_error(err)
    assert rc == 1 and "epoch_02.pt: could not write the checkpoint (No space left on device)" in line
    assert engine.load_checkpoint(run / "checkpoints" / "epoch_01.pt")["epoch"] == 1
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
    assert pd.read_csv(run / "metrics.csv")["epoch"].tolist() == [1]
    monkeypatch.setattr(torch, "save", real_save)  # space freed
    monkeypatch.setattr(os, "link", real_link)
    monkeypatch.setattr(shutil, "copyfile", real_copy)
    rc, err = run_cli(capsys, ["train", "--data_root", str(data), "--log_dir", str(run), *flags, "--resume"])
    assert rc == 0, err
    pd.testing.assert_frame_equal(_metrics(run), _metrics(tmp_path / "ref"))


def test_failed_text_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "metrics.csv"
    atomic_write_text(target, "epoch\n1\n")

    def half(p):
        p.write_text("epoch\n1\n2")
        raise OSError(errno.ENOSPC, "No space left on device")

    from sbir_utils.fileio import atomic_write

    with pytest.raises(OSError):
        atomic_write(target, half)
    assert target.read_text() == "epoch\n1\n" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv"]


# ---- crafted pickles --------------------------------------------------------------------------------------

class _RunsCommand:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _protocol0_system(marker: Path) -> bytes:
    """A hand-written protocol-0 pickle calling os.system (what an old, hostile file would hold)."""
    return f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()


def _evil_checkpoints(tmp_path: Path, marker: Path) -> dict[str, Path]:
    zipped = tmp_path / "zipped.pt"
    torch.save({"model": {"w": torch.ones(1)}, "config": _RunsCommand(marker)}, zipped)
    legacy = tmp_path / "legacy.pt"
    legacy.write_bytes(_protocol0_system(marker))
    return {"zipped": zipped, "legacy": legacy}


@pytest.mark.parametrize("kind", ["zipped", "legacy"])
def test_code_running_checkpoint_is_refused_by_load_checkpoint(tmp_path, kind):
    marker = tmp_path / "pwned"
    path = _evil_checkpoints(tmp_path, marker)[kind]
    with pytest.raises(ValueError) as info:
        engine.load_checkpoint(path)
    msg = str(info.value)
    assert f"{path.name}: not a readable checkpoint" in msg and "system" in msg
    assert not marker.exists()


def test_code_running_checkpoint_is_refused_by_eval_train_and_resume(data, tmp_path, capsys):
    marker = tmp_path / "pwned"
    evil = _evil_checkpoints(tmp_path, marker)["zipped"]
    rc, err = run_cli(capsys, ["eval", "--data_root", str(data), "--ckpt", str(evil), "--no_cuda"])
    assert rc == 2 and "zipped.pt: not a readable checkpoint" in one_line_error(err)
    rc, err = run_cli(capsys, ["train", "--data_root", str(data), "--log_dir", str(tmp_path / "a"), *TINY_TRAIN,
                               "--model_path", str(evil)])
    assert rc == 2 and "zipped.pt: not a readable checkpoint" in one_line_error(err)
    (tmp_path / "b" / "checkpoints").mkdir(parents=True)
    (tmp_path / "b" / "checkpoints" / "epoch_01.pt").write_bytes(evil.read_bytes())
    rc, err = run_cli(capsys, ["train", "--data_root", str(data), "--log_dir", str(tmp_path / "b"), *TINY_TRAIN,
                               "--epochs", "2", "--resume"])
    assert rc == 2 and "epoch_01.pt: not a readable checkpoint" in one_line_error(err)
    assert not marker.exists()


def test_hand_written_protocol0_stroke_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "ShoeV2_Coordinate"
    path.write_bytes(_protocol0_system(marker))
    with pytest.raises(UnsafePickleError, match=r"ShoeV2_Coordinate: refused to load global '(os|posix)\.system'"):
        safe_pickle.load(path)
    assert not marker.exists()


def test_python2_builtin_eval_is_mapped_and_refused(tmp_path):
    path = tmp_path / "ChairV2_Coordinate"
    path.write_bytes(b"c__builtin__\neval\n(S'1+1'\ntR.")
    with pytest.raises(UnsafePickleError, match=r"refused to load global 'builtins\.eval'"):
        safe_pickle.load(path)


def test_stroke_pickle_refused_through_sbir_index(tmp_path, capsys):
    marker = tmp_path / "pwned"
    raw = tmp_path / "ShoeV2"
    raw.mkdir()
    (raw / "ShoeV2_Coordinate").write_bytes(pickle.dumps({"/train/a_1": _RunsCommand(marker)}))
    rc, err = run_cli(capsys, ["index", "qmul", str(raw), "--out", str(tmp_path / "idx")])
    line = one_line_error(err)
    assert rc == 2 and "ShoeV2_Coordinate: refused to load global" in line and "system" in line
    assert not marker.exists() and not (tmp_path / "idx" / "index_train.csv").exists()


def test_dataclass_config_round_trip_is_plain_data():
    """What the engine stores as ``config`` loads with weights_only (no pickled classes in a checkpoint)."""
    import io

    buf = io.BytesIO()
    torch.save({"config": dataclasses.asdict(TrainConfig())}, buf)
    buf.seek(0)
    assert torch.load(buf, weights_only=True)["config"]["model"] == "aafg"
