"""Hostile file names in the HTML we write (issue 8): ``<img src=x onerror=alert(1)>.jpg`` is shown as text.
tests/test_gallery.py checks write_result_html directly; here the name comes through a real index and
``sbir eval``, and through the report site's index pages."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
from conftest import run_cli
from PIL import Image

from sbir_utils import engine, gallery, reports
from sbir_utils.config import TrainConfig
from sbir_utils.data.index import read_index, write_index

EVIL = "<img src=x onerror=alert(1)>"
EVIL_JPG = f"{EVIL}.jpg"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text += data


def _parse(path: Path) -> _Tags:
    page = _Tags()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _assert_inert(path: Path) -> _Tags:
    """No script, no event handler, no image pointing at ``x``: the hostile name never became markup."""
    html = path.read_text(encoding="utf-8")
    page = _parse(path)
    assert not [t for t, _ in page.tags if t == "script"]
    assert not [a for _, a in page.tags if any(k.lower().startswith("on") for k in a)], "an event-handler attribute"
    assert not [a for t, a in page.tags if t == "img" and a.get("src") == "x"]
    assert EVIL not in html
    return page


def test_hostile_photo_and_sketch_names_through_sbir_eval(tiny, tmp_path, capsys):
    test = read_index(tiny / "index_test.csv")
    old_photo = tiny / test.loc[0, "path_image"]
    Image.open(old_photo).convert("RGB").save(tiny / "photos" / EVIL_JPG, quality=95)
    (tiny / "sketches" / f"{EVIL}.png").write_bytes((tiny / test.loc[0, "path_sketch"]).read_bytes())
    test["path_image"] = test["path_image"].replace(test.loc[0, "path_image"], f"photos/{EVIL_JPG}")
    test.loc[0, "path_sketch"] = f"sketches/{EVIL}.png"
    test.loc[0, "label"] = EVIL  # a hostile label too
    test.loc[test["path_image"] == f"photos/{EVIL_JPG}", "label"] = EVIL
    write_index(test, tiny / "index_test.csv")
    assert read_index(tiny / "index_test.csv")["path_image"].str.contains("<img", regex=False).any()

    cfg = TrainConfig(model="convnext_infonce", backbone="test_convnext", image_size=32, embed_dim=16, epochs=1,
                      batch_size=8, lr=1e-3, loss="infonce", seed=7, keep_last=0)
    s = engine.fit(cfg, tiny, tmp_path / "run", progress=False)
    html_dir = tmp_path / f"{EVIL} gallery"
    rc, err = run_cli(capsys, ["eval", "--data_root", str(tiny), "--ckpt", s["best_checkpoint"], "--no_cuda",
                               "--html_dir", str(html_dir)])
    assert rc == 0, err
    page = _assert_inert(html_dir / "result.html")
    assert f"sketches/{EVIL}.png" in page.text  # shown as text, once unescaped by the parser
    alts = [a.get("alt", "") for t, a in page.tags if t == "img"]
    assert any(f"photos/{EVIL_JPG}" in alt for alt in alts)
    links = [a["href"] for t, a in _assert_inert(gallery.write_gallery_index(tmp_path)).tags if t == "a"]
    assert "%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E%20gallery/result.html" in links


def test_hostile_names_in_the_report_site_index(tmp_path):
    reports_dir = tmp_path / "reports"
    (reports_dir / "galleries" / EVIL).mkdir(parents=True)
    (reports_dir / "galleries" / EVIL / "result.html").write_text("<p>x</p>")
    pd.DataFrame({"model": [EVIL], "dataset": ["<script>alert(2)</script>"], "acc@1": [0.5]}).to_csv(
        reports_dir / "results.csv", index=False)
    notebooks = [{"stem": f"01_{EVIL}", "html": f"{EVIL}.html", "seconds": 1.0, "status": f"failed: {EVIL}"}]
    metadata = {"profile": EVIL, "dataset": "<script>alert(3)</script>", "git_commit": '"><svg onload=alert(4)>',
                "finished": "now", "wall_seconds": 1, "nested": {"k": EVIL}}
    page = _assert_inert(reports.write_index_html(reports_dir, notebooks, metadata))
    for text in (f"01_{EVIL}", f"galleries/{EVIL}/result.html", "<script>alert(2)</script>", '"><svg onload=alert(4)>'):
        assert text in page.text, text
    hrefs = [a["href"] for t, a in page.tags if t == "a"]
    assert all("<" not in h and ">" not in h for h in hrefs)  # link targets are URL-quoted


def test_figure_name_cannot_escape_the_figures_folder(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sbir_utils import paths

    monkeypatch.setattr(paths, "figures_dir", lambda: tmp_path / "figures")
    out = reports.save_figure(plt.figure(figsize=(1, 1)), f"../../{EVIL}", show=False)
    assert out.parent == tmp_path / "figures" and "<" not in out.name and "/" not in out.name
