"""The published numbers of the SBIR reference (``resources/published.csv``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import paths
from .common import PUBLISHED_COLUMNS


def published_table(wide: bool = False) -> pd.DataFrame:
    """The published numbers of the SBIR reference (section 5), as reported (``unit`` says percent or
    fraction), from ``resources/published.csv``: one row per (method, dataset, split, metric). Never
    comparable with this study's numbers as they stand: other datasets, pretrained backbones, GPUs.

    ``wide=True``: one row per (dataset, split, method), one column per metric, values as transcribed text;
    notes join the method name and pretraining the backbone column.
    """
    path = paths.RESOURCES_DIR / "published.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in PUBLISHED_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}")
    table = table[PUBLISHED_COLUMNS]
    if wide:
        table = table.assign(
            method=table["method"] + np.where(table["notes"] != "", " (" + table["notes"] + ")", ""),
            backbone=np.where(table["backbone"] != "", table["backbone"] + ", " + table["pretraining"],
                              table["pretraining"]))
        keys = ["dataset", "split", "method", "unit", "backbone", "source"]
        out = table.pivot_table(index=keys, columns="metric", values="value", aggfunc="first", sort=False,
                                fill_value="").reset_index().rename_axis(columns=None)
        out = out.rename(columns={"backbone": "backbone, pretraining"})
        keys[4] = "backbone, pretraining"
        order = [m for m in ("acc@1", "acc@10", "R@1", "R@5", "R@10", "mAP@all", "P@100") if m in out.columns]
        return out[keys[:3] + order + keys[3:] + [c for c in out.columns if c not in keys + order]]
    try:
        return table.assign(value=pd.to_numeric(table["value"]))
    except ValueError as exc:
        raise ValueError(f"{path}: a value is not a number ({exc})") from None
