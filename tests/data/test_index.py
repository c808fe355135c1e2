import json

import pandas as pd
import pytest
from PIL import Image

from sbir_utils.data.index import (
    IndexValidationError,
    load_spec,
    read_index,
    read_splits,
    split_integrity,
    write_index,
    write_spec,
)
from tests.helpers import REPO


@pytest.fixture
def dataset(tmp_path):
    for d in ("photos", "sketches"):
        (tmp_path / d).mkdir()
    rows = []
    for i in range(3):
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(tmp_path / "photos" / f"{i}.png")
        for k in (1, 2):
            Image.new("L", (8, 8), 255).save(tmp_path / "sketches" / f"{i}-{k}.png")
            rows.append({"path_sketch": f"sketches/{i}-{k}.png", "path_image": f"photos/{i}.png", "label": f"{i:03d}"})
    write_index(pd.DataFrame(rows), tmp_path / "index_train.csv")
    return tmp_path


def test_round_trip_keeps_labels_as_strings(dataset):
    df = read_index(dataset / "index_train.csv")
    assert len(df) == 6 and df["label"].tolist()[0] == "000"
    assert df["sketch_file"].map(lambda p: p.startswith(str(dataset))).all()


def test_csv_variants_bom_utf16_crlf(dataset):
    text = (dataset / "index_train.csv").read_text()
    for name, data in {
        "bom.csv": b"\xef\xbb\xbf" + text.encode(),
        "u16.csv": text.encode("utf-16"),
        "crlf.csv": text.replace("\n", "\r\n").encode(),
    }.items():
        (dataset / name).write_bytes(data)
        assert len(read_index(dataset / name)) == 6, name


def test_missing_column_names_file_and_columns(dataset):
    (dataset / "bad.csv").write_text("path_sketch,label\nsketches/0-1.png,0\n")
    with pytest.raises(IndexValidationError, match=r"bad\.csv: missing column\(s\) \['path_image'\]"):
        read_index(dataset / "bad.csv")


def test_empty_file_and_empty_split(dataset):
    (dataset / "empty.csv").write_text("")
    with pytest.raises(IndexValidationError, match="empty"):
        read_index(dataset / "empty.csv")
    (dataset / "header.csv").write_text("path_sketch,path_image,label\n")
    with pytest.raises(IndexValidationError, match="no rows"):
        read_index(dataset / "header.csv")


def test_paths_escaping_the_root_are_errors_with_line_numbers(dataset):
    (dataset / "esc.csv").write_text(
        "path_sketch,path_image,label\nsketches/0-1.png,photos/0.png,0\n../x.png,photos/0.png,0\n"
        "sketches/0-2.png,/etc/passwd,0\n"
    )
    with pytest.raises(IndexValidationError) as err:
        read_index(dataset / "esc.csv")
    msg = str(err.value)
    assert "esc.csv:3: path_sketch '../x.png'" in msg and "esc.csv:4: path_image '/etc/passwd'" in msg


def test_symlink_pointing_outside_is_refused(dataset, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside") / "o.png"
    Image.new("RGB", (4, 4)).save(outside)
    (dataset / "photos" / "link.png").symlink_to(outside)
    (dataset / "ln.csv").write_text("path_sketch,path_image,label\nsketches/0-1.png,photos/link.png,0\n")
    with pytest.raises(IndexValidationError, match="leaves the image root"):
        read_index(dataset / "ln.csv")


def test_empty_label_is_an_error(dataset):
    (dataset / "lab.csv").write_text("path_sketch,path_image,label\nsketches/0-1.png,photos/0.png,\n")
    with pytest.raises(IndexValidationError, match="lab.csv:2: empty label"):
        read_index(dataset / "lab.csv")


def test_missing_files_and_duplicates_are_skipped_with_a_warning(dataset):
    text = (dataset / "index_train.csv").read_text()
    (dataset / "m.csv").write_text(text + "sketches/9-1.png,photos/9.png,9\nsketches/0-1.png,photos/0.png,000\n")
    with pytest.warns(UserWarning, match=r"m\.csv: skipped 1 duplicate rows, 1 rows with missing"):
        df = read_index(dataset / "m.csv")
    assert len(df) == 6
    with pytest.raises(IndexValidationError, match="missing file"):
        read_index(dataset / "m.csv", strict=True)


def test_on_missing_error_lists_the_missing_files_with_a_count_naming_the_csv(dataset):
    text = (dataset / "index_train.csv").read_text()
    extra = "".join(f"sketches/gone{i}-1.png,photos/0.png,000\n" for i in range(25))
    (dataset / "m.csv").write_text(text + extra)
    with pytest.raises(IndexValidationError) as info:
        read_index(dataset / "m.csv", on_missing="error")
    msg, problems = str(info.value), info.value.problems
    assert problems[0].startswith(f"{dataset / 'm.csv'}: 25 row(s) name 25 missing") and "--skip_missing" in problems[0]
    assert len(problems) == 26 and f"{dataset / 'm.csv'}:8: path_sketch 'sketches/gone0-1.png': missing file" in msg
    assert "... and 6 more" in msg  # the first 20 shown, the rest counted
    with pytest.warns(UserWarning, match="skipped 25 rows with missing"):
        df = read_index(dataset / "m.csv", on_missing="skip")
    assert len(df) == 6 and df.attrs["skipped"] == {"rows with missing or undecodable files": 25}
    with pytest.raises(ValueError, match="on_missing must be one of"):
        read_index(dataset / "m.csv", on_missing="ignore")


def test_comment_lines_are_skipped_and_line_numbers_stay_those_of_the_file(dataset):
    lines = (dataset / "index_train.csv").read_text().splitlines()
    text = "# a template\n#   with comments\n" + lines[0] + "\n# between rows\n" + "\n".join(lines[1:]) + "\n"
    (dataset / "c.csv").write_text(text + "sketches/0-1.png,,000\n")
    with pytest.raises(IndexValidationError, match=r"c\.csv:11: empty path_image"):
        read_index(dataset / "c.csv")
    (dataset / "c.csv").write_text(text)
    assert len(read_index(dataset / "c.csv")) == 6
    (dataset / "only.csv").write_text("# nothing but comments\n")
    with pytest.raises(IndexValidationError, match="the file is empty"):
        read_index(dataset / "only.csv")


@pytest.mark.parametrize("odd", ["\x0c#", "\x0b#x", "\x1c#", "\x85#", "\u2028#"])
def test_a_label_holding_a_unicode_line_separator_is_a_label_not_a_comment(dataset, odd):
    """str.splitlines breaks lines at these characters, CSV does not: such a label (quoted, after a form feed
    a '#') once made its row a "comment" and left an empty label behind (found by test_rb_property)."""
    text = f'path_sketch,path_image,label\nsketches/0-1.png,photos/0.png,"{odd}"\nsketches/1-1.png,photos/1.png,x\n'
    (dataset / "odd.csv").write_text(text, encoding="utf-8")
    assert read_index(dataset / "odd.csv")["label"].tolist() == [odd.strip(), "x"]
    (dataset / "odd.csv").write_text(text + "sketches/2-1.png,,y\n", encoding="utf-8")
    with pytest.raises(IndexValidationError, match=r"odd\.csv:4: empty path_image"):  # line numbers still right
        read_index(dataset / "odd.csv")


TEMPLATES = REPO / "data_templates"


@pytest.mark.parametrize("name", ["sketchy", "tuberlin", "qmul", "fscoco", "folders"])
def test_each_data_template_is_a_valid_commented_index_naming_its_importer(name):
    from sbir_utils.data.formats import FORMATS
    from sbir_utils.data.index import DatasetSpec

    path = TEMPLATES / f"{name}.csv"
    spec = DatasetSpec(index_dir=TEMPLATES, sketch_root=TEMPLATES, image_root=TEMPLATES)
    df = read_index(path, spec, check_files=False)
    assert len(df) >= 3 and df["label"].ne("").all()
    assert name in FORMATS and f"sbir index {name} " in path.read_text()
    assert path.read_text().startswith("#")
    spec = json.loads((TEMPLATES / "dataset.json").read_text())
    assert set(spec) >= {"sketch_root", "image_root", "protocol"}


def test_corrupt_image_is_caught_when_decoding_is_checked(dataset):
    (dataset / "photos" / "1.png").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="undecodable"):
        df = read_index(dataset / "index_train.csv", check_decode=True)
    assert "photos/1.png" not in set(df["path_image"])


def test_spec_with_separate_roots(tmp_path, dataset):
    idx = tmp_path / "idx"
    write_spec(idx, sketch_root=dataset / "sketches", image_root=dataset / "photos", name="x", protocol="category")
    meta = json.loads((idx / "dataset.json").read_text())
    assert not meta["sketch_root"].startswith("/")  # stored relative, so the folder can move as a whole
    (idx / "index_test.csv").write_text("path_sketch,path_image,label\n0-1.png,0.png,a\n")
    spec = load_spec(idx)
    assert spec.protocol == "category" and spec.splits() == ["test"]
    frames = read_splits(spec)
    assert frames["test"]["image_file"][0] == str((dataset / "photos" / "0.png").resolve())


def test_split_integrity_flags_a_photo_in_two_splits(dataset):
    df = read_index(dataset / "index_train.csv")
    report = split_integrity({"train": df, "test": df.iloc[:2]})
    leak = report[report["check"] == "photos in both train and test"].iloc[0]
    assert leak["count"] == 1 and not leak["ok"] and "photos/0.png" in leak["detail"]
    clean = split_integrity({"train": df.iloc[2:], "test": df.iloc[:2]})
    assert clean[clean["check"].str.startswith("photos in both")]["ok"].all()
