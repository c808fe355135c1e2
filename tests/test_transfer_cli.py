"""`transfer_cli` (`sbir transfer`'s flags): the crop flags' spellings, out-of-range numbers and unknown rows
refused in one line before anything runs."""

import argparse

import pytest

from sbir_utils import transfer_cli


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    transfer_cli.add_arguments(parser)
    return parser


@pytest.mark.parametrize("flag", ["--epochs", "--pretrain_epochs", "--image_size", "--batch_size", "--init_epochs",
                                  "--init_image_size"])
def test_out_of_range_numbers_are_one_line_before_anything_runs(tmp_path, capsys, flag):
    args = _parser().parse_args(["--real_root", str(tmp_path / "real"), "--out", str(tmp_path / "out"), flag, "0"])
    assert transfer_cli.run(args) == 2
    assert capsys.readouterr().err == f"sbir transfer: error: {flag} must be >= 1, got 0\n"
    assert not (tmp_path / "out").exists()


def test_unknown_rows_are_one_line(tmp_path, capsys):
    args = _parser().parse_args(["--real_root", str(tmp_path / "real"), "--out", str(tmp_path / "out"),
                                 "--profile", "smoke", "--rows", "HOG,nonsense"])
    assert transfer_cli.run(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("sbir transfer: error: ") and "nonsense" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_crop_flags_reach_the_configs():
    import argparse

    from sbir_utils import train_cli

    parser = argparse.ArgumentParser()
    train_cli.add_arguments(parser)
    assert train_cli.resolve_config(parser.parse_args(["--data_root", "x", "--crop"])).crop
    assert not train_cli.resolve_config(parser.parse_args(["--data_root", "x"])).crop  # off unless asked
    parser = argparse.ArgumentParser()
    transfer_cli.add_arguments(parser)
    args = parser.parse_args(["--real_root", "r", "--out", "o", "--no-crop"])
    assert args.crop is False


def test_init_photo_mode_reaches_the_pretrained_init_settings_only():
    from sbir_utils import transfer

    args = _parser().parse_args(["--real_root", "r", "--out", "o", "--profile", "cpu", "--init_photo_mode", "hed"])
    plan = transfer.TransferPlan(None, None, "cpu", {"init_photo_mode": args.init_photo_mode})
    base = transfer.base_config(plan)
    assert transfer.init_config(plan.settings(), base).photo_mode == "hed" and base.photo_mode == "edges"
    with pytest.raises(SystemExit):
        _parser().parse_args(["--real_root", "r", "--out", "o", "--init_photo_mode", "canny"])
