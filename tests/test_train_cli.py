"""`sbir train` (`train_cli`), and `sbir eval` on what it trained: the seeds' flags, the run folder, JSON output,
one-line errors. (`sbir eval` alone: tests/test_eval_cli.py.)"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from sbir_utils import cli, train_cli
from sbir_utils.models import ConvNeXtInfoNCE
from tests.helpers import TINY_TRAIN_ARGS as TINY
from tests.helpers import make_fscoco, make_tiny_dataset

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("cli_data"))


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    train_cli.add_arguments(parser)
    return parser.parse_args(argv)


def test_aafg_seed_flags_verbatim(tmp_path):
    argv = ("--data_root DATA/Sketchy --train_csv index_train.csv --val_csv index_val.csv --log_dir runs/Sketchy "
            "--epochs 60 --batch_size 32 --lr 1e-4 --margin 0.2 --embed_dim 512 --attn_reduction 1 --amp").split()
    cfg = train_cli.resolve_config(_parse(argv))
    assert (cfg.model, cfg.epochs, cfg.batch_size, cfg.lr, cfg.margin, cfg.embed_dim, cfg.attn_reduction,
            cfg.amp) == ("aafg", 60, 32, 1e-4, 0.2, 512, 1, True)
    cfg = train_cli.resolve_config(_parse(argv + ["--no_self_attention", "--no_cross_attention", "--profile", "full"]))
    assert not cfg.self_attention and not cfg.cross_attention and cfg.backbone == "resnet50"


def test_convnext_seed_flags(tmp_path):
    (tmp_path / "fscoco" / "unseen-file").mkdir(parents=True)
    argv = ("--model convnext_infonce --data_root " + str(tmp_path / "fscoco") + " --epochs 10 --lr 1e-4 "
            "--temp 0.05 --batch_size 60 --seed 42 --val_unseen --save --no_cuda --model_path m.pth").split()
    args = _parse(argv)
    cfg = train_cli.resolve_config(args)
    assert (cfg.model, cfg.loss, cfg.temperature, cfg.batch_size, cfg.seed) == ("convnext_infonce", "infonce",
                                                                               0.05, 60, 42)
    assert args.save and args.no_cuda and args.model_path == "m.pth"
    root = cli.resolve_data_root(args.data_root, args.split, args.val_unseen)
    assert root == tmp_path / "fscoco" / "unseen-file"
    with pytest.raises(FileNotFoundError, match="unseen-user"):
        cli.resolve_data_root(args.data_root, "unseen-user")


def test_train_then_eval_in_process(data, tmp_path, capsys):
    log = tmp_path / "run"
    rc = cli.main(["train", "--data_root", str(data), "--log_dir", str(log), *TINY, "--save", "--rerank_k", "2"])
    assert rc == 0, capsys.readouterr().err
    assert (log / "checkpoints" / "best.pt").exists() and (log / "metrics.csv").exists()
    assert (log / "model.pth").exists()  # --save: plain state dict of the best model
    out_json = tmp_path / "test.json"
    rc = cli.main(["eval", "--data_root", str(data), "--test_csv", "index_test.csv", "--ckpt", "checkpoints/best.pt",
                   "--log_dir", str(log), "--batch_size", "64", "--json", str(out_json)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "stage1" in captured.out and "stage2" in captured.out
    res = json.loads(out_json.read_text())
    assert res["stage1"]["n_queries"] == 8 and res["rerank_k"] == 2
    assert res["stage1"]["P@100"] is None  # NaN (gallery of 4) written as null: strict JSON
    page = log / "eval_index_test" / "result.html"  # the seed's visual result page
    assert page.exists() and page.read_text().count("thumbs/") >= 8 + 8 * 4  # 8 query rows, top-4 photos each
    # Resume to a longer schedule from the CLI.
    rc = cli.main(["train", "--data_root", str(data), "--log_dir", str(log), *TINY[:-3], "--epochs", "2",
                   "--batch_size", "8", "--embed_dim", "16", "--no_progress", "--rerank_k", "2", "--resume"])
    assert rc == 0, capsys.readouterr().err
    assert (log / "checkpoints" / "epoch_02.pt").exists()


def test_eval_loads_a_seed_format_state_dict(data, tmp_path, capsys):
    torch.manual_seed(0)
    path = tmp_path / "model_normal.pth"
    torch.save(ConvNeXtInfoNCE("convnext_small").state_dict(), path)
    rc = cli.main(["eval", "--model", "convnext_infonce", "--backbone", "convnext_small", "--image_size", "32",
                   "--data_root", str(data), "--model_path", str(path), "--no_cuda"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "stage1" in captured.out and "stage2" not in captured.out
    # a second weights file in the same folder gets its own result page; the first one's stays
    torch.save(ConvNeXtInfoNCE("convnext_small").state_dict(), tmp_path / "model_unseen.pth")
    rc = cli.main(["eval", "--model", "convnext_infonce", "--backbone", "convnext_small", "--image_size", "32",
                   "--data_root", str(data), "--model_path", str(tmp_path / "model_unseen.pth"), "--no_cuda"])
    assert rc == 0, capsys.readouterr().err
    pages = sorted(p.parent.name for p in tmp_path.glob("eval_*/result.html"))
    assert pages == ["eval_model_normal_index_test", "eval_model_unseen_index_test"]
    # without --backbone the default profile's (cpu: tf_efficientnet_lite0) does not fit: the error names --profile full
    rc = cli.main(["eval", "--model", "convnext_infonce", "--image_size", "32", "--data_root", str(data),
                   "--model_path", str(path), "--no_cuda"])
    err = capsys.readouterr().err
    assert rc == 2 and "does not fit" in err and "need --profile full" in err


@pytest.mark.parametrize("argv,message", [
    (["train", "--epochs", "-3"], "--epochs must be >= 1"),
    (["train", "--train_csv", "nope.csv"], "nope.csv: index file not found"),
    (["train", "--backbone", "no_such_net"], "unknown backbone"),
    (["eval", "--ckpt", "missing/best.pt"], "missing/best.pt: checkpoint not found"),
    (["eval", "--test_csv", "nope.csv", "--model_path", "nope.pth"], "nope.pth: --model_path file not found"),
])
def test_bad_arguments_give_one_line_and_status_2(data, tmp_path, capsys, argv, message):
    extra = ["--log_dir", str(tmp_path / "run"), *TINY[:2]] if argv[0] == "train" else []
    rc = cli.main([argv[0], "--data_root", str(data), *argv[1:], *extra])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_python_dash_m_entry_point(data, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    log = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "sbir_utils", "train", "--data_root", str(data), "--log_dir",
                           str(log), *TINY, "--model", "convnext_infonce", "--backbone", "test_convnext"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "best acc@1" in proc.stdout and (log / "checkpoints" / "epoch_01.pt").exists()


def test_train_and_eval_on_a_raw_fscoco_folder_index_it_once_and_say_so(tmp_path, capsys):
    """The ConvNeXt seed's workflow: the extracted FS-COCO folder given as --data_root."""
    raw = make_fscoco(tmp_path / "fscoco", users=4, per_user=5)
    convnext = [*TINY, "--model", "convnext_infonce", "--backbone", "test_convnext"]
    rc = cli.main(["train", "--data_root", str(raw), "--log_dir", str(tmp_path / "run"), *convnext])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    home = raw / ".sbir-index" / "fscoco-normal"
    line = f"sbir train: {raw} is FS-COCO (images/ + raster_sketches/); indexed it with 'sbir index fscoco --split normal' into {home}"
    assert line in captured.err and (home / "index_train.csv").is_file()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["options"]["data_root"] == str(home)
    rc = cli.main(["eval", "--data_root", str(raw), "--log_dir", str(tmp_path / "run"), "--no_html"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert f"sbir eval: {raw} is FS-COCO (images/ + raster_sketches/); reusing its index in {home}" in captured.err
    assert "5 queries" in captured.out  # the normal split's test ids (every 4th of 20)


def test_a_folder_that_is_neither_an_index_nor_a_raw_layout_is_named(tmp_path, capsys):
    (tmp_path / "stuff").mkdir()
    rc = cli.main(["train", "--data_root", str(tmp_path / "stuff"), "--log_dir", str(tmp_path / "run"), *TINY])
    err = capsys.readouterr().err
    assert rc == 2 and "stuff: no index_train.csv here, and not a raw layout" in err and "data_templates/" in err


def test_missing_files_stop_training_before_it_starts_unless_skip_missing(tmp_path, capsys):
    data = make_tiny_dataset(tmp_path / "data")
    gone = pd.read_csv(data / "index_train.csv")["path_sketch"].iloc[0]
    (data / gone).unlink()
    run = tmp_path / "run"
    rc = cli.main(["train", "--data_root", str(data), "--log_dir", str(run), *TINY])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and "UserWarning" not in err
    assert f"{data / 'index_train.csv'}: 1 row(s) name 1 missing" in err and "--skip_missing" in err
    assert f"path_sketch '{gone}': missing file" in err
    assert not (run / "checkpoints").exists()  # stopped before training
    val_gone = pd.read_csv(data / "index_val.csv")["path_image"].iloc[0]
    (data / val_gone).rename(data / (val_gone + ".moved"))
    rc = cli.main(["train", "--data_root", str(data), "--log_dir", str(run), *TINY])
    lines = capsys.readouterr().err.splitlines()
    assert rc == 2 and lines[1].startswith(f"  {data / 'index_train.csv'}: 1 row(s)")  # one error, both files
    assert lines[2].startswith(f"  {data / 'index_val.csv'}: 2 row(s) name 1 missing") and len(lines) == 6
    (data / (val_gone + ".moved")).rename(data / val_gone)
    rc = cli.main(["train", "--data_root", str(data), "--log_dir", str(run), *TINY, "--skip_missing"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "skipped 1 rows with missing or undecodable files" in captured.err
    assert '--skip_missing: rows left out {"train": {"rows with missing or undecodable files": 1}' in captured.out
    options = json.loads((run / "config.json").read_text())["options"]
    assert options["skipped_rows"] == {"train": {"rows with missing or undecodable files": 1}, "val": {}}
    test_gone = pd.read_csv(data / "index_test.csv")["path_image"].iloc[0]
    (data / test_gone).unlink()
    rc = cli.main(["eval", "--data_root", str(data), "--log_dir", str(run), "--no_html"])
    err = capsys.readouterr().err
    assert rc == 2 and f"{data / 'index_test.csv'}: " in err and f"path_image '{test_gone}': missing file" in err
    rc = cli.main(["eval", "--data_root", str(data), "--log_dir", str(run), "--no_html", "--skip_missing"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "--skip_missing: rows left out {\"rows with missing or undecodable files\": 2}" in captured.out


def test_init_from_is_the_model_path_flag():
    import argparse

    from sbir_utils import train_cli

    parser = argparse.ArgumentParser()
    train_cli.add_arguments(parser)
    args = parser.parse_args(["--data_root", "x", "--init_from", "a.pt", "--select_metric", "mrr"])
    assert args.model_path == "a.pt" and args.select_metric == "mrr"
    with pytest.raises(SystemExit):
        parser.parse_args(["--data_root", "x", "--select_metric", "nonsense"])
