"""Paths escaping the data root (issue 8): ``..``, absolute paths and symlinks pointing outside are errors
naming file, line and column; paths that stay inside (however spelt) are accepted. The basic ``../x.png``,
``/etc/passwd`` and a symlinked photo file are in tests/data/test_index.py."""

from __future__ import annotations

import pytest
from conftest import HEADER
from PIL import Image

from sbir_utils.data.index import IndexValidationError, read_index, write_spec


def _write(root, text: str):
    path = root / "idx.csv"
    path.write_text(HEADER + text)
    return path


def _error(path) -> str:
    with pytest.raises(IndexValidationError) as info:
        read_index(path)
    return str(info.value)


@pytest.mark.parametrize("bad", ["C:\\photos\\p000.png", "c:/photos/p000.png", "\\\\server\\share\\p.png",
                                 "\\photos\\p000.png"], ids=["windows-drive", "drive-slash", "unc", "backslash-root"])
def test_windows_absolute_paths_are_refused(tiny, bad):
    msg = _error(_write(tiny, f"sketches/p000-1.png,{bad},p000\n"))
    assert "idx.csv:2: path_image" in msg and "is absolute or leaves the image root" in msg


def test_dotdot_that_climbs_out_and_back_in_elsewhere_is_refused(tiny):
    other = tiny.parent / "elsewhere"
    other.mkdir()
    Image.new("RGB", (8, 8)).save(other / "x.png")
    msg = _error(_write(tiny, "sketches/p000-1.png,../elsewhere/x.png,p000\n"))
    assert "path_image '../elsewhere/x.png' is absolute or leaves the image root" in msg


def test_dotdot_that_stays_inside_is_accepted(tiny):
    df = read_index(_write(tiny, "sketches/../sketches/p000-1.png,photos/./p000.png,p000\n"))
    assert df.loc[0, "image_file"] == str((tiny / "photos" / "p000.png").resolve())


def test_symlinked_folder_pointing_outside_is_refused(tiny, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    Image.new("L", (8, 8), 255).save(outside / "s.png")
    (tiny / "sketches" / "linked").symlink_to(outside, target_is_directory=True)
    msg = _error(_write(tiny, "sketches/linked/s.png,photos/p000.png,p000\n"))
    assert "idx.csv:2: path_sketch 'sketches/linked/s.png' is absolute or leaves the sketch root" in msg


def test_symlink_inside_the_root_is_accepted(tiny):
    (tiny / "photos" / "alias.png").symlink_to(tiny / "photos" / "p001.png")
    df = read_index(_write(tiny, "sketches/p000-1.png,photos/alias.png,p000\n"))
    assert df.loc[0, "image_file"].endswith("p001.png")


def test_dangling_symlink_is_a_counted_missing_file(tiny):
    (tiny / "photos" / "dangling.png").symlink_to(tiny / "photos" / "never.png")
    with pytest.warns(UserWarning, match="missing file"):
        df = read_index(_write(tiny, "sketches/p000-1.png,photos/p000.png,p000\n"
                                     "sketches/p000-2.png,photos/dangling.png,p000\n"))
    assert len(df) == 1 and df.attrs["skipped"]["rows with missing or undecodable files"] == 1


def test_every_escaping_row_is_listed_not_just_the_first(tiny):
    msg = _error(_write(tiny, "../a.png,photos/p000.png,p000\n/abs.png,photos/p000.png,p000\n"
                              "sketches/p000-1.png,../../b.png,p000\n"))
    assert "idx.csv:2: path_sketch" in msg and "idx.csv:3: path_sketch" in msg and "idx.csv:4: path_image" in msg


def test_separate_roots_from_dataset_json_confine_each_column(tiny):
    """With ``sketch_root`` = sketches/, a sketch path may not climb to photos/ (a sibling of its root)."""
    write_spec(tiny, sketch_root=tiny / "sketches", image_root=tiny / "photos", name="tiny")
    (tiny / "idx.csv").write_text(HEADER + "p000-1.png,p000.png,p000\n")
    assert len(read_index(tiny / "idx.csv")) == 1
    msg = _error(_write(tiny, "../photos/p000.png,p000.png,p000\n"))
    assert "path_sketch '../photos/p000.png' is absolute or leaves the sketch root" in msg
