"""`sbir eval` (`eval_cli`): its flags, the checkpoint lookup, the table, `--json`, the result page, and one-line
errors naming the file and the problem. A tiny plain state dict (`--model_path`) keeps each test fast."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest
import torch

from sbir_utils import cli, eval_cli
from sbir_utils.models import ConvNeXtInfoNCE
from tests.helpers import make_tiny_dataset

torch.set_num_threads(1)
TINY_MODEL = ["--model", "convnext_infonce", "--backbone", "test_convnext", "--image_size", "32", "--no_cuda"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("eval_data"))


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "model_normal.pth"
    torch.save(ConvNeXtInfoNCE("test_convnext").state_dict(), path)
    return path


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    eval_cli.add_arguments(parser)
    return parser.parse_args(argv)


def test_flag_defaults_are_the_seeds():
    args = _parse(["--data_root", "d"])
    assert (args.test_csv, args.ckpt, args.batch_size, args.rerank_k) == ("index_test.csv", "checkpoints/best.pt",
                                                                          64, None)
    assert (args.model, args.profile, args.num_workers, args.json, args.no_html) == ("convnext_infonce", "cpu", 0,
                                                                                     None, False)
    with pytest.raises(SystemExit):
        _parse(["--data_root", "d", "--split", "random"])  # not one of cli.SPLITS


def test_resolve_checkpoint_as_given_then_under_log_dir(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "best.pt").write_bytes(b"x")
    assert eval_cli.resolve_checkpoint(str(run / "checkpoints" / "best.pt"), None) == run / "checkpoints" / "best.pt"
    assert eval_cli.resolve_checkpoint("checkpoints/best.pt", str(run)) == run / "checkpoints" / "best.pt"
    with pytest.raises(FileNotFoundError, match=r"^checkpoints/epoch_09\.pt: checkpoint not found \(nor under "
                                                r"--log_dir .*run\)$"):
        eval_cli.resolve_checkpoint("checkpoints/epoch_09.pt", str(run))
    with pytest.raises(FileNotFoundError, match=r"pass --log_dir RUN_DIR to look in a run folder"):
        eval_cli.resolve_checkpoint("checkpoints/best.pt", None)


def _metrics(value: float) -> dict:
    keys = ("acc@1", "acc@5", "acc@10", "mrr", "mAP@all", "mAP@200", "P@100", "P@200")
    return {k: value for k in keys} | {"n_queries": 8, "n_gallery": 4}


def test_format_table_has_a_stage_2_row_only_with_stage_2():
    one = eval_cli.format_table({"stage1": _metrics(0.5), "stage2": None, "checkpoint": "c.pt", "rerank_k": 3})
    lines = one.splitlines()
    assert lines[0].split() == ["stage", "acc@1", "acc@5", "acc@10", "mrr", "mAP@all", "mAP@200", "P@100", "P@200"]
    assert lines[1].split() == ["stage1"] + ["0.5000"] * 8
    assert lines[2] == "8 queries, 4 gallery photos; checkpoint c.pt"
    two = eval_cli.format_table({"stage1": _metrics(0.5), "stage2": _metrics(0.25), "checkpoint": "c.pt",
                                 "rerank_k": 3})
    assert two.splitlines()[2].split()[:2] == ["stage2", "0.2500"]
    assert two.endswith("; stage 2 re-ranks the top 3")


def test_json_safe_turns_nan_into_null_and_others_into_strings():
    out = eval_cli._json_safe({"a": {"b": math.nan, "c": 1.5}, "p": Path("x/y"), "n": None, "k": 3, "ok": True})
    assert out == {"a": {"b": None, "c": 1.5}, "p": "x/y", "n": None, "k": 3, "ok": True}
    json.dumps(out, allow_nan=False)


def test_model_path_eval_prints_the_table_and_writes_strict_json_and_the_page(data, weights, tmp_path, capsys):
    out_json, html = tmp_path / "out" / "metrics.json", tmp_path / "pages"
    rc = cli.main(["eval", "--data_root", str(data), "--model_path", str(weights), *TINY_MODEL,
                   "--json", str(out_json), "--html_dir", str(html), "--batch_size", "3"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert captured.out.splitlines()[1].startswith("stage1") and "stage2" not in captured.out
    assert f"wrote {html / 'result.html'}" in captured.out and f"wrote {out_json}" in captured.out
    text = out_json.read_text()
    res = json.loads(text)  # strict JSON: no NaN
    assert "NaN" not in text and res["stage1"]["P@100"] is None
    assert (res["model"], res["backbone"], res["stage2"]) == ("convnext_infonce", "test_convnext", None)
    assert res["stage1"]["n_queries"] == 8 and res["stage1"]["n_gallery"] == 4
    assert (html / "result.html").is_file()
    assert not list(weights.parent.glob("eval_*"))  # --html_dir replaced the default folder


def test_no_html_writes_no_page(data, weights, tmp_path, capsys):
    rc = cli.main(["eval", "--data_root", str(data), "--model_path", str(weights), *TINY_MODEL, "--no_html"])
    out = capsys.readouterr().out
    assert rc == 0 and "wrote" not in out
    assert not list(weights.parent.glob("eval_*"))


def test_split_reads_the_split_folder(data, weights, tmp_path, capsys):
    root = tmp_path / "fscoco"
    make_tiny_dataset(root / "unseen-user", photos=(4, 2, 3))
    rc = cli.main(["eval", "--data_root", str(root), "--split", "unseen-user", "--model_path", str(weights),
                   *TINY_MODEL, "--no_html"])
    out = capsys.readouterr().out
    assert rc == 0 and "6 queries, 3 gallery photos" in out


@pytest.mark.parametrize("argv,message", [
    (["--batch_size", "0"], "--batch_size must be >= 1, got 0"),
    (["--rerank_k", "-1"], "--rerank_k must be >= 0, got -1"),
    (["--val_unseen", "--split", "unseen-user"], "--val_unseen means --split unseen-file, but --split unseen-user"),
    (["--ckpt", "runs/x/best.pt"], "runs/x/best.pt: checkpoint not found (pass --log_dir RUN_DIR"),
    (["--ckpt", "best.pt", "--log_dir", "no_run"], "best.pt: checkpoint not found (nor under --log_dir no_run)"),
    (["--model_path", "no_such.pth"], "no_such.pth: --model_path file not found"),
    (["--test_csv", "index_nope.csv", "MODEL"], "index_nope.csv: index file not found"),
    (["--split", "unseen-user", "MODEL"], "no index folder for split 'unseen-user'"),
])
def test_errors_are_one_line_naming_the_file_and_the_problem(data, weights, capsys, argv, message):
    argv = [a for a in argv if a != "MODEL"] + (["--model_path", str(weights), *TINY_MODEL] if "MODEL" in argv else [])
    rc = cli.main(["eval", "--data_root", str(data), *argv])
    err = capsys.readouterr().err
    assert rc == cli.USAGE_ERROR == 2
    assert err.startswith("sbir eval: error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_missing_data_root_and_missing_test_index_name_the_path(tmp_path, weights, capsys):
    rc = cli.main(["eval", "--data_root", str(tmp_path / "nowhere"), "--model_path", str(weights), *TINY_MODEL])
    assert rc == 2 and f"{tmp_path / 'nowhere'}: data folder not found" in capsys.readouterr().err
    index = make_tiny_dataset(tmp_path / "index")
    (index / "index_test.csv").unlink()
    rc = cli.main(["eval", "--data_root", str(index), "--model_path", str(weights), *TINY_MODEL])
    assert rc == 2 and f"{index.resolve() / 'index_test.csv'}: index file not found" in capsys.readouterr().err


def test_weights_that_do_not_fit_name_the_file_and_profile_full(data, tmp_path, capsys):
    torch.manual_seed(0)
    path = tmp_path / "model_unseen.pth"
    torch.save(ConvNeXtInfoNCE("test_convnext", embed_dim=16).state_dict(), path)
    argv = ["eval", "--data_root", str(data), "--model_path", str(path), "--model", "aafg", "--backbone",
            "test_resnet", "--image_size", "32", "--no_cuda"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sbir eval: error: {path}: does not fit a aafg with backbone test_resnet")
    assert err.rstrip().endswith("the ConvNeXt seed's released files need --profile full")
    assert cli.main([*argv, "--profile", "full"]) == 2  # already the full profile: no hint
    assert "need --profile full" not in capsys.readouterr().err
