"""`transfer_report` (notebook 06's side of the transfer table): where its runs live, whether the notebook's data
can have one and why not, the finished table, and its two figures."""

import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402

from sbir_utils import transfer_report  # noqa: E402
from sbir_utils.transfer import GOAL  # noqa: E402
from tests.helpers import make_tiny_dataset  # noqa: E402


def test_transfer_dir_is_under_the_runs_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SBIR_RUNS_DIR", str(tmp_path / "runs"))
    assert transfer_report.transfer_dir("cpu", "shoes") == tmp_path / "runs" / "cpu" / "shoes" / "transfer"


def test_applicable_only_to_fine_grained_data_with_a_test_split(tmp_path):
    assert transfer_report.applicable("embedded", tmp_path) == (False, transfer_report.HOW_TO)
    assert transfer_report.applicable("shoes", None) == (False, transfer_report.HOW_TO)
    ok, why = transfer_report.applicable("nothing", tmp_path / "nothing")
    assert not ok and why.startswith(f"{tmp_path / 'nothing'}: ")
    fine = make_tiny_dataset(tmp_path / "fine", photos=(2, 1, 1))
    assert transfer_report.applicable("fine", fine) == (True, "")
    (fine / "index_test.csv").unlink()
    ok, why = transfer_report.applicable("fine", fine)
    assert not ok and "index_test.csv: missing" in why
    cat = make_tiny_dataset(tmp_path / "cat", photos=(2, 1, 1), protocol="category")
    ok, why = transfer_report.applicable("cat", cat)
    assert not ok and "protocol 'category'" in why and "fine-grained" in why


def test_table_and_its_figures(tmp_path):
    assert transfer_report.load_table(tmp_path) is None
    table = pd.DataFrame({"method": ["HOG", "scratch", "fine-tuned"], "acc@1": [0.1, 0.2, 0.4],
                          "acc@1_sd": [None, 0.05, 0.02], "acc@10": [0.5, 0.6, 0.8], "acc@10_sd": [None, 0.1, 0.0],
                          "n_gallery": [40, 40, 40]})
    table.to_csv(tmp_path / "transfer.csv", index=False)
    pd.testing.assert_frame_equal(transfer_report.load_table(tmp_path), table)
    fig = transfer_report.plot_table(table)
    assert len(fig.axes) == 2
    for ax, metric in zip(fig.axes, ("acc@1", "acc@10")):
        assert [round(p.get_height(), 6) for p in ax.patches] == table[metric].tolist()
        goal = [line for line in ax.lines if line.get_label().startswith("goal")]
        assert len(goal) == 1 and list(goal[0].get_ydata()) == [GOAL[metric]] * 2 and "gallery 40" in ax.get_title()
    for name, seeds in (("scratch", 2), ("fine-tuned", 1)):
        for s in range(seeds):
            (tmp_path / "runs" / name / f"seed{s}").mkdir(parents=True)
            pd.DataFrame({"epoch": [1, 2, 3], "val_mrr": [0.1, 0.2, 0.3 + s]}).to_csv(
                tmp_path / "runs" / name / f"seed{s}" / "metrics.csv", index=False)
    ax = transfer_report.learning_curves(tmp_path).axes[0]
    assert len(ax.lines) == 3 and [t.get_text() for t in ax.get_legend().get_texts()] == ["scratch", "fine-tuned"]
    assert sorted(line.get_ydata()[-1] for line in ax.lines) == [0.3, 0.3, 1.3]
