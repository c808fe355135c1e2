"""`data.formats` (the package): the registry of importers and `sbir index FORMAT`'s wrapper: one sub-command per
importer with the shared options; the summary on success, one error line and status 2 on failure."""

from __future__ import annotations

import argparse

import pytest

from sbir_utils.data import formats
from sbir_utils.data.formats import FORMATS, folders, fscoco, qmul, sketchy, tuberlin
from tests.helpers import write_image


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    formats.add_arguments(parser)
    return parser


def test_one_sub_command_per_importer_with_the_shared_options():
    assert FORMATS == {"sketchy": sketchy, "tuberlin": tuberlin, "qmul": qmul, "fscoco": fscoco, "folders": folders}
    for fmt in FORMATS:
        args = _parser().parse_args([fmt, "RAW", "--out", "OUT"])
        assert (args.format, args.raw_root, args.out, args.seed, args.val_fraction, args.name, args.check_decode) \
            == (fmt, "RAW", "OUT", 0, 0.1, "", False)
    with pytest.raises(SystemExit):
        _parser().parse_args(["pdf", "RAW", "--out", "OUT"])


def test_run_prints_the_summary_or_one_error_line(tmp_path, capsys):
    raw = tmp_path / "raw"
    for i in range(10):
        write_image(raw / "photos" / f"s{i}.jpg")
        write_image(raw / "sketches" / f"s{i}-1.png", "L")
    args = _parser().parse_args(["folders", str(raw), "--out", str(tmp_path / "idx"), "--test_fraction", "0.2"])
    assert formats.run(args) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"folders: {raw} -> {tmp_path / 'idx'}") and "test :" in out
    assert (tmp_path / "idx" / "index_train.csv").is_file()
    args = _parser().parse_args(["folders", str(tmp_path / "missing"), "--out", str(tmp_path / "idx2")])
    assert formats.run(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("sbir index folders: error: ") and len(err.strip().splitlines()) == 1
