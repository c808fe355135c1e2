"""sbir_utils.evaluation.published: the published numbers, long (numeric) and wide (as transcribed)."""

from sbir_utils import evaluation


def test_published_long_and_wide():
    long = evaluation.published_table()
    assert list(long.columns) == evaluation.PUBLISHED_COLUMNS and long["value"].dtype.kind == "f"
    wide = evaluation.published_table(wide=True)
    assert list(wide.columns[:3]) == ["dataset", "split", "method"]
    assert "backbone, pretraining" in wide.columns and "metric" not in wide.columns
    assert len(wide) == long.groupby(["dataset", "split", "method", "notes", "backbone", "pretraining", "unit",
                                      "source"]).ngroups
