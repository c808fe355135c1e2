"""A hand-made ``analysis.RunResults`` (no training) for the small analysis module tests."""

from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from sbir_utils import analysis


def fake_results(info: dict | None = None) -> analysis.RunResults:
    queries = pd.DataFrame({
        "sketch_file": ["s/a.png", "s/b.png", "s/c.png", "s/d.png"], "label": ["p1", "p2", "p3", "p4"],
        "rank": [1, 4, 2, 1], "rr": [1.0, 0.25, 0.5, 1.0], "acc@1": [1.0, 0.0, 0.0, 1.0],
        "top1_label": ["p1", "p3", "p1", "p4"], "category": ["cup", "cup", "cup", "hat"],
        "drawer": [0, 1, 1, 0]})
    spec = SimpleNamespace(info=info or {}, index_dir=Path("/nonexistent"), csv=lambda s: Path(f"index_{s}.csv"))
    details = {"gallery_files": ["g1", "g2", "g3", "g4"], "gallery_labels": ["p1", "p2", "p3", "p4"]}
    return analysis.RunResults("fake", Path("best.pt"), spec, "index_test.csv", {}, details, queries)
