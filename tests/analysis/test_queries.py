"""sbir_utils.analysis.queries: the worst queries (stable order) and the rank histogram panels."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sbir_utils import analysis  # noqa: E402
from tests.helpers import fake_results  # noqa: E402


def test_worst_queries_and_rank_histograms():
    res = fake_results()
    assert analysis.worst_queries(res, 3)["sketch_file"].tolist() == ["s/b.png", "s/c.png", "s/a.png"]
    fig = analysis.plot_rank_histograms({"fine": {"model": res}, "other": {"model": res}})
    assert [ax.get_title() for ax in fig.axes] == ["fine", "other"]
    assert fig.axes[0].get_legend_handles_labels()[1] == ["model (G=4, median 1.5)"]
    plt.close(fig)
