"""`pipeline` (`sbir reproduce`): the numbered notebooks in order, a failing notebook named with its cell while
the previous reports stay, a notebook's stderr echoed live, publishing the staged reports. (The whole
`make reproduce` against the golden results: test_reproduce.py.)"""

import nbformat
import pytest

from sbir_utils import paths, pipeline


def test_notebooks_are_the_numbered_ones_in_order(tmp_path, monkeypatch):
    for name in ("02_b.ipynb", "01_a.ipynb", "10_c.ipynb", "x_01.ipynb", "01_a.html", "README.md"):
        (tmp_path / name).write_text("{}")
    monkeypatch.setattr(paths, "NOTEBOOKS_DIR", tmp_path)
    assert [p.name for p in pipeline.notebooks()] == ["01_a.ipynb", "02_b.ipynb", "10_c.ipynb"]


def test_publish_replaces_older_reports_and_drops_the_failed_run(tmp_path):
    staging, final = tmp_path / "staging", tmp_path / "reports"
    (staging / "figures").mkdir(parents=True)
    (staging / "figures" / "new.png").write_text("new")
    (staging / "index.html").write_text("new index")
    (final / "figures").mkdir(parents=True)
    (final / "figures" / "old.png").write_text("old")
    (final / "index.html").write_text("old index")
    (final / "README.md").write_text("kept")
    (final / "failed-run" / "executed").mkdir(parents=True)
    pipeline._publish(staging, final)
    assert not staging.exists() and (final / "index.html").read_text() == "new index"
    assert sorted(p.name for p in final.iterdir()) == ["README.md", "figures", "index.html"]
    assert [p.name for p in (final / "figures").iterdir()] == ["new.png"]


@pytest.mark.slow
def test_failing_notebook_is_named_and_previous_reports_stay(tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "sbir", "display_name": "sbir", "language": "python"}
    params = nbformat.v4.new_code_cell("profile = 'smoke'")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("raise RuntimeError('boom')")]
    failing = tmp_path / "nb" / "01_failing.ipynb"
    failing.parent.mkdir()
    nbformat.write(nb, failing)
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "index.html").write_text("previous run")
    monkeypatch.setattr(pipeline, "notebooks", lambda: [failing])
    monkeypatch.setattr(pipeline, "prepare_data", lambda profile, dataset: None)
    with pytest.raises(pipeline.NotebookFailed, match=r"01_failing.ipynb: cell 3 .*RuntimeError: boom"):
        pipeline.run_study("smoke", reports_dir=reports)
    assert (reports / "index.html").read_text() == "previous run"
    assert (reports / "failed-run" / "executed" / "01_failing.ipynb").exists()


@pytest.mark.slow
def test_real_dataset_without_data_root_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="needs DATA_ROOT"):
        pipeline.run_study("smoke", dataset="qmul", reports_dir=tmp_path)


@pytest.mark.slow
def test_notebook_stderr_is_echoed_while_it_runs(tmp_path, monkeypatch, capsys):
    """Progress is visible: a notebook's stderr (the per-epoch training lines) reaches the console live."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "sbir", "display_name": "sbir", "language": "python"}
    params = nbformat.v4.new_code_cell("profile = 'smoke'")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# 01 · Echo"), params,
                nbformat.v4.new_code_cell("import sys\nprint('epoch 1/2 loss 0.5', file=sys.stderr)\nprint('a table')")]
    path = tmp_path / "nb" / "01_echo.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, path)
    monkeypatch.setattr(pipeline, "notebooks", lambda: [path])
    monkeypatch.setattr(pipeline, "prepare_data", lambda profile, dataset: None)
    pipeline.run_study("smoke", reports_dir=tmp_path / "reports")
    out = capsys.readouterr()
    assert "epoch 1/2 loss 0.5" in out.err and "a table" not in out.out + out.err
