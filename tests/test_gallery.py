"""result.html galleries: red border on exactly the right photos, ranks of misses, pagination, relative
thumbnails that exist, escaping of hostile names and captions, deterministic sampling."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sbir_utils.gallery import sample_rows, write_gallery_index, write_result_html

EVIL_NAME = "<img src=x onerror=alert(1)>.png"
EVIL_CAPTION = "<script>alert(1)</script>"


class _Page(HTMLParser):
    """Collect every tag with its attributes, and per gallery row its images and text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.rows: list[dict] = []
        self._depth = 0  # div depth inside the current row

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "div":
            if "row" in (a.get("class") or "").split():
                self.rows.append({"query": int(a["data-query"]), "imgs": [], "text": ""})
                self._depth = 1
            elif self._depth:
                self._depth += 1
        if tag == "img" and self._depth:
            self.rows[-1]["imgs"].append(a)

    def handle_endtag(self, tag):
        if tag == "div" and self._depth:
            self._depth -= 1

    def handle_data(self, data):
        if self._depth:
            self.rows[-1]["text"] += data


def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture
def tiny_set(tmp_path: Path) -> dict:
    """6 sketches, 12 photos (one with a hostile file name), top-12 rankings with known correct positions."""
    rng = np.random.default_rng(0)
    (tmp_path / "photos").mkdir()
    (tmp_path / "sketches").mkdir()
    photos = []
    for g in range(12):
        name = EVIL_NAME if g == 5 else f"photo_{g:02d}.png"
        p = tmp_path / "photos" / name
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        Image.new("RGB", (60 + 4 * g, 50), colour).save(p)
        photos.append(p)
    sketches = []
    for q in range(6):
        img = Image.new("L", (64, 64), 255)
        img.paste(0, (10 + q * 5, 10, 14 + q * 5, 54))
        p = tmp_path / "sketches" / f"sketch_{q}.png"
        img.save(p)
        sketches.append(p)
    correct = np.array([5, 0, 3, 7, 11, 2])
    # Position (0-based) of the true photo in each query's ranking; query 3 misses the top 10 (rank 12).
    position = np.array([0, 4, 9, 11, 2, 6])
    topk = np.zeros((6, 12), dtype=np.int64)
    for q in range(6):
        others = [g for g in rng.permutation(12) if g != correct[q]]
        topk[q] = np.insert(others, position[q], correct[q])
    return {"root": tmp_path, "photos": photos, "sketches": sketches, "correct": correct,
            "topk": topk, "ranks": position + 1}


def _write(s: dict, out: Path, **kw) -> Path:
    args = dict(title="Tiny <model> & co", correct_index=s["correct"], metrics={"acc@1": 0.5, "MRR<>": 0.61})
    args.update(kw)
    return write_result_html(out, s["sketches"], s["photos"], s["topk"], s["ranks"], **args)


def test_red_border_on_exactly_the_correct_photo(tiny_set):
    s = tiny_set
    out = _write(s, s["root"] / "gal")
    page = parse(out)
    html_text = out.read_text()
    assert re.search(r"img\.hit\{border-color:red\}", html_text), "the red border style is missing"
    assert [r["query"] for r in page.rows] == list(range(6))
    for row in page.rows:
        q = row["query"]
        query_img, *photos = row["imgs"]
        assert "query" in query_img["class"].split()
        assert len(photos) == 10
        hits = [j for j, a in enumerate(photos) if "hit" in (a.get("class") or "").split()]
        expected = [j for j in range(10) if s["topk"][q, j] == s["correct"][q]]
        assert hits == expected
        assert len(hits) == (0 if q == 3 else 1)


def test_rank_shown_for_misses(tiny_set):
    s = tiny_set
    page = parse(_write(s, s["root"] / "gal"))
    for row in page.rows:
        text = " ".join(row["text"].split())
        if row["query"] == 3:
            assert "not in the top 10: rank 12" in text
        else:
            assert "not in the top" not in text
            assert f"rank {s['ranks'][row['query']]}" in text


def test_relevance_mask_marks_every_relevant_photo(tiny_set):
    s = tiny_set
    relevant = np.zeros((6, 12), dtype=bool)
    relevant[:, [1, 2, 3]] = True  # category-level: several correct photos per query
    out = write_result_html(s["root"] / "cat", s["sketches"], s["photos"], s["topk"], s["ranks"], "category",
                            relevant=relevant)
    for row in parse(out).rows:
        q = row["query"]
        hits = [j for j, a in enumerate(row["imgs"][1:]) if "hit" in (a.get("class") or "").split()]
        assert hits == [j for j in range(10) if s["topk"][q, j] in (1, 2, 3)]


def _nav_links(path: Path) -> dict[str, str]:
    return {a["rel"]: a["href"] for tag, a in parse(path).tags if tag == "a" and a.get("rel")}


def test_pagination_pages_link_each_other(tiny_set):
    s = tiny_set
    out_dir = s["root"] / "gal"
    _write(s, out_dir, per_page=2)
    pages = sorted(p.name for p in out_dir.glob("*.html"))
    assert pages == ["page-2.html", "page-3.html", "result.html"]
    assert _nav_links(out_dir / "result.html") == {"next": "page-2.html"}
    assert _nav_links(out_dir / "page-2.html") == {"prev": "result.html", "next": "page-3.html"}
    assert _nav_links(out_dir / "page-3.html") == {"prev": "page-2.html"}
    shown = [r["query"] for name in ("result.html", "page-2.html", "page-3.html") for r in parse(out_dir / name).rows]
    assert shown == list(range(6))
    # A later run with fewer pages removes the stale ones.
    _write(s, out_dir, per_page=10)
    assert sorted(p.name for p in out_dir.glob("*.html")) == ["result.html"]
    assert _nav_links(out_dir / "result.html") == {}


def test_image_sources_are_relative_and_exist(tiny_set):
    s = tiny_set
    out_dir = s["root"] / "site" / "gal"
    _write(s, out_dir, per_page=4, thumb_size=32)
    for page_path in out_dir.glob("*.html"):
        text = page_path.read_text()
        assert str(s["root"]) not in text, "a local absolute path leaked into the page"
        assert not re.search(r"(src|href)=\"(/|[a-z]+:)", text), "absolute or external link"
        assert "<link" not in text and "@import" not in text and "url(" not in text
        srcs = [a["src"] for tag, a in parse(page_path).tags if tag == "img"]
        assert srcs
        for src in srcs:
            assert re.fullmatch(r"thumbs/[0-9a-f]{24}\.png", src), src
            thumb = page_path.parent / src
            assert thumb.is_file()
            with Image.open(thumb) as im:
                assert max(im.size) <= 32
    # Sketch thumbnails are greyscale, photo thumbnails RGB; unused thumbnails are cleaned up.
    row = parse(out_dir / "result.html").rows[0]
    with Image.open(out_dir / row["imgs"][0]["src"]) as im:
        assert im.mode == "L"
    with Image.open(out_dir / row["imgs"][1]["src"]) as im:
        assert im.mode == "RGB"
    used = {a["src"] for p in out_dir.glob("*.html") for tag, a in parse(p).tags if tag == "img"}
    assert {f"thumbs/{p.name}" for p in (out_dir / "thumbs").iterdir()} == used


def test_hostile_names_and_captions_are_escaped(tiny_set):
    s = tiny_set
    assert (s["root"] / "photos" / EVIL_NAME).is_file()
    captions = [f"caption {q}" for q in range(6)]
    captions[0] = EVIL_CAPTION
    out = _write(s, s["root"] / "gal", captions=captions, model='model "x" <i>')
    text = out.read_text()
    page = parse(out)
    assert not [t for t, _ in page.tags if t == "script"]
    assert not [a for _, a in page.tags if any(k.startswith("on") for k in a)], "an event-handler attribute"
    assert "<script>" not in text and "<i>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=alert(1)&gt;.png" in text
    assert "Tiny &lt;model&gt; &amp; co" in text and "MRR&lt;&gt;" in text
    assert "model &#34;x&#34; &lt;i&gt;" in text  # Jinja2's autoescape writes " as &#34;
    # The hostile photo (index 5) is query 0's correct answer at position 0: its alt text survives intact.
    row0 = page.rows[0]
    assert len(row0["imgs"]) == 11
    assert row0["imgs"][1]["alt"] == f"#1 (correct): photos/{EVIL_NAME}"
    assert EVIL_CAPTION in " ".join(row0["text"].split())  # shown as text, once unescaped by the parser


def test_hostile_model_name_is_escaped_in_every_field(tiny_set):
    """The templates autoescape: a model name that is a script comes out as text in the title, the header
    and the metric names, on every page."""
    s = tiny_set
    evil = "<script>alert(1)</script>"
    out = _write(s, s["root"] / "evil", title=evil, model=evil, metrics={evil: 0.5}, per_page=2)
    pages = sorted(out.parent.glob("*.html"))
    assert len(pages) == 3
    for path in pages:
        text = path.read_text()
        assert evil not in text and not [t for t, _ in parse(path).tags if t == "script"]
        assert text.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 4  # <title>, <h1>, model, metric
    assert "<title>&lt;script&gt;alert(1)&lt;/script&gt; (page 2)</title>" in (out.parent / "page-2.html").read_text()


def test_sampling_is_deterministic_and_reported(tiny_set):
    s = tiny_set
    rep = 5  # 30 queries from the 6 sketch files
    kw = dict(correct_index=np.tile(s["correct"], rep), max_rows=7, per_page=50)
    args = ([*s["sketches"]] * rep, s["photos"], np.tile(s["topk"], (rep, 1)), np.tile(s["ranks"], rep), "sampled")

    def shown(out: Path) -> list[int]:
        return [r["query"] for r in parse(out).rows]

    a = shown(write_result_html(s["root"] / "a", *args, seed=3, **kw))
    b = shown(write_result_html(s["root"] / "b", *args, seed=3, **kw))
    c = shown(write_result_html(s["root"] / "c", *args, seed=4, **kw))
    assert a == b and len(a) == 7 and len(set(a)) == 7 and a == sorted(a) and max(a) < 30
    assert a == sample_rows(30, 7, seed=3).tolist()
    assert a != c
    assert "7 queries sampled at random (seed 3) of 30" in (s["root"] / "a" / "result.html").read_text()
    assert "all 6 queries" in _write(s, s["root"] / "all").read_text()


def test_bad_input_gets_clear_errors(tiny_set):
    s = tiny_set
    out = s["root"] / "bad"
    with pytest.raises(ValueError, match="topk_indices must be"):
        write_result_html(out, s["sketches"], s["photos"], s["topk"][:3], s["ranks"], "t", correct_index=s["correct"])
    with pytest.raises(ValueError, match="at least 10 columns"):
        write_result_html(out, s["sketches"], s["photos"], s["topk"][:, :5], s["ranks"], "t", correct_index=s["correct"])
    with pytest.raises(ValueError, match="exactly one"):
        write_result_html(out, s["sketches"], s["photos"], s["topk"], s["ranks"], "t")
    with pytest.raises(ValueError, match="1-based"):
        write_result_html(out, s["sketches"], s["photos"], s["topk"], s["ranks"] - 1, "t", correct_index=s["correct"])
    missing = [*s["photos"][:-1], s["root"] / "photos" / "gone.png"]
    topk = s["topk"].copy()
    topk[0, 0] = 11  # make sure the missing photo is shown
    with pytest.raises(FileNotFoundError, match="gone.png"):
        write_result_html(out, s["sketches"], missing, topk, s["ranks"], "t", correct_index=s["correct"])


def test_gallery_index_links_every_gallery(tiny_set):
    s = tiny_set
    root = s["root"] / "galleries"
    _write(s, root / "aafg")
    _write(s, root / "convnext #1")
    index = write_gallery_index(root)
    hrefs = [a["href"] for tag, a in parse(index).tags if tag == "a"]
    assert hrefs == ["../index.html", "aafg/result.html", "convnext%20%231/result.html"]  # back, then each gallery


def test_galleries_in_the_report_site_link_back_to_the_index(tiny_set):
    """reports/galleries/NAME/*.html and reports/galleries/index.html link to reports/index.html; a gallery
    written anywhere else (sbir eval --html_dir) has no index to link to."""
    s = tiny_set
    site = s["root"] / "reports"
    out = _write(s, site / "galleries" / "m", per_page=4)
    pages = sorted(out.parent.glob("*.html"))
    assert [p.name for p in pages] == ["page-2.html", "result.html"]
    for page in pages + [write_gallery_index(site / "galleries")]:
        back = [a["href"] for tag, a in parse(page).tags if tag == "a" and "index.html" in a["href"]]
        assert len(back) == 1 and (page.parent / back[0]).resolve() == (site / "index.html").resolve(), page
    elsewhere = _write(s, s["root"] / "eval-out")
    assert not [a for tag, a in parse(elsewhere).tags if tag == "a"]
    assert not [a for tag, a in parse(write_gallery_index(s["root"])).tags if tag == "a" and "index" in a["href"]]
