"""Bad index CSVs (issue 8): each gets an error naming the file (and the line where there is one), or a
counted skip with a warning. BOM/UTF-16-LE/CRLF round trips, a missing column, an empty file, a header-only
split, ``..``/absolute paths, an image symlink leaving the root, empty labels and missing files + duplicates
are in tests/data/test_index.py; the cases here add what those leave out."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import HEADER

from sbir_utils.data.index import IndexValidationError, load_spec, read_index, write_index

ROW = "sketches/p000-1.png,photos/p000.png,p000\n"
ROW2 = "sketches/p000-2.png,photos/p000.png,p000\n"


def _csv(root, name: str, data: str | bytes):
    path = root / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def _error(path, **kw) -> str:
    with pytest.raises(IndexValidationError) as info:
        read_index(path, **kw)
    return str(info.value)


# ---- columns ------------------------------------------------------------------------------------------

def test_no_header_row_reports_all_three_missing_columns_and_what_it_found(tiny):
    msg = _error(_csv(tiny, "noheader.csv", ROW))
    assert "noheader.csv: missing column(s) ['path_sketch', 'path_image', 'label']" in msg
    assert "found ['sketches/p000-1.png'" in msg and "expected path_sketch,path_image,label" in msg


def test_extra_columns_are_kept_through_read_and_write(tiny):
    path = _csv(tiny, "extra.csv", "drawer,path_sketch,path_image,label,category\n"
                                   "u1,sketches/p000-1.png,photos/p000.png,p000,shoe\n")
    df = read_index(path)
    assert df.loc[0, "drawer"] == "u1" and df.loc[0, "category"] == "shoe"
    write_index(df, tiny / "again.csv")
    assert (tiny / "again.csv").read_text().splitlines()[0] == "path_sketch,path_image,label,drawer,category"
    assert read_index(tiny / "again.csv").loc[0, "category"] == "shoe"


def test_header_with_spaces_around_names_is_accepted(tiny):
    df = read_index(_csv(tiny, "spaced.csv", " path_sketch , path_image ,label \n" + ROW))
    assert df.loc[0, "path_image"] == "photos/p000.png"


def test_row_with_an_extra_field_names_the_file_and_line(tiny):
    msg = _error(_csv(tiny, "wide.csv", HEADER + ROW + ROW2.strip() + ",surplus\n"))
    assert "wide.csv: not a valid CSV" in msg and "line 3" in msg and "saw 4" in msg


def test_row_with_a_missing_field_is_an_empty_label_on_its_line(tiny):
    msg = _error(_csv(tiny, "short.csv", HEADER + ROW + "sketches/p000-2.png,photos/p000.png\n"))
    assert "short.csv:3: empty label" in msg


def test_unterminated_quote_is_a_clear_csv_error(tiny):
    msg = _error(_csv(tiny, "quote.csv", HEADER + '"sketches/p000-1.png,photos/p000.png,p000\n'))
    assert "quote.csv: not a valid CSV" in msg and "EOF inside string" in msg


# ---- empty ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [b"   \n\n\t\n", b"\xef\xbb\xbf", b"\xff\xfe", b"\xef\xbb\xbf\r\n\r\n"],
                         ids=["whitespace", "utf8-bom-only", "utf16-bom-only", "bom-and-crlf-blank-lines"])
def test_file_with_no_text_is_empty(tiny, data):
    assert "the file is empty (expected a header path_sketch,path_image,label)" in _error(_csv(tiny, "e.csv", data))


def test_header_only_with_windows_line_endings_is_an_empty_split(tiny):
    assert "h.csv: no rows (an empty split)" in _error(_csv(tiny, "h.csv", HEADER.replace("\n", "\r\n")))


def test_every_row_skipped_is_an_error_not_an_empty_frame(tiny):
    with pytest.warns(UserWarning, match="skipped 1 rows with missing"):
        msg = _error(_csv(tiny, "gone.csv", HEADER + "sketches/zz.png,photos/zz.png,zz\n"))
    assert "gone.csv: no usable rows left" in msg


# ---- encodings and line endings -----------------------------------------------------------------------

def test_bom_and_windows_line_endings_together(tiny):
    df = read_index(_csv(tiny, "bc.csv", b"\xef\xbb\xbf" + (HEADER + ROW + ROW2).replace("\n", "\r\n").encode()))
    assert list(df.columns[:3]) == ["path_sketch", "path_image", "label"] and len(df) == 2
    assert df["label"].tolist() == ["p000", "p000"]  # no stray \r in the last column


def test_utf16_big_endian_with_bom(tiny):
    df = read_index(_csv(tiny, "be.csv", b"\xfe\xff" + (HEADER + ROW).replace("\n", "\r\n").encode("utf-16-be")))
    assert df.loc[0, "path_sketch"] == "sketches/p000-1.png"


def test_old_mac_line_endings(tiny):
    assert len(read_index(_csv(tiny, "cr.csv", (HEADER + ROW + ROW2).replace("\n", "\r")))) == 2


def test_utf16_without_bom_says_so(tiny):
    msg = _error(_csv(tiny, "u16.csv", (HEADER + ROW).encode("utf-16-le")))
    assert "u16.csv: contains NUL bytes (UTF-16 without a byte-order mark" in msg


def test_utf16_with_an_odd_number_of_bytes_is_named_not_a_traceback(tiny):
    msg = _error(_csv(tiny, "odd.csv", (HEADER + ROW).encode("utf-16") + b"\x00"))
    assert "odd.csv: not UTF-8 or UTF-16 text" in msg


def test_latin1_file_is_named(tiny):
    msg = _error(_csv(tiny, "latin.csv", (HEADER + "sketches/p000-1.png,photos/p000.png,caf\xe9\n").encode("latin-1")))
    assert "latin.csv: not UTF-8 or UTF-16 text" in msg


def test_binary_file_as_index(tiny):
    assert "bin.csv: " in _error(_csv(tiny, "bin.csv", bytes(range(256)) * 4))


def test_nul_byte_in_a_path_is_named(tiny):
    msg = _error(_csv(tiny, "nul.csv", HEADER + "sketches/p000-1.png\x00,photos/p000.png,p000\n"))
    assert "nul.csv: contains NUL bytes" in msg


# ---- labels, duplicates, missing files ----------------------------------------------------------------

def test_whitespace_only_label_is_empty(tiny):
    assert "ws.csv:2: empty label" in _error(_csv(tiny, "ws.csv", HEADER + "sketches/p000-1.png,photos/p000.png,   \n"))


def test_labels_that_look_like_na_or_numbers_stay_strings(tiny):
    text = HEADER + "sketches/p000-1.png,photos/p000.png,NA\nsketches/p000-2.png,photos/p000.png,007\n"
    assert read_index(_csv(tiny, "na.csv", text))["label"].tolist() == ["NA", "007"]


def test_empty_path_names_column_and_line(tiny):
    msg = _error(_csv(tiny, "ep.csv", HEADER + ROW + ",photos/p000.png,p000\n"))
    assert "ep.csv:3: empty path_sketch" in msg


def test_duplicate_spelt_differently_is_still_a_duplicate(tiny):
    text = HEADER + ROW + "./sketches/p000-1.png,photos/../photos/p000.png,p000\n" + ROW2
    with pytest.warns(UserWarning, match=r"dup\.csv: skipped 1 duplicate rows"):
        df = read_index(_csv(tiny, "dup.csv", text))
    assert len(df) == 2 and df.attrs["skipped"] == {"duplicate rows": 1}
    with pytest.raises(IndexValidationError, match=r"dup\.csv:3: duplicate row"):
        read_index(tiny / "dup.csv", strict=True)


def test_missing_files_are_counted_per_row_and_named_with_line(tiny):
    text = HEADER + ROW + "sketches/nope.png,photos/p000.png,p000\n" + "sketches/p000-2.png,photos/nope.png,p000\n"
    with pytest.warns(UserWarning) as rec:
        df = read_index(_csv(tiny, "miss.csv", text))
    assert df.attrs["skipped"] == {"rows with missing or undecodable files": 2} and len(df) == 1
    msg = str(rec[0].message)
    assert "miss.csv:3: path_sketch 'sketches/nope.png': missing file" in msg
    assert "miss.csv:4: path_image 'photos/nope.png': missing file" in msg
    with pytest.raises(IndexValidationError) as info:
        read_index(tiny / "miss.csv", strict=True)
    assert len(info.value.problems) == 2


def test_file_that_is_a_directory_counts_as_missing(tiny):
    (tiny / "photos" / "folder.png").mkdir()
    with pytest.warns(UserWarning, match="photos/folder.png'.*missing file"):
        df = read_index(_csv(tiny, "dir.csv", HEADER + ROW + "sketches/p000-2.png,photos/folder.png,p000\n"))
    assert len(df) == 1


def test_index_file_not_found_is_named(tiny):
    with pytest.raises(FileNotFoundError, match="index_nope.csv: index file not found"):
        read_index(tiny / "index_nope.csv")


def test_invalid_dataset_json_is_named(tiny):
    (tiny / "dataset.json").write_text('{"name": "tiny",')
    with pytest.raises(IndexValidationError, match=r"dataset\.json: not valid JSON"):
        load_spec(tiny)


def test_large_index_reports_the_first_twenty_problems_and_a_count(tiny):
    rows = "".join("sketches/p000-1.png,photos/p000.png,\n" for _ in range(25))
    msg = _error(_csv(tiny, "many.csv", HEADER + rows))
    assert "many.csv:21: empty label" in msg and "many.csv:22:" not in msg and "... and 5 more" in msg


def test_written_index_is_read_back_identically(tiny):
    df = pd.DataFrame({"path_sketch": ["sketches/p000-1.png"], "path_image": ["photos/p000.png"],
                       "label": ['a "quoted", label']})
    write_index(df, tiny / "w.csv")
    assert read_index(tiny / "w.csv").loc[0, "label"] == 'a "quoted", label'
