"""sbir_utils.analysis.projection: one scatter panel per projection, markers per modality."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from sbir_utils import analysis  # noqa: E402


def test_plot_projection_panels():
    df = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0.0, 1.0, 0.5, 0.2],
                       "group": ["cup", "cup", "hat", "hat"], "modality": ["sketch", "photo", "sketch", "photo"]})
    fig = analysis.plot_projection({"PCA": df, "t-SNE": df})
    assert [ax.get_title() for ax in fig.axes[:2]] == ["PCA", "t-SNE"]
    assert len(fig.axes[0].collections) == 4  # 2 groups x 2 modalities
    plt.close(fig)
