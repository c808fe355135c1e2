"""Split-level problems (issue 8): an empty split, a split with one class, duplicate rows, and the same
photo (or sketch) in train and test, a leak the audit must flag however the path is spelt."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import HEADER, TINY_TRAIN, make_tiny_dataset, one_line_error, run_cli

from sbir_utils import audit
from sbir_utils.data.index import read_index, read_splits, write_index


def _train(capsys, data, log, *extra):
    return run_cli(capsys, ["train", "--data_root", str(data), "--log_dir", str(log), *TINY_TRAIN, *extra])


def _leaks(frames) -> pd.DataFrame:
    report = audit.split_integrity(frames)
    leaks = report[report["check"].str.contains(" in both ")].copy()
    return leaks.set_index("check")


def test_empty_validation_split_stops_training_naming_the_file(tiny, tmp_path, capsys):
    (tiny / "index_val.csv").write_text(HEADER)
    rc, err = _train(capsys, tiny, tmp_path / "run")
    assert rc == 2 and "index_val.csv: no rows (an empty split)" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_empty_split_in_the_audit_is_an_error_naming_it(tiny):
    (tiny / "index_test.csv").write_text(HEADER)
    with pytest.raises(ValueError, match=r"index_test\.csv: no rows"):
        read_splits(tiny)


def test_missing_validation_index_is_named(tiny, tmp_path, capsys):
    (tiny / "index_val.csv").unlink()
    rc, err = _train(capsys, tiny, tmp_path / "run")
    assert rc == 2 and "index_val.csv: index file not found" in one_line_error(err)


def test_training_split_with_one_photo_is_refused_clearly(tmp_path, capsys):
    data = make_tiny_dataset(tmp_path / "one", photos=(1, 2, 2))
    rc, err = _train(capsys, data, tmp_path / "run")
    line = one_line_error(err)
    assert rc == 2 and "index_train.csv: every row has the label 'p000'" in line and "two labels" in line


def test_training_split_with_one_class_is_refused_clearly(tmp_path, capsys):
    data = make_tiny_dataset(tmp_path / "cat", photos=(4, 2, 2), protocol="category", classes=1)
    rc, err = _train(capsys, data, tmp_path / "run")
    assert rc == 2 and "index_train.csv: every row has the label 'class0'" in one_line_error(err)


def test_validation_split_with_one_photo_still_trains(tmp_path, capsys):
    """A one-photo gallery is a trivial but valid retrieval task (acc@1 = 1), not an error."""
    data = make_tiny_dataset(tmp_path / "v1", photos=(4, 1, 1))
    rc, err = _train(capsys, data, tmp_path / "run")
    assert rc == 0, err
    assert pd.read_csv(tmp_path / "run" / "metrics.csv")["val_acc@1"].tolist() == [1.0]


def test_same_photo_in_train_and_test_is_flagged(tiny):
    frames = read_splits(tiny)
    frames["test"] = pd.concat([frames["test"], frames["train"].iloc[:1]], ignore_index=True)
    leaks = _leaks(frames)
    assert leaks.loc["photos in both train and test", "count"] == 1
    assert "photos/p000.png" in leaks.loc["photos in both train and test", "detail"]
    verdict = audit.integrity_verdict(audit.split_integrity(frames))
    assert verdict.startswith("FAIL") and "photos in both train and test (1)" in verdict


def test_leaked_photo_spelt_differently_is_still_flagged(tiny):
    """``./photos/p000.png`` in the test CSV is the training photo ``photos/p000.png``."""
    with open(tiny / "index_test.csv", "a") as fh:
        fh.write("./sketches/p000-1.png,photos/./p000.png,p000\n")
    leaks = _leaks(read_splits(tiny))
    assert leaks.loc["photos in both train and test", "count"] == 1
    assert leaks.loc["sketches in both train and test", "count"] == 1
    assert not leaks.loc["photos in both train and val", "count"]


def test_leaked_photo_through_a_symlink_is_flagged(tiny):
    (tiny / "photos" / "copy.png").symlink_to(tiny / "photos" / "p001.png")
    df = read_index(tiny / "index_test.csv")
    extra = pd.DataFrame([{"path_sketch": "sketches/p004-1.png", "path_image": "photos/copy.png", "label": "x"}])
    write_index(pd.concat([df, extra], ignore_index=True), tiny / "index_test.csv")
    assert _leaks(read_splits(tiny)).loc["photos in both train and test", "count"] == 1


def test_clean_splits_pass(tiny):
    assert audit.integrity_verdict(audit.split_integrity(read_splits(tiny))).startswith("PASS")


def test_duplicate_rows_are_skipped_counted_and_reported_by_the_audit(tiny):
    text = (tiny / "index_train.csv").read_text()
    first = text.splitlines()[1]
    (tiny / "index_train.csv").write_text(text + first + "\n" + first + "\n")
    with pytest.warns(UserWarning, match="skipped 2 duplicate rows"):
        frames = read_splits(tiny)
    assert len(frames["train"]) == 8 and frames["train"].attrs["skipped"] == {"duplicate rows": 2}
    verdict = audit.integrity_verdict(audit.split_integrity(frames))
    assert "rows skipped on load in train (missing files, duplicates) (2)" in verdict
