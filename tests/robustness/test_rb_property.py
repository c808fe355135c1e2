"""Property-based tests (hypothesis) of the index reader and the stroke rasteriser (issue 8).

Index reader: any bytes give a DataFrame or an ``IndexValidationError`` (never another exception); labels
round-trip through any encoding and line ending; whatever the path spelling, an accepted row points to an
existing file inside the root. Rasteriser: any finite stroke-3 array gives a white ``L`` image of the asked
size whose ink stays within the strokes' bounding box; the pen-lift flags only split strokes.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from sbir_utils.data.index import IndexValidationError, read_index
from sbir_utils.data.strokes import join_strokes, rasterise, split_strokes

# The same examples on every run (derandomize): CI is red for a regression, never for a new random draw. Set
# SBIR_HYPOTHESIS_EXPLORE=1 to draw new examples while working on the reader (how the "\f#" label was found).
FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                derandomize=os.environ.get("SBIR_HYPOTHESIS_EXPLORE") != "1")


@pytest.fixture(scope="module")
def root():
    """photos/a.png, photos/b.png, sketches/a.png inside the root; outside/x.png beside it."""
    base = Path(tempfile.mkdtemp(prefix="rb_prop_"))
    data = base / "data"
    for rel in ("photos/a.png", "photos/b.png", "sketches/a.png", "../outside/x.png"):
        path = data / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (4, 4), 255).save(path)
    (data / "photos" / "out.png").symlink_to(base / "outside" / "x.png")
    yield data
    shutil.rmtree(base, ignore_errors=True)


def _read(path: Path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_index(path, **kw)


# ---- index reader --------------------------------------------------------------------------------------

@FAST
@given(raw=st.binary(max_size=400) | st.text(max_size=200).map(lambda t: ("path_sketch,path_image,label\n" + t)
                                                                .encode("utf-8")))
def test_any_bytes_give_a_frame_or_an_index_error(root, raw):
    path = root / "fuzz.csv"
    path.write_bytes(raw)
    try:
        df = _read(path)
    except IndexValidationError as exc:
        assert str(path) in str(exc)
        return
    assert len(df) > 0 and {"path_sketch", "path_image", "label", "sketch_file", "image_file"} <= set(df.columns)


# Any text but NUL and a bare carriage return: pandas' C parser ends a row at a "\r" even inside quotes (the
# row is then reported as an empty label, with its line), and no real dataset has one in a label.
LABEL = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"), min_size=1, max_size=12)


@FAST
@given(labels=st.lists(LABEL, min_size=1, max_size=5),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
       newline=st.sampled_from(["\n", "\r\n"]),
       quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
def test_labels_round_trip_through_encodings_and_line_endings(root, labels, encoding, newline, quoting):
    assume(all(lab.strip() for lab in labels))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=newline, quoting=quoting)
    writer.writerow(["path_sketch", "path_image", "label"])
    for i, lab in enumerate(labels):
        writer.writerow(["sketches/a.png", ("photos/a.png", "photos/b.png")[i % 2], lab])
    path = root / "labels.csv"
    path.write_bytes(buf.getvalue().encode(encoding))
    df = _read(path)
    expected = pd.DataFrame({"label": [lab.strip() for lab in labels],
                             "image": [("photos/a.png", "photos/b.png")[i % 2] for i in range(len(labels))]})
    expected = expected.drop_duplicates(["label", "image"])  # duplicate rows are skipped
    assert df["label"].tolist() == expected["label"].tolist()


SEGMENT = st.sampled_from(["photos", "sketches", "a.png", "b.png", "x.png", "out.png", "..", ".", "", "outside",
                           "C:", "\\", "~", " "])


@FAST
@given(rows=st.lists(st.tuples(st.lists(SEGMENT, min_size=1, max_size=5), st.booleans()), min_size=1, max_size=4))
def test_accepted_rows_always_point_inside_the_root(root, rows):
    lines = ["path_sketch,path_image,label"]
    for segments, absolute in rows:
        rel = "/".join(segments)
        lines.append(f"sketches/a.png,{'/' if absolute else ''}{rel},lab")
    path = root / "paths.csv"
    path.write_text("\n".join(lines) + "\n")
    try:
        df = _read(path)
    except IndexValidationError:
        return
    top = root.resolve()
    for f in df["image_file"]:
        resolved = Path(f)
        assert resolved.is_file() and resolved.resolve().is_relative_to(top), f


# ---- stroke rasteriser --------------------------------------------------------------------------------------

def _strokes(max_points: int = 30, bound: float = 400.0):
    xy = hnp.arrays(np.float64, st.tuples(st.integers(0, max_points), st.just(2)),
                    elements=st.floats(-bound, bound, allow_nan=False, allow_infinity=False))
    return xy.flatmap(lambda a: hnp.arrays(np.float64, (len(a), 1), elements=st.sampled_from([0.0, 1.0]))
                      .map(lambda f: np.hstack([a, f])))


@FAST
@given(points=_strokes(), size=st.integers(1, 64), width=st.floats(0.1, 6.0))
def test_rasterise_gives_a_white_L_image_with_ink_only_near_the_strokes(points, size, width):
    img = rasterise(points, size=size, canvas=256, line_width=width)
    assert img.mode == "L" and img.size == (size, size)
    arr = np.asarray(img)
    if len(points) == 0:
        assert (arr == 255).all()
        return
    ink = np.argwhere(arr < 255)  # (row, col)
    if len(ink):
        scaled = points[:, :2] * size / 256.0
        pad = max(1, round(width)) + 2
        (x0, y0), (x1, y1) = scaled.min(axis=0) - pad, scaled.max(axis=0) + pad
        assert (ink[:, 1] >= x0).all() and (ink[:, 1] <= x1).all()
        assert (ink[:, 0] >= y0).all() and (ink[:, 0] <= y1).all()


@FAST
@given(points=_strokes(max_points=20, bound=250.0).filter(lambda p: len(p) > 0))
def test_points_inside_the_canvas_always_leave_ink(points):
    points = np.abs(points)
    arr = np.asarray(rasterise(points, size=64, line_width=2.0))
    assert (arr < 128).any()


@FAST
@given(points=_strokes(max_points=25))
def test_split_then_join_is_the_identity_up_to_the_last_flag(points):
    strokes = split_strokes(points)
    assert sum(len(s) for s in strokes) == len(points)
    back = join_strokes(strokes)
    assert np.array_equal(back[:, :2], points[:, :2])
    if len(points):
        assert np.array_equal(back[:-1, 2], points[:-1, 2]) and back[-1, 2] == 1.0
        same = np.asarray(rasterise(back, size=32)) == np.asarray(rasterise(points, size=32))
        assert same.all()


@FAST
@given(points=_strokes(max_points=20, bound=250.0), size=st.integers(8, 48))
def test_rasterise_is_deterministic(points, size):
    a = np.asarray(rasterise(points, size=size))
    b = np.asarray(rasterise(points.copy(), size=size))
    assert np.array_equal(a, b)
