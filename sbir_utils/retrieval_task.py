"""The query/gallery task of an index DataFrame, built in one place for evaluation, baselines, fusion and
analysis: the queries (sketches, in the frame's row order), the gallery (each photo once, sorted by path,
``metrics.unique_gallery``) and ``relevant`` (Q, G) bool, where a photo is relevant to a sketch when their
labels are equal *as strings* (``read_index`` gives ``str`` labels; ``"007"`` and ``7`` stay distinct)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from .metrics import unique_gallery

SORT_COLUMNS = ["path_sketch", "path_image", "label"]


class RetrievalTask(NamedTuple):
    queries: pd.DataFrame  # one row per query, in the index's row order
    query_labels: np.ndarray  # (Q,) str (object dtype)
    gallery_files: list[str]  # (G,) each photo once, sorted by path
    gallery_labels: np.ndarray  # (G,) str
    relevant: np.ndarray  # (Q, G) bool

    @property
    def query_files(self) -> list[str]:
        return self.queries["sketch_file"].tolist()


def sorted_index(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` sorted by (sketch, photo, label), stable: the task never depends on the CSV's row order."""
    return df.sort_values(SORT_COLUMNS, kind="stable").reset_index(drop=True)


def relevance(query_labels: Any, gallery_labels: Any) -> np.ndarray:
    """(Q, G) bool: query label == gallery label, both compared as strings."""
    q = np.asarray(query_labels, dtype=object).astype(str)
    g = np.asarray(gallery_labels, dtype=object).astype(str)
    return q[:, None] == g[None, :]


def retrieval_task(df: pd.DataFrame, distinct_queries: bool = True) -> RetrievalTask:
    """The task of an index frame (``sketch_file``, ``image_file``, ``label`` columns).

    ``distinct_queries``: each sketch once (its first row; ``engine.evaluate``, the baselines' test split,
    partial sketches); False: every row is a query (HOG tuning on sampled training rows, fusion).
    """
    queries = df.drop_duplicates("sketch_file", keep="first") if distinct_queries else df
    g_files, g_labels, _ = unique_gallery(df["image_file"].tolist(), df["label"].astype(str).tolist())
    q_labels = queries["label"].astype(str).to_numpy()
    return RetrievalTask(queries, q_labels, list(g_files), g_labels, relevance(q_labels, g_labels))
