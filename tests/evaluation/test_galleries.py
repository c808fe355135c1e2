"""sbir_utils.evaluation.galleries: the links list (relative, quoted, escaped) and metric -> column names."""

from sbir_utils import evaluation
from sbir_utils.evaluation import galleries


def test_gallery_links_html(tmp_path, monkeypatch):
    monkeypatch.setenv("SBIR_REPORTS_DIR", str(tmp_path))
    page = tmp_path / "galleries" / "a+b<c>" / "result.html"
    html = evaluation.gallery_links_html([page])
    assert html == '<ul><li><a href="galleries/a%2Bb%3Cc%3E/result.html">a+b&lt;c&gt;</a></li></ul>'
    assert evaluation.gallery_links_html([]) == "<p>no galleries written</p>"


def test_column_inverts_metric_names():
    assert [galleries._column(m) for m in ("mrr", "mAP@all", "mAP@200", "P@100", "acc@1")] == [
        "rr", "ap", "ap@200", "p@100", "acc@1"]
