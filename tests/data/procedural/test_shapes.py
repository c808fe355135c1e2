"""`data.procedural.shapes`: every category's instances vary in at least five attributes and never repeat;
members of a family differ in fewer attributes than neighbours of different families."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sbir_utils.data import procedural as proc
from sbir_utils.data.procedural import shapes


def test_every_category_has_five_varying_attributes():
    assert len(proc.CATEGORY_ATTRIBUTES) >= 8
    for cat, names in proc.CATEGORY_ATTRIBUTES.items():
        assert len(names) >= 5
        rows = pd.DataFrame([shapes.instance_attributes(cat, i, 40, 0) for i in range(40)])
        varying = [n for n in names if rows[n].nunique() > 1]
        assert len(varying) >= 5, (cat, varying)
        assert len(rows[names].drop_duplicates()) == 40, f"{cat}: duplicate instances"


def test_family_members_differ_in_a_few_attributes():
    cat, n = "chair", 40
    rows = [shapes.instance_attributes(cat, i, n, 0) for i in range(n)]
    fam = round(n / shapes.FAMILY_SIZE)
    names = [a for a in proc.CATEGORY_ATTRIBUTES[cat] if not isinstance(shapes.CATEGORY_SPECS[cat][a], shapes.Continuous)]
    same = [sum(rows[i][a] != rows[i + fam][a] for a in names) for i in range(n - fam)]
    other = [sum(rows[i][a] != rows[i + 1][a] for a in names) for i in range(n - 1)]
    assert np.mean(same) < np.mean(other)
