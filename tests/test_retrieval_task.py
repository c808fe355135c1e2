"""retrieval_task: the one query/gallery task of an index frame gives what the three former copies gave
(engine.retrieval_metrics / analysis.partial, and baselines.retrieval_task), with one label convention."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sbir_utils.baselines import retrieval_task as baseline_task
from sbir_utils.metrics import unique_gallery
from sbir_utils.retrieval_task import relevance, retrieval_task, sorted_index


def _index() -> pd.DataFrame:
    """Duplicate photos (one per sketch drawn from it), a sketch listed twice, integer-like labels."""
    rows = [("s/3.png", "p/b.jpg", "007"), ("s/1.png", "p/a.jpg", "7"), ("s/2.png", "p/a.jpg", "7"),
            ("s/1.png", "p/a.jpg", "7"), ("s/4.png", "p/c.jpg", "07"), ("s/5.png", "p/b.jpg", "007")]
    df = pd.DataFrame(rows, columns=["path_sketch", "path_image", "label"])
    return df.assign(sketch_file="/d/" + df["path_sketch"], image_file="/d/" + df["path_image"])


def _old_engine(df: pd.DataFrame):
    queries = df.drop_duplicates("sketch_file", keep="first")
    g_paths, g_labels, _ = unique_gallery(df["image_file"].tolist(), df["label"].astype(str).tolist())
    q_labels = queries["label"].astype(str).to_numpy()
    relevant = q_labels[:, None] == np.asarray(g_labels, dtype=object).astype(str)[None, :]
    return queries["sketch_file"].tolist(), q_labels, g_paths, g_labels, relevant


def _old_baseline(df: pd.DataFrame):
    gallery, gallery_labels, _ = unique_gallery(df["image_file"].tolist(), df["label"].tolist())
    relevant = df["label"].to_numpy()[:, None] == np.asarray(gallery_labels)[None, :]
    return df["sketch_file"].tolist(), list(gallery), relevant


def test_distinct_queries_as_engine_did():
    df = sorted_index(_index())
    task = retrieval_task(df)
    q_files, q_labels, g_paths, g_labels, relevant = _old_engine(df)
    assert task.query_files == q_files == ["/d/s/1.png", "/d/s/2.png", "/d/s/3.png", "/d/s/4.png", "/d/s/5.png"]
    assert task.query_labels.tolist() == q_labels.tolist() == ["7", "7", "007", "07", "007"]
    assert task.gallery_files == g_paths == ["/d/p/a.jpg", "/d/p/b.jpg", "/d/p/c.jpg"]
    assert task.gallery_labels.tolist() == g_labels.tolist() == ["7", "007", "07"]
    assert task.relevant.dtype == np.bool_
    np.testing.assert_array_equal(task.relevant, relevant)
    assert task.relevant.sum(axis=1).tolist() == [1] * 5  # "007", "07" and "7" never conflated


def test_every_row_as_baselines_did():
    df = _index()  # unsorted: the row order is kept
    task = retrieval_task(df, distinct_queries=False)
    queries, gallery, relevant = _old_baseline(df)
    assert task.query_files == queries and len(queries) == 6
    assert task.gallery_files == gallery
    np.testing.assert_array_equal(task.relevant, relevant)
    got = baseline_task(df)
    assert got[0] == queries and got[1] == gallery
    np.testing.assert_array_equal(got[2], relevant)


def test_labels_compared_as_strings():
    # "007" and 7 stay distinct, 7 and "7" are the same label (read_index gives str labels; mixed frames too)
    df = pd.DataFrame({"sketch_file": ["a", "b", "c"], "image_file": ["x", "y", "y"], "label": ["007", 7, "7"]})
    task = retrieval_task(df)
    assert task.query_labels.tolist() == ["007", "7", "7"]
    assert task.gallery_labels.tolist() == ["007", "7"]
    np.testing.assert_array_equal(task.relevant, [[True, False], [False, True], [False, True]])
    np.testing.assert_array_equal(relevance(np.array(["7", "007"]), [7, "007"]), [[True, False], [False, True]])
    assert relevance(np.array([], dtype=str), ["a"]).shape == (0, 1)
