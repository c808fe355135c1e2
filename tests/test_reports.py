"""The report site without a browser: the index's findings and smoke banner, the notebook reports' title,
back link, file mode and stderr streams, and the notebook table helper. Fast: no notebook is executed."""

from __future__ import annotations

import base64
import re
import stat
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from sbir_utils import reports

COLUMNS = ["model", "test data", "stage", "seeds", "queries", "gallery", "acc@1 / R@1", "acc@10 / R@10", "mAP@all"]


def _results() -> pd.DataFrame:
    """A small results.csv as headline_table writes it (values as text)."""
    rows = [
        ["aafg-fine-baseline", "fine", "1", "1", "240", "80", "0.900 [0.850, 0.950]", "1.000 [1.000, 1.000]", "–"],
        ["aafg-fine-SA+CA", "fine", "1", "3", "240", "80", "0.318 ± 0.024 (3 seeds)", "0.885 ± 0.021 (3 seeds)", "–"],
        ["aafg-fine-SA+CA", "fine", "2 (re-ranked)", "3", "240", "80", "0.500 ± 0.010 (3 seeds)", "0.9 ± 0.0 (3 seeds)",
         "–"],
        ["random", "fine", "-", "–", "240", "80", "0.017 [0.004, 0.033]", "0.104 [0.067, 0.142]", "–"],
        ["HOG", "fine", "-", "–", "240", "80", "0.279 [0.225, 0.329]", "0.604 [0.542, 0.667]", "–"],
        # category: the main model is missing; the fallback takes the best learned row on test
        ["aafg-category-other", "category", "1", "1", "240", "80", "–", "–", "0.600 [0.550, 0.650]"],
        ["aafg-category-better", "category", "1", "1", "240", "80", "–", "–", "0.700 [0.650, 0.750]"],
        ["random", "category", "-", "–", "240", "80", "–", "–", "0.160 [0.153, 0.168]"],
        ["HOG", "category", "-", "–", "240", "80", "–", "–", "0.437 [0.415, 0.460]"],
        ["convnext-normal", "scene-normal", "1", "3", "120", "120", "0.133 ± 0.033 (3 seeds)", "0.5 ± 0.1 (3 seeds)",
         "–"],
        ["random", "scene-normal", "-", "–", "120", "120", "0.000 [0.000, 0.000]", "0.033 [0.008, 0.067]", "–"],
        ["HOG", "scene-normal", "-", "–", "120", "120", "0.842 [0.775, 0.900]", "0.967 [0.933, 0.992]", "–"],
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


def test_parse_interval():
    assert reports.parse_interval("0.329 [0.267, 0.388]") == {"value": 0.329, "low": 0.267, "high": 0.388,
                                                              "kind": "ci", "text": "0.329 [0.267, 0.388]"}
    seeds = reports.parse_interval("0.318 ± 0.024 (3 seeds)")
    assert seeds["kind"] == "seeds" and seeds["seeds"] == 3
    assert seeds["low"] == pytest.approx(0.294) and seeds["high"] == pytest.approx(0.342)
    for text in ("–", "n/a: gallery < 100", "not computed", "", "nan"):
        assert reports.parse_interval(text) is None


def test_findings_follow_the_stated_rule():
    found = {f["protocol"]: f for f in reports.findings(_results())}
    assert list(found) == ["fine-grained", "category-level", "scene-level"]

    fine = found["fine-grained"]  # the main model at stage 1, not the better-looking baseline row or stage 2
    assert (fine["learned_model"], fine["learned_stage"], fine["metric"]) == ("aafg-fine-SA+CA", "1", "acc@1")
    assert fine["rule"] == "the study's main model, chosen in advance"
    assert fine["learned"]["value"] == 0.318 and fine["hog"]["value"] == 0.279 and fine["random"]["value"] == 0.017
    assert "overlap: no difference from HOG" in fine["vs_hog"]  # [0.294, 0.342] against [0.225, 0.329]
    assert fine["vs_random"].endswith("the model is above random.")

    cat = found["category-level"]  # main model missing: best on test, labelled so
    assert cat["learned_model"] == "aafg-category-better" and cat["rule"] == "best on test, for reading only"
    assert cat["metric"] == "mAP@all" and cat["vs_hog"].endswith("the model is above HOG.")

    scene = found["scene-level"]
    assert scene["learned_model"] == "convnext-normal" and scene["metric"] == "R@1"
    assert scene["vs_hog"] == "the intervals do not overlap: the model is below HOG."


def test_findings_skip_missing_protocols_and_baselines():
    only_fine = _results()[lambda d: (d["test data"] == "fine") & (d["model"] != "HOG")]
    found = reports.findings(only_fine)
    assert [f["protocol"] for f in found] == ["fine-grained"]
    assert found[0]["hog"] is None and found[0]["vs_hog"] == "no HOG row to compare with."
    assert reports.findings(pd.DataFrame(columns=COLUMNS)) == []
    text = reports.findings_html(found)
    assert "<h2>Findings</h2>" in text and "aafg-fine-SA+CA" in text


def _site(tmp_path: Path, profile: str) -> Path:
    out = tmp_path / profile
    out.mkdir()
    _results().to_csv(out / "results.csv", index=False)
    (out / "results_long.csv").write_text("run,metric,value\n")
    (out / "figures").mkdir()
    reports.write_index_html(out, [{"stem": "04_evaluation", "html": "04_evaluation.html", "seconds": 1.0,
                                    "status": "ok"}],
                             {"profile": profile, "dataset": "embedded", "git_commit": "abc", "finished": "now",
                              "wall_seconds": 3})
    return out / "index.html"


@pytest.mark.parametrize("profile", ["smoke", "cpu"])
def test_index_findings_banner_links_and_mode(tmp_path, profile):
    index = _site(tmp_path, profile)
    text = index.read_text()
    assert text.index("<h2>Findings</h2>") < text.index("<h2>Notebook reports</h2>") < text.index("Headline results")
    assert ("Smoke profile: these numbers are meaningless" in text) == (profile == "smoke")
    assert "(here 80–120 photos)" in text or profile != "smoke"
    for href in ("href='results.csv'", "href='results_long.csv'", "href='figures/'"):
        assert href in text
    assert "class='scroll results'" in text and "white-space:nowrap" in text
    assert stat.S_IMODE(index.stat().st_mode) == 0o644


def _executed(tmp_path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()
    nb.cells = [
        nbformat.v4.new_markdown_cell("Intro without a heading"),
        nbformat.v4.new_markdown_cell("# 02 · AAFG <training>\nText."),
        nbformat.v4.new_code_cell("train()", execution_count=1, outputs=[
            nbformat.v4.new_output("stream", name="stderr", text="epoch 1 loss 0.5\n"),
            nbformat.v4.new_output("stream", name="stdout", text="done\n"),
            nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"})]),
        nbformat.v4.new_code_cell("1/0", execution_count=2, outputs=[
            nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero", traceback=[])]),
    ]
    path = tmp_path / "02_aafg_training.ipynb"
    nbformat.write(nb, path)
    return path


def test_notebook_report_title_back_link_mode_and_streams(tmp_path):
    executed = _executed(tmp_path)
    assert reports.stderr_to_stdout_file(executed) == 1
    nb = nbformat.read(executed, as_version=4)
    assert [o.get("name") for o in nb.cells[2].outputs] == ["stdout", "stdout", None]
    assert nb.cells[3].outputs[0].output_type == "error"  # errors stay errors
    assert reports.stderr_to_stdout_file(executed) == 0

    out = reports.export_notebook_html(_executed(tmp_path), tmp_path / "02_aafg_training.html")
    text = out.read_text()
    assert "<title>02 · AAFG &lt;training&gt;</title>" in text
    assert text.index('<a href="index.html">') < text.index("epoch 1 loss")
    stderr_blocks = re.findall(r'application/vnd\.jupyter\.stderr"[^>]*>(.*?)</div>', text, re.DOTALL)
    assert len(stderr_blocks) == 1 and "epoch 1 loss" not in stderr_blocks[0]  # only the error output
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_table_formats_numbers_and_hides_row_numbers():
    df = pd.DataFrame({"run": ["a", "b"], "acc@1": [0.123456, np.nan], "n": [3, 4]})
    html_text = reports.table(df).to_html()
    assert "0.123" in html_text and "0.123456" not in html_text and "nan" not in html_text.lower()
    assert ">0<" not in html_text and ">1<" not in html_text  # no row numbers
    assert "white-space: nowrap" in html_text
    named = reports.table(df.set_index("run")).to_html()
    assert ">a<" in named  # a meaningful index stays


def test_make_readable(tmp_path):
    (tmp_path / "galleries" / "m" / "thumbs").mkdir(parents=True)
    files = [tmp_path / "results.csv", tmp_path / "galleries" / "m" / "result.html",
             tmp_path / "galleries" / "m" / "thumbs" / "t.png"]
    for f in files:
        f.write_text("x")
        f.chmod(0o600)
    assert reports.make_readable(tmp_path) == 3
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o644 for f in files)


def test_index_escapes_a_hostile_model_name(tmp_path):
    """The index is a Jinja2 template with autoescaping: a model name that is a script is text in the
    findings (here the best learned row on test), the results table and the report list."""
    evil = "<script>alert(1)</script>"
    results = _results()
    results.loc[results["model"] == "aafg-category-better", "model"] = evil
    results.to_csv(tmp_path / "results.csv", index=False)
    reports.write_index_html(tmp_path, [{"stem": f"04_{evil}", "html": f"{evil}.html", "seconds": 1.0,
                                         "status": evil}], {"profile": "smoke", "git_commit": evil})
    text = (tmp_path / "index.html").read_text()
    assert evil not in text and "<script" not in text
    findings = text[text.index("<h2>Findings</h2>"):text.index("<h2>Notebook reports</h2>")]
    assert "<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>, stage 1" in findings
    assert text.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 6  # commit, findings, table, stem, status, metadata
    assert 'href="%3Cscript%3Ealert%281%29%3C/script%3E.html"' in text  # link targets are URL-quoted


def test_templates_ship_with_the_package():
    """Every template is package data (pyproject's globs), and the environment autoescapes them all."""
    import tomllib

    from sbir_utils import templating

    pyproject = tomllib.loads((Path(reports.__file__).parents[1] / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["sbir_utils"]
    names = sorted(p.name for p in templating.TEMPLATES_DIR.iterdir())
    package = Path(reports.__file__).parent
    shipped = {p.resolve() for g in globs for p in package.glob(g) if p.is_file()}  # setuptools: * stops at /
    assert {"report_index.html", "findings.html", "gallery_page.html", "back_link.html"} <= set(names)
    for name in names:
        assert (templating.TEMPLATES_DIR / name).resolve() in shipped, name
        if name.endswith(".html"):
            assert templating.environment().get_template(name).environment.autoescape(name)
    assert templating.render("smoke_banner.html", sizes="<b>").count("&lt;b&gt;") == 1
