"""sbir_utils.analysis.groups: metrics per group with bootstrap intervals, seen against unseen drawers."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from sbir_utils import analysis  # noqa: E402
from tests.helpers import fake_results  # noqa: E402


def test_per_group_and_drawer_split():
    res = fake_results({"unseen_drawers": [1]})
    table = analysis.per_group(res, "category", n_resamples=50)
    cup = table[(table["group"] == "cup") & (table["metric"] == "mrr")].iloc[0]
    assert cup["value"] == pytest.approx((1 + 0.25 + 0.5) / 3) and cup["n"] == 3
    assert cup["ci_low"] <= cup["value"] <= cup["ci_high"]
    assert set(table["metric"]) == {"acc@1", "mrr"}
    assert analysis.has_drawers(res) and not analysis.has_drawers(fake_results())
    split = analysis.drawer_split(res, n_resamples=50).set_index(["group", "metric"])
    assert split.loc[("unseen drawers", "acc@1"), "value"] == 0.0 and split.loc[("seen drawers", "acc@1"), "value"] == 1.0
    with pytest.raises(ValueError, match="no column 'drawerx'"):
        analysis.per_group(res, "drawerx")
    fig = analysis.plot_metric_tables({"by category": table})
    assert fig.axes[0].get_title() == "by category" and len(fig.axes[0].patches) == 4
    plt.close(fig)
