"""study.plot_learning_curves: lines for runs with several epochs; a run with a single epoch (the smoke
profile) is a labelled marker on an axis from 0, with a note that there is no curve."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import math  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from sbir_utils import study  # noqa: E402

NOTE = "1 epoch: no curve, one value per run"


def _runs(tmp_path, histories: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    rows = []
    for name, columns in histories.items():
        run_dir = tmp_path / name
        run_dir.mkdir()
        n = len(next(iter(columns.values())))
        pd.DataFrame({"epoch": list(range(1, n + 1)), **columns}).to_csv(run_dir / "metrics.csv", index=False)
        rows.append({"run": name, "seed": 0, "run_dir": str(run_dir)})
    return pd.DataFrame(rows)


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def _epoch_ticks(ax) -> list[float]:
    """The x ticks inside the axis' limits."""
    lo, hi = ax.get_xlim()
    return [float(t) for t in ax.get_xticks() if lo <= t <= hi]


def test_single_epoch_runs_are_labelled_points_on_an_axis_from_zero(tmp_path):
    runs = _runs(tmp_path, {"a": {"train_loss": [0.8], "val_acc@1": [0.25]},
                            "b": {"train_loss": [1.6], "val_acc@1": [0.0]}})
    fig = study.plot_learning_curves(runs)
    loss, acc = fig.axes
    for ax, values in ((loss, (0.8, 1.6)), (acc, (0.25, 0.0))):
        assert ax.get_ylim() == pytest.approx((0.0, 1.35 * max(values)))  # not 0.96-1.04 around one dot
        assert ax.get_xlim() == (0.5, 1.5)
        assert _epoch_ticks(ax) == [1.0]  # no 0.6, 0.8, ... epochs
        assert NOTE in _texts(ax)
        assert [f"{v:.3g}" for v in values] == [t for t in _texts(ax) if t != NOTE]  # each value printed
        assert [line.get_markersize() for line in ax.lines] == [7, 7]
        assert [list(line.get_ydata()) for line in ax.lines] == [[v] for v in values]
    plt.close(fig)


def test_equal_single_epoch_values_stay_readable(tmp_path):
    """Five runs, three with the same value: side by side around epoch 1, no two labels overlapping, and
    no label over the note."""
    values = [0.0833, 0.0833, 0.167, 0.0833, 0.42]
    runs = _runs(tmp_path, {f"run-{i}": {"train_loss": [1.0], "val_acc@1": [v]} for i, v in enumerate(values)})
    fig = study.plot_learning_curves(runs)
    ax = fig.axes[1]
    xs = [float(line.get_xdata()[0]) for line in ax.lines]
    assert xs == sorted(xs) and len(set(xs)) == 5 and sum(xs) / 5 == pytest.approx(1.0)
    assert 0.5 < xs[0] and xs[-1] < 1.5
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(boxes) == 6  # five values and the note
    for i, first in enumerate(boxes):
        for second in boxes[i + 1:]:
            assert not first.overlaps(second), (first, second)
    plt.close(fig)


def test_runs_with_several_epochs_are_plain_curves(tmp_path):
    runs = _runs(tmp_path, {"a": {"train_loss": [0.9, 0.6, 0.5], "val_acc@1": [0.2, 0.3, 0.35]},
                            "b": {"train_loss": [1.0, 0.8, 0.7], "val_acc@1": [0.1, 0.2, 0.3]}})
    fig = study.plot_learning_curves(runs)
    for ax in fig.axes:
        assert _texts(ax) == [] and len(ax.lines) == 2
        assert all(len(line.get_xdata()) == 3 for line in ax.lines)
        assert ax.get_ylim()[0] > 0  # matplotlib's own limits around the curves
    assert _epoch_ticks(fig.axes[0]) == [1.0, 2.0, 3.0]  # whole epochs
    plt.close(fig)


def test_a_one_epoch_run_beside_a_curve_keeps_the_curve_axes(tmp_path):
    runs = _runs(tmp_path, {"long": {"train_loss": [0.9, 0.6, 0.5], "val_acc@1": [0.2, 0.3, 0.35]},
                            "short": {"train_loss": [0.7], "val_acc@1": [math.nan]}})
    fig = study.plot_learning_curves(runs)
    loss, acc = fig.axes
    assert NOTE not in _texts(loss) and _texts(loss) == ["0.7"]  # the lone point is still labelled
    assert loss.get_ylim()[0] > 0
    assert _texts(acc) == ["nan"] and NOTE not in _texts(acc)
    plt.close(fig)
