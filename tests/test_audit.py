import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from sbir_utils import audit, paths  # noqa: E402
from sbir_utils.data.index import read_splits, write_index  # noqa: E402


@pytest.fixture
def tiny(tmp_path):
    """6 photos of 2 categories (3 train / 3 test by photo), 2 sketches each; sketches trace the photo's shape."""
    rows = {"train": [], "test": []}
    for i in range(6):
        cat = "box" if i % 2 else "ring"
        photo = Image.new("RGB", (32, 32), "white")
        sketch = Image.new("L", (32, 32), 255)
        for img, fill in ((photo, (200, 40 * i, 0)), (sketch, None)):
            d = ImageDraw.Draw(img)
            box = [4 + i, 4, 28 - i, 28 - 2 * i % 7]
            (d.rectangle if cat == "box" else d.ellipse)(box, fill=fill, outline=0 if fill is None else None, width=2)
        (tmp_path / "p").mkdir(exist_ok=True)
        photo.save(tmp_path / "p" / f"{i}.png")
        for k in (1, 2):
            sketch.save(tmp_path / "p" / f"{i}-{k}.png")
            rows["train" if i < 3 else "test"].append(
                {"path_sketch": f"p/{i}-{k}.png", "path_image": f"p/{i}.png", "label": f"id{i}", "category": cat,
                 "drawer": str(k)})
    for split, r in rows.items():
        write_index(pd.DataFrame(r), tmp_path / f"index_{split}.csv")
    return read_splits(tmp_path)


def test_counts(tiny):
    counts = audit.counts_by_split(tiny)
    assert counts.loc["train", "pairs"] == 6 and counts.loc["test", "photos"] == 3
    assert counts.loc["train", "categories"] == 2 and counts.loc["test", "drawers"] == 2
    per_class = audit.counts_per_class(tiny)
    assert per_class.loc["box", "train"] + per_class.loc["ring", "train"] == 6


def test_integrity_verdict(tiny):
    assert audit.integrity_verdict(audit.split_integrity(tiny)).startswith("PASS")
    leaky = {"train": tiny["train"], "test": pd.concat([tiny["test"], tiny["train"].iloc[:1]])}
    verdict = audit.integrity_verdict(audit.split_integrity(leaky))
    assert verdict.startswith("FAIL") and "photos in both train and test (1)" in verdict


def test_figures_and_image_stats(tiny):
    assert len(audit.pair_grid(tiny["train"], n=3).axes) == 6
    stats = audit.image_statistics(tiny["train"])
    assert set(stats["kind"]) == {"sketch", "photo"} and (stats["width"] == 32).all()
    assert stats.dropna(subset=["ink"])["ink"].between(0.01, 0.5).all()


def test_calibration_has_random_and_hog_rows(tiny):
    table = audit.calibration(tiny, grid={"size": [32], "photo_mode": ["grey"], "pixels_per_cell": [(8, 8)]})
    assert table.index[0] == "random" and table.index[1].startswith("HOG")
    assert (table["gallery"] == 3).all() and (table["queries"] == 6).all()
    assert table[["acc@1", "acc@10", "mrr"]].apply(lambda c: c.between(0, 1)).all().all()
    assert (table["acc@10"] == 1.0).all()  # a 3-photo gallery: every true photo is in the top 10


def test_stroke_summary_by_source():
    sk = np.array([[0, 0, 0], [10, 0, 1], [5, 5, 0], [5, 50, 1]], float)
    table = audit.stroke_table({"a": [sk, sk], "b": [sk]})
    summary = audit.summarise_by_source(table[["source", "n_strokes"]]).set_index("source")
    assert summary.loc["a", "n_strokes"].startswith("2 ")


def test_human_likeness_uses_real_data_when_present():
    tables, fig, note = audit.human_likeness(None, n=20)
    if paths.shared_data("chairv2-strokes") is None:
        assert "not found" in note
    else:
        assert note == "all reference sources present"
        assert "real ChairV2" in set(tables[0]["source"]) and fig is not None
