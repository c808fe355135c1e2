"""The report site in a real browser: headless Chromium opens every page reachable from index.html and
checks that every image loads, no script error or console error occurs and nothing is fetched from the
network; it saves a screenshot of a gallery.

How: each page is copied beside itself with a small hook script inserted first in <head> (window error
events, including failed resource loads, unhandled rejections and console.error are recorded); Chromium
runs it with ``--dump-dom`` and a virtual-time budget, and the hook writes its findings as JSON into the
DOM after the load event. No DevTools client library is needed. Skips when no ``chromium`` binary exists
(Debian's ``chromium`` package; ``.ci/run`` installs it).
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
from PIL import Image

from sbir_utils.gallery import write_result_html
from sbir_utils.reports import export_notebook_html, stderr_to_stdout_file, write_index_html

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install chromium)")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
         "--enable-logging=stderr", "--v=0"]

HOOK = """<script>(function () {
  var errors = [];
  ["alert", "confirm", "prompt", "print"].forEach(function (name) {  // a dialog would block headless Chromium
    window[name] = function (msg) { errors.push("dialog: " + name + "(" + msg + ")"); return null; };
  });
  window.addEventListener("error", function (ev) {
    var t = ev.target;
    if (t && t !== window && t.tagName) {
      errors.push("failed to load <" + t.tagName.toLowerCase() + "> " + (t.currentSrc || t.src || t.href || ""));
    } else {
      errors.push("uncaught: " + ev.message + " (" + ev.filename + ":" + ev.lineno + ")");
    }
  }, true);
  window.addEventListener("unhandledrejection", function (ev) { errors.push("unhandled rejection: " + ev.reason); });
  window.addEventListener("securitypolicyviolation", function (ev) { errors.push("CSP: " + ev.blockedURI); });
  var consoleError = console.error;
  console.error = function () {
    errors.push("console.error: " + Array.prototype.join.call(arguments, " "));
    return consoleError.apply(console, arguments);
  };
  window.addEventListener("load", function () {
    setTimeout(function () {
      var images = Array.prototype.map.call(document.images, function (im) {
        return {src: im.currentSrc || im.src, complete: im.complete, width: im.naturalWidth};
      });
      var sel = "script[src],link[href],iframe[src],frame[src],source[src],video[src],audio[src],embed[src],object[data]";
      var resources = Array.prototype.map.call(document.querySelectorAll(sel), function (el) {
        return el.src || el.href || el.data;
      });
      var out = document.createElement("pre");
      out.id = "__browser_check";
      out.hidden = true;
      out.textContent = JSON.stringify({errors: errors, images: images, resources: resources, title: document.title});
      document.documentElement.appendChild(out);
    }, 100);
  });
})();</script>"""


def chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)


@contextlib.contextmanager
def probe_copy(page: Path) -> Iterator[Path]:
    """A copy of ``page`` in the same folder (relative links resolve the same way) with HOOK first in <head>."""
    text = page.read_text(encoding="utf-8")
    head = re.search(r"<head[^>]*>", text, re.IGNORECASE)
    at = head.end() if head else 0
    probe = page.with_name(f".check-{page.name}")
    probe.write_text(text[:at] + HOOK + text[at:], encoding="utf-8")
    try:
        yield probe
    finally:
        probe.unlink()


def check_page(page: Path, profile: Path) -> dict:
    """Open ``page`` (with the hook) in headless Chromium; return errors, images and resources it saw."""
    with probe_copy(page) as probe:
        proc = chromium(["--virtual-time-budget=5000", "--dump-dom", probe.as_uri()], profile)
    found = re.search(r'<pre id="__browser_check"[^>]*>(.*?)</pre>', proc.stdout, re.DOTALL)
    assert found, f"{page}: the page did not finish loading in Chromium (rc={proc.returncode})\n{proc.stderr[-2000:]}"
    result = json.loads(html.unescape(found.group(1)))
    # Belt and braces: uncaught exceptions also appear in Chromium's own console log.
    result["errors"] += [line for line in proc.stderr.splitlines() if ":CONSOLE" in line and "Uncaught" in line]
    return result


def problems(result: dict) -> list[str]:
    """Everything wrong with a checked page: errors, images that did not load, non-local resources."""
    out = list(result["errors"])
    out += [f"image did not load: {im['src']}" for im in result["images"] if not (im["complete"] and im["width"] > 0)]
    out += [f"non-local resource: {url}" for url in result["resources"] if urlsplit(url).scheme not in ("file", "data")]
    return out


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


def local_links(page: Path) -> list[Path]:
    """Files that ``page`` links to with relative links (anchors within the page and web links skipped)."""
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    targets = []
    for href in parser.hrefs:
        parts = urlsplit(href)
        if parts.scheme or parts.netloc or not parts.path:
            continue
        targets.append((page.parent / unquote(parts.path)).resolve())
    return targets


def _png_bytes(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A small report site (index, one notebook report, a two-page gallery), moved away from its sources."""
    import nbformat

    build = tmp_path_factory.mktemp("build")
    rng = np.random.default_rng(0)
    src = build / "data"
    (src / "photos").mkdir(parents=True)
    (src / "sketches").mkdir()
    photos = []
    for g in range(12):
        p = src / "photos" / ("<img src=x onerror=alert(1)>.png" if g == 3 else f"p{g:02d}.png")
        colour = (int(rng.integers(0, 150)), *(int(c) for c in rng.integers(0, 256, 2)))  # never red
        p.write_bytes(_png_bytes((80, 60), colour))
        photos.append(p)
    sketches = []
    for q in range(6):
        img = Image.new("L", (64, 64), 255)
        img.paste(0, (8 + 6 * q, 8, 12 + 6 * q, 56))
        sketches.append(src / "sketches" / f"s{q}.png")
        img.save(sketches[-1])
    correct = np.array([3, 1, 4, 7, 9, 0])
    topk = np.stack([rng.permutation(12) for _ in range(6)])
    ranks = np.array([int(np.flatnonzero(topk[q] == correct[q])[0]) + 1 for q in range(6)])
    topk[2] = np.r_[[g for g in topk[2] if g != correct[2]], correct[2]]  # query 2 misses the top 10
    ranks[2] = 12
    reports = build / "reports"
    write_result_html(reports / "galleries" / "tiny-model", sketches, photos, topk, ranks, "tiny model <test>",
                      correct_index=correct, captions=["<script>alert(1)</script>", *[f"scene {i}" for i in range(5)]],
                      metrics={"acc@1": 0.5}, per_page=3)

    nb = nbformat.v4.new_notebook()
    figure = base64.b64encode(_png_bytes((40, 30), (200, 30, 30))).decode()
    nb.cells = [nbformat.v4.new_markdown_cell("# Evaluation\nA tiny executed report."),
                nbformat.v4.new_code_cell("fig", execution_count=1, outputs=[
                    nbformat.v4.new_output("stream", name="stderr", text="epoch 1/1 loss 0.5\n"),
                    nbformat.v4.new_output("display_data", data={"image/png": figure,
                                                                 "text/plain": "<Figure 40x30>"})])]
    executed = build / "04_evaluation.ipynb"
    nbformat.write(nb, executed)
    stderr_to_stdout_file(executed)  # as the pipeline does before exporting
    export_notebook_html(executed, reports / "04_evaluation.html")
    (reports / "results.csv").write_text(
        "model,test data,stage,seeds,queries,gallery,acc@1 / R@1\n"
        'tiny-model,fine,1,3,6,12,0.500 ± 0.100 (3 seeds)\n'
        'random,fine,-,–,6,12,"0.083 [0.000, 0.250]"\n'
        'HOG,fine,-,–,6,12,"0.333 [0.000, 0.667]"\n')
    (reports / "results_long.csv").write_text("run,metric,value\ntiny-model,acc@1,0.5\n")
    (reports / "figures").mkdir()
    (reports / "figures" / "04_test_results.png").write_bytes(_png_bytes((40, 30), (0, 0, 200)))
    write_index_html(reports, [{"stem": "04_evaluation", "html": "04_evaluation.html", "seconds": 1.5, "status": "ok"}],
                     {"profile": "smoke", "dataset": "tiny", "git_commit": "abc123", "finished": "now",
                      "wall_seconds": 2.0})

    # "Opens from anywhere": move the site and delete the images it was made from.
    moved = tmp_path_factory.mktemp("elsewhere") / "site"
    shutil.copytree(reports, moved)
    shutil.rmtree(build)
    return moved


@pytest.fixture(scope="module")
def profile(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("chromium-profile")


def test_every_page_loads_cleanly(site: Path, profile: Path):
    seen: list[Path] = []
    todo = [site / "index.html"]
    while todo:
        page = todo.pop(0)
        if page in seen:
            continue
        seen.append(page)
        for target in local_links(page):
            assert target.exists(), f"{page.name} links to a missing file: {target}"
            if target.suffix == ".html" and target.is_relative_to(site) and target not in seen:
                todo.append(target)
        result = check_page(page, profile)
        assert problems(result) == [], f"{page.relative_to(site)}: {problems(result)}"
        rel = page.relative_to(site).as_posix()
        n_rows = page.read_text().count('class="row"')
        if rel.startswith("galleries/"):
            assert n_rows == 3 and len(result["images"]) == 3 * 11, rel
        elif rel == "04_evaluation.html":
            assert [im["width"] for im in result["images"]] == [40], "the inline figure is missing"
    names = sorted(p.relative_to(site).as_posix() for p in seen)
    assert names == ["04_evaluation.html", "galleries/tiny-model/page-2.html",
                     "galleries/tiny-model/result.html", "index.html"]


def test_pages_read_well(site: Path, profile: Path):
    """Issue 23: findings and the smoke banner on the index, a title and a way back on every report, files
    anyone can read, and no training log drawn as an error."""
    index = check_page(site / "index.html", profile)
    report = check_page(site / "04_evaluation.html", profile)
    assert index["title"] == "SBIR study: reports" and report["title"] == "Evaluation"
    text = (site / "index.html").read_text()
    assert "<h2>Findings</h2>" in text and "tiny-model" in text and "Against HOG" in text
    assert "Smoke profile: these numbers are meaningless" in text
    for href in ("results.csv", "results_long.csv", "figures/"):
        assert (site / href).exists() and f"href='{href}'" in text
    page = (site / "04_evaluation.html").read_text()
    assert 'href="index.html"' in page and "epoch 1/1 loss" in page
    reports = [site / "04_evaluation.html", *sorted((site / "galleries").rglob("*.html"))]
    assert len(reports) == 3
    for report in reports:  # every report page reached from the index links back to it
        assert site / "index.html" in local_links(report), report.relative_to(site)
    assert 'data-mime-type="application/vnd.jupyter.stderr"' not in page  # (the CSS names it too)
    for html_file in (site / "index.html", site / "04_evaluation.html"):
        assert html_file.stat().st_mode & 0o777 == 0o644, html_file

    shot = site / "index.png"
    with probe_copy(site / "index.html") as probe:
        proc = chromium(["--window-size=1280,700", f"--screenshot={shot}", probe.as_uri()], profile)
    assert shot.is_file(), proc.stderr[-2000:]
    with Image.open(shot) as im:
        arr = np.asarray(im.convert("RGB")).astype(int)
    banner = (arr[..., 0] == 255) & (arr[..., 1] == 244) & (arr[..., 2] == 214)  # the banner's background
    assert banner.sum() > 20000, f"the smoke banner is not visible at the top ({banner.sum()} pixels)"


def test_gallery_screenshot(site: Path, profile: Path):
    shot = site / "gallery.png"
    page = site / "galleries" / "tiny-model" / "result.html"
    with probe_copy(page) as probe:  # the hook keeps a stray alert() from blocking the browser
        proc = chromium(["--window-size=1280,760", f"--screenshot={shot}", probe.as_uri()], profile)
    assert shot.is_file() and shot.stat().st_size > 1000, proc.stderr[-2000:]
    with Image.open(shot) as im:
        arr = np.asarray(im.convert("RGB")).astype(int)
    assert im.size == (1280, 760)
    # Page 1 shows queries 0-2; 0 and 1 have their photo in the top 10: two 4-px red frames around
    # 88x68 boxes (~1180 pure-red pixels each). The photos are never red; the legend adds ~100.
    red = (arr[..., 0] == 255) & (arr[..., 1] == 0) & (arr[..., 2] == 0)
    assert red.sum() > 2000, f"red borders not visible in the screenshot ({red.sum()} red pixels)"


def test_checker_catches_broken_images_and_errors(site: Path, profile: Path, tmp_path: Path):
    # A gallery whose thumbnail went missing must fail the check.
    broken = tmp_path / "broken"
    shutil.copytree(site / "galleries" / "tiny-model", broken)
    first_thumb = re.search(r'src="(thumbs/[^"]+)"', (broken / "result.html").read_text()).group(1)
    (broken / first_thumb).unlink()
    found = problems(check_page(broken / "result.html", profile))
    assert found and all(first_thumb in p for p in found), found
    assert any(p.startswith("image did not load") for p in found)

    # Script errors, console.error and network resources are reported too.
    page = tmp_path / "bad.html"
    page.write_text("<!doctype html><html><head><link rel='stylesheet' href='https://example.invalid/x.css'>"
                    "</head><body><script>console.error('boom');</script><script>notDefined();</script>"
                    "</body></html>")
    found = problems(check_page(page, profile))
    assert any("console.error: boom" in p for p in found), found
    assert any("notDefined" in p for p in found), found
    assert any("non-local resource: https://example.invalid/x.css" in p for p in found), found
