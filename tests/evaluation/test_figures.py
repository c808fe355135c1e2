"""sbir_utils.evaluation.figures: the test-results figure's panels from a hand-made results table."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sbir_utils import evaluation  # noqa: E402


def _row(run, family, group, data, stage, metric, value, seed=1):
    return {"run": run, "family": family, "group": group, "data": data, "seed": seed, "stage": stage,
            "metric": metric, "value": value, "ci_low": value - 0.1, "ci_high": value + 0.1, "n_queries": 8}


def test_plot_test_results_panels():
    rows = [_row("aafg-fine-baseline", "aafg", "ablation", "fine", "stage1", "acc@1", 0.3),
            _row("aafg-fine-SA+CA", "aafg", "ablation", "fine", "stage1", "acc@1", 0.4),
            _row("aafg-fine-SA+CA", "aafg", "ablation", "fine", "stage2", "acc@1", 0.5),
            _row("random", "baseline", "baseline", "fine", "-", "acc@1", 0.1, np.nan),
            _row("convnext-normal", "convnext", "scene", "scene-normal", "stage1", "acc@1", 0.6),
            _row("convnext-normal", "convnext", "scene", "scene-normal", "stage1", "acc@10", 0.9)]
    fig = evaluation.plot_test_results(pd.DataFrame(rows))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["AAFG ablation, fine test split", "ConvNeXt-InfoNCE, scene-level"]
    ablation = fig.axes[0]
    assert [t.get_text() for t in ablation.get_xticklabels()] == ["baseline", "SA+CA"]
    assert len(ablation.patches) == 3  # two stage-1 bars, one stage-2 bar
    assert [line.get_ydata()[0] for line in ablation.lines if line.get_linestyle() == ":"] == [0.1]
    plt.close(fig)
