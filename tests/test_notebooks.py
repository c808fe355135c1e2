"""Notebook hygiene: thin, parameterised, no committed outputs (nbval executes them separately)."""

import ast

import nbformat
import pytest

from sbir_utils import pipeline

NOTEBOOKS = pipeline.notebooks()


def test_the_six_numbered_notebooks_exist():
    assert [nb.name[:2] for nb in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_thin_and_clean(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "sbir"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and nb.cells.index(params[0]) == 1, "second cell must be the tagged parameters cell"
    assert 'profile = "smoke"' in params[0].source, "committed defaults must be smoke-sized"
    from papermill.translators import PythonTranslator

    assignments = [line for line in params[0].source.splitlines() if line and not line.startswith("#")]
    parsed = PythonTranslator.inspect(params[0])  # papermill's own parser ("Unable to parse line" otherwise)
    assert len(parsed) == len(assignments), "papermill must read every parameter (no '=' in comments)"
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        assert not cell.outputs and cell.execution_count is None, "outputs must not be committed"
        tree = ast.parse(cell.source)
        defs = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef | ast.Lambda)]
        assert not defs, "functions belong in sbir_utils, not in notebooks"
        assert "os.chdir" not in cell.source and "../" not in cell.source, "paths come from sbir_utils.paths"
        assert len(cell.source.splitlines()) <= 25, "keep cells short: call sbir_utils"
