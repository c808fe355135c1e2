"""Bad command-line arguments (issue 8): one ``sbir CMD: error: ...`` line and status 2, never a traceback.
``--epochs -3``, a missing --train_csv, an unknown backbone, a missing --ckpt and a missing --model_path
for eval are in tests/test_train_cli.py."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from conftest import TINY_TRAIN, one_line_error, run_cli


def _train(capsys, data, log, *extra):
    return run_cli(capsys, ["train", "--data_root", str(data), "--log_dir", str(log), *TINY_TRAIN, *extra])


@pytest.mark.parametrize("flag,value,message", [
    ("--epochs", "0", "--epochs must be >= 1, got 0"),
    ("--batch_size", "1", "--batch_size must be >= 2, got 1"),
    ("--batch_size", "-8", "--batch_size must be >= 2, got -8"),
    ("--image_size", "8", "--image_size must be >= 16, got 8"),
    ("--lr", "0", "--lr must be > 0, got 0.0"),
    ("--lr", "nan", "--lr must be > 0, got nan"),
    ("--temp", "-0.1", "--temp must be > 0, got -0.1"),
    ("--keep_last", "-1", "--keep_last must be >= 0, got -1"),
    ("--num_workers", "-2", "--num_workers must be >= 0, got -2"),
    ("--warmup_epochs", "-1", "--warmup_epochs must be >= 0, got -1"),
    ("--rerank_k", "-5", "--rerank_k must be >= 0, got -5"),
])
def test_out_of_range_number_is_one_line(tiny_shared, tmp_path, capsys, flag, value, message):
    rc, err = _train(capsys, tiny_shared, tmp_path / "run", flag, value)
    assert rc == 2 and message in one_line_error(err)
    assert not (tmp_path / "run").exists()  # refused before anything was written


@pytest.mark.parametrize("argv", [["--epochs", "three"], ["--batch_size", "1.5"], ["--sampler", "balanced"],
                                  ["--no_such_flag"]])
def test_malformed_flag_is_argparse_usage_error(tiny_shared, tmp_path, capsys, argv):
    rc, err = _train(capsys, tiny_shared, tmp_path / "run", *argv)
    assert rc == 2 and "Traceback" not in err and err.strip().splitlines()[-1].startswith("sbir train: error: ")


def test_batch_size_larger_than_the_data_trains_with_smaller_batches(tiny_shared, tmp_path, capsys):
    """Documented: a photo-unique batch holds at most one row per photo, so batches shrink to the 4 photos."""
    rc, err = _train(capsys, tiny_shared, tmp_path / "run", "--batch_size", "1000")
    assert rc == 0, err
    m = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert len(m) == 1 and m["train_loss"].notna().all()


def test_missing_data_root(tmp_path, capsys):
    rc, err = _train(capsys, tmp_path / "nowhere", tmp_path / "run")
    assert rc == 2 and "nowhere: data folder not found" in one_line_error(err)


def test_resume_without_a_checkpoint(tiny_shared, tmp_path, capsys):
    rc, err = _train(capsys, tiny_shared, tmp_path / "run", "--resume")
    assert rc == 2 and "no epoch_XX.pt checkpoint to resume from" in one_line_error(err)


def test_missing_model_path_for_training(tiny_shared, tmp_path, capsys):
    rc, err = _train(capsys, tiny_shared, tmp_path / "run", "--model_path", str(tmp_path / "gone.pth"))
    assert rc == 2 and "gone.pth: --model_path file not found" in one_line_error(err)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04 truncated zip"],
                         ids=["empty", "text", "broken-zip"])
def test_unreadable_checkpoint_for_eval(tiny_shared, tmp_path, capsys, content):
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(content)
    rc, err = run_cli(capsys, ["eval", "--data_root", str(tiny_shared), "--ckpt", str(ckpt), "--no_cuda"])
    line = one_line_error(err)
    assert rc == 2 and "best.pt: not a readable checkpoint" in line


def test_truncated_real_checkpoint_for_eval_and_resume(tiny_shared, tmp_path, capsys):
    run = tmp_path / "run"
    rc, err = _train(capsys, tiny_shared, run)
    assert rc == 0, err
    for name in ("best.pt", "epoch_01.pt"):
        path = run / "checkpoints" / name
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    rc, err = run_cli(capsys, ["eval", "--data_root", str(tiny_shared), "--log_dir", str(run), "--no_cuda"])
    assert rc == 2 and "best.pt: not a readable checkpoint" in one_line_error(err)
    rc, err = _train(capsys, tiny_shared, run, "--resume", "--epochs", "2")
    assert rc == 2 and "epoch_01.pt: not a readable checkpoint" in one_line_error(err)


def test_checkpoint_that_is_not_a_dict_for_eval(tiny_shared, tmp_path, capsys):
    ckpt = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], ckpt)
    rc, err = run_cli(capsys, ["eval", "--data_root", str(tiny_shared), "--ckpt", str(ckpt), "--no_cuda"])
    assert rc == 2 and "list.pt" in one_line_error(err)


@pytest.mark.parametrize("flag,value,message", [("--batch_size", "0", "--batch_size must be >= 1, got 0"),
                                                ("--rerank_k", "-1", "--rerank_k must be >= 0, got -1")])
def test_eval_out_of_range_number(tiny_shared, tmp_path, capsys, flag, value, message):
    rc, err = run_cli(capsys, ["eval", "--data_root", str(tiny_shared), "--ckpt", str(tmp_path / "x.pt"), flag, value])
    assert rc == 2 and message in one_line_error(err)


def test_existing_run_is_not_overwritten_silently(tiny_shared, tmp_path, capsys):
    rc, err = _train(capsys, tiny_shared, tmp_path / "run")
    assert rc == 0, err
    before = (tmp_path / "run" / "checkpoints" / "epoch_01.pt").read_bytes()
    rc, err = _train(capsys, tiny_shared, tmp_path / "run")
    assert rc == 2 and "already holds a run" in one_line_error(err)
    assert (tmp_path / "run" / "checkpoints" / "epoch_01.pt").read_bytes() == before


def test_missing_checkpoint_under_log_dir_says_where_it_looked(tiny_shared, tmp_path, capsys):
    (tmp_path / "run").mkdir()
    rc, err = run_cli(capsys, ["eval", "--data_root", str(tiny_shared), "--log_dir", str(tmp_path / "run")])
    line = one_line_error(err)
    assert rc == 2 and "checkpoints/best.pt: checkpoint not found (nor under --log_dir" in line
