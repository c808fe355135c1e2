"""sbir_utils.analysis.attributes: same-category confusions and the attribute-difference helper."""

import numpy as np
import pandas as pd
import pytest

from sbir_utils import analysis
from sbir_utils.analysis import attributes
from tests.helpers import fake_results


def test_confusions_keep_same_category_errors():
    attrs = pd.DataFrame({"photo_id": ["p1", "p2", "p3", "p4"], "category": ["mug", "cup", "cup", "hat"]})
    err = analysis.confusions(fake_results(), attrs)
    assert err["sketch_file"].tolist() == ["s/b.png"]  # p2 -> p3 within cup; p3 -> p1 crosses to mug
    with pytest.raises(ValueError, match="no row for photo id"):
        analysis.confusions(fake_results(), attrs.iloc[:2])


def test_differs_by_position_with_nan():
    a, b = pd.Series([0.1, 0.5, None]), pd.Series([0.12, 0.9, 1.0], index=[5, 6, 7])
    d = attributes._differs(a, b, continuous=True, tol=0.05)
    assert d[:2].tolist() == [0.0, 1.0] and np.isnan(d[2])
    assert attributes._differs(pd.Series(["x", "y"]), pd.Series(["x", "z"]), False, 0).tolist() == [0.0, 1.0]
