"""Figures, tables and the report site: notebooks save figures here, the pipeline exports each executed
notebook to ``reports/NN_name.html`` and writes ``reports/index.html``."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd

from . import paths
from .fileio import atomic_write_text
from .templating import Markup, escape, render

NOTEBOOK_TITLES = {
    "01": "Data audit",
    "02": "AAFG: attention-augmented Siamese network, batch-hard triplet",
    "03": "ConvNeXt-InfoNCE: scene-level retrieval",
    "04": "Evaluation",
    "05": "Error analysis",
    "06": "Real-data transfer",
}


def table(df: pd.DataFrame, precision: int = 3, index: bool | None = None, na_rep: str = "–") -> Any:
    """``df`` for display in a notebook: numbers to ``precision`` decimals, missing values as ``na_rep``
    (not "nan"), and the index hidden when it is row numbers (an unnamed integer index; ``index=None``) or
    when ``index=False``.

    Cells do not wrap (a wide table scrolls sideways in the report) and are left-aligned. Returns a pandas
    Styler; the notebook's HTML report shows it as a plain table.
    """
    numbered = (not isinstance(df.index, pd.MultiIndex) and df.index.name is None
                and pd.api.types.is_integer_dtype(df.index.dtype))  # row numbers, also after filtering
    styler = df.style.format(precision=precision, na_rep=na_rep).set_table_styles(
        [{"selector": "th, td", "props": "white-space: nowrap; text-align: left"}])  # a wide table scrolls
    if index is False or (index is None and numbered):
        styler = styler.hide(axis="index")
    return styler


def save_figure(fig: Any, name: str, dpi: int = 110, show: bool = True) -> Path:
    """Save a matplotlib figure as ``reports/figures/<name>.png`` and display that PNG in the notebook.

    Displaying the saved file (not the live figure) works under any matplotlib backend, so the HTML
    report embeds exactly the figure in ``figures/``. The figure is closed afterwards.
    """
    import matplotlib.pyplot as plt

    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "figure"
    out = paths.figures_dir() / f"{safe}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    if show:
        try:
            from IPython.display import Image, display

            display(Image(filename=str(out)))
        except ImportError:  # plain Python without IPython: the file is what matters
            pass
    return out


_EXTERNAL_SCRIPT = re.compile(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>", re.IGNORECASE)
# nbconvert's lab template also inlines a module script that imports mermaid from a CDN when a page has a
# diagram, and a MathJax configuration: neither is used by these reports.
_NETWORK_INLINE_SCRIPT = re.compile(r"<script[^>]*>(?:(?!</script>).)*?(?:mermaid|MathJax)(?:(?!</script>).)*</script>",
                                    re.IGNORECASE | re.DOTALL)


def notebook_title(nb: Any, default: str = "Report") -> str:
    """The text of a notebook's first Markdown heading (``# 01 · Data audit`` -> ``01 · Data audit``)."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            found = re.search(r"^#{1,6}\s+(.+?)\s*#*\s*$", cell.source, re.MULTILINE)
            if found:
                return found.group(1)
    return default


def stderr_to_stdout(nb: Any) -> int:
    """Turn every ``stderr`` stream output of ``nb`` into ``stdout`` in place; return how many changed.

    Training loops log their epochs to stderr; nbconvert would draw them as pink error boxes. Only
    stream outputs change: a cell's error output (a traceback) is left as it is.
    """
    changed = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                out["name"] = "stdout"
                changed += 1
    return changed


def stderr_to_stdout_file(path: Path) -> int:
    """:func:`stderr_to_stdout` on a notebook file (rewritten only when something changed)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    changed = stderr_to_stdout(nb)
    if changed:
        atomic_write_text(path, nbformat.writes(nb))
    return changed


def _readable(path: Path) -> Path:
    """Reports are for reading by anyone: 0644, not the 0600 of the temporary file they were written to."""
    os.chmod(path, 0o644)
    return path


def make_readable(root: Path) -> int:
    """Give every file under ``root`` mode 0644 (the atomic writes leave mkstemp's 0600); return the count.

    The report site is for reading: galleries, thumbnails, CSV files and executed notebooks included.
    """
    n = 0
    for path in Path(root).rglob("*"):
        if path.is_file() and not path.is_symlink():
            os.chmod(path, 0o644)
            n += 1
    return n


def export_notebook_html(executed: Path, out_html: Path) -> Path:
    """Executed notebook -> standalone HTML with code hidden, figures embedded, streams coalesced.

    The page's title is the notebook's first heading, a link back to ``index.html`` opens the page, and
    stderr streams (training logs) read as ordinary output. External scripts (MathJax, require.js from a
    CDN) are removed: the reports must open offline, and nothing in them needs those scripts. The file is
    written with mode 0644.
    """
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import CoalesceStreamsPreprocessor

    nb = nbformat.read(executed, as_version=4)
    stderr_to_stdout(nb)
    title = notebook_title(nb, default=Path(executed).stem)
    nb.metadata["title"] = title
    exporter = HTMLExporter(template_name="lab", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True, embed_images=True)
    exporter.register_preprocessor(CoalesceStreamsPreprocessor(enabled=True), enabled=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    body = _NETWORK_INLINE_SCRIPT.sub("", _EXTERNAL_SCRIPT.sub("", body))
    body = re.sub(r"<title>.*?</title>", lambda _: f"<title>{escape(title)}</title>", body, count=1,
                  flags=re.DOTALL)
    back = render("back_link.html", index_href="index.html").strip()
    body = re.sub(r"<body[^>]*>", lambda m: m.group(0) + back, body, count=1)
    return _readable(atomic_write_text(out_html, body))


# The study's main model per protocol: the rows the findings compare with the baselines. Chosen in advance
# (the design the study is about, every seed it was trained on), not by looking at test numbers.
FINDING_PROTOCOLS: tuple[dict[str, str], ...] = (
    {"protocol": "fine-grained", "data": "fine", "column": "acc@1 / R@1", "metric": "acc@1",
     "model": "aafg-fine-SA+CA", "stage": "1"},
    {"protocol": "category-level", "data": "category", "column": "mAP@all", "metric": "mAP@all",
     "model": "aafg-category-SA+CA", "stage": "1"},
    {"protocol": "scene-level", "data": "scene-normal", "column": "acc@1 / R@1", "metric": "R@1",
     "model": "convnext-normal", "stage": "1"},
)
BASELINES = ("HOG", "random")
_CI = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*\[\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*\]\s*$")
_SEEDS = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*±\s*(\d+(?:\.\d+)?)\s*\((\d+)\s+seeds?\)\s*$")


def parse_interval(text: Any) -> dict[str, Any] | None:
    """A results.csv cell -> ``{value, low, high, kind, text}``; None for ``–``, ``n/a ...`` and the like.

    ``0.329 [0.267, 0.388]`` is a 95% bootstrap CI over test queries (kind ``ci``); ``0.318 ± 0.024 (3 seeds)``
    is a mean and standard deviation over training seeds, read as the interval mean ± std (kind ``seeds``).
    """
    text = str(text)
    if m := _CI.match(text):
        v, lo, hi = map(float, m.groups())
        return {"value": v, "low": lo, "high": hi, "kind": "ci", "text": text.strip()}
    if m := _SEEDS.match(text):
        v, sd = float(m.group(1)), float(m.group(2))
        return {"value": v, "low": v - sd, "high": v + sd, "kind": "seeds", "seeds": int(m.group(3)),
                "text": text.strip()}
    return None


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a["low"] <= b["high"] and b["low"] <= a["high"]


def _compare(model: dict[str, Any], base: dict[str, Any] | None, name: str) -> str:
    if base is None:
        return f"no {name} row to compare with."
    if _overlap(model, base):
        return f"the intervals overlap: no difference from {name} can be claimed."
    side = "above" if model["value"] > base["value"] else "below"
    return f"the intervals do not overlap: the model is {side} {name}."


def findings(results: pd.DataFrame) -> list[dict[str, Any]]:
    """Per protocol, the learned model against HOG and random on the test split, from ``results.csv``.

    Rule: the learned row is the study's main model of the protocol, chosen in advance
    (:data:`FINDING_PROTOCOLS`: ``aafg-fine-SA+CA`` and ``aafg-category-SA+CA`` at stage 1, ``convnext-normal``),
    with every seed it was trained on. The validation results that would let one pick the best model honestly
    are not in results.csv. Only when that row is missing is the best learned row *on test* taken, labelled
    "best on test, for reading only" (picking on test flatters it). Protocols without rows are left out.
    """
    results = results.astype(str)
    out = []
    for spec in FINDING_PROTOCOLS:
        column = next((c for c in (spec["column"], spec["metric"]) if c in results.columns), None)
        rows = results[results["test data"] == spec["data"]] if "test data" in results.columns else results[:0]
        if column is None or rows.empty:
            continue
        cells = {(r["model"], r["stage"]): parse_interval(r[column]) for _, r in rows.iterrows()}
        baselines = {b: next((v for (m, _), v in cells.items() if m == b), None) for b in BASELINES}
        learned = cells.get((spec["model"], spec["stage"]))
        name, stage, rule = spec["model"], spec["stage"], "the study's main model, chosen in advance"
        if learned is None:
            candidates = [(k, v) for k, v in cells.items() if k[0] not in BASELINES and v is not None]
            if not candidates:
                continue
            (name, stage), learned = max(candidates, key=lambda kv: kv[1]["value"])
            rule = "best on test, for reading only"
        out.append({**spec, "column": column, "learned_model": name, "learned_stage": stage, "rule": rule,
                    "learned": learned, **{b.lower(): v for b, v in baselines.items()},
                    "vs_hog": _compare(learned, baselines["HOG"], "HOG"),
                    "vs_random": _compare(learned, baselines["random"], "random")})
    return out


def _interval_words(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return "–"
    if cell["kind"] == "seeds":
        return f"{cell['value']:.3f} ± {cell['value'] - cell['low']:.3f} (mean ± std over {cell['seeds']} seeds)"
    return f"{cell['value']:.3f} [{cell['low']:.3f}, {cell['high']:.3f}]"


def finding_items(found: list[dict[str, Any]]) -> list[dict[str, str]]:
    """:func:`findings` as the text the Findings section prints, one dict of strings per protocol."""
    return [{"protocol": f["protocol"].capitalize(), "metric": f["metric"], "data": f["data"],
             "model": f["learned_model"],
             "stage": "" if f["learned_stage"] in ("-", "–", "") else f", stage {f['learned_stage']}",
             "rule": f["rule"], "learned": _interval_words(f["learned"]), "hog": _interval_words(f["hog"]),
             "random": _interval_words(f["random"]), "vs_hog": f["vs_hog"], "vs_random": f["vs_random"]}
            for f in found]


def findings_html(found: list[dict[str, Any]]) -> str:
    """The Findings section of ``index.html`` (empty string when there is nothing to say)."""
    return render("findings.html", findings=finding_items(found)) if found else ""


def _gallery_sizes(results: pd.DataFrame | None) -> str:
    if results is None or "gallery" not in results.columns:
        return ""
    g = pd.to_numeric(results["gallery"], errors="coerce").dropna()
    if not len(g):
        return ""
    lo, hi = int(g.min()), int(g.max())
    return f" (here {lo}{'–' + str(hi) if hi != lo else ''} photos)"


def smoke_banner_html(results: pd.DataFrame | None) -> str:
    """A warning that smoke-profile numbers mean nothing (the profile only checks that everything runs)."""
    return render("smoke_banner.html", sizes=_gallery_sizes(results))


def _table(df: pd.DataFrame) -> Markup:
    """``df`` as an HTML table; pandas escapes every cell (``escape=True``), so it is safe markup."""
    return Markup(df.to_html(index=False, escape=True, border=0, float_format=lambda v: f"{v:.4g}"))


_FILES = (("results.csv", "the headline table above"),
          ("results_long.csv", "every metric of every run and seed with its 95% confidence interval"),
          ("figures/", "every figure of the reports as a PNG file"),
          ("run_metadata.json", "this run's commit, versions and timings"),
          ("config.json", "the profile's settings"))


def write_index_html(reports_dir: Path, notebooks: list[dict[str, Any]], metadata: dict[str, Any]) -> Path:
    """Write ``index.html`` (template ``report_index.html``): findings, links to every report, the headline
    results table and the run metadata.

    Args:
        notebooks: one dict per notebook: ``stem``, ``html`` (file name or None), ``seconds``, ``status``.
        metadata: git commit, profile, dataset, package versions, total wall time...
    """
    reports_dir = Path(reports_dir)
    results_path = reports_dir / "results.csv"
    results = pd.read_csv(results_path, dtype=str, keep_default_na=False) if results_path.exists() else None
    meta_rows = pd.DataFrame([{"key": k, "value": json.dumps(v) if isinstance(v, dict | list) else str(v)}
                              for k, v in metadata.items()])
    page = render(
        "report_index.html",
        profile=str(metadata.get("profile")), dataset=str(metadata.get("dataset")),
        commit=str(metadata.get("git_commit")), finished=str(metadata.get("finished")),
        wall_seconds=float(metadata.get("wall_seconds", 0)),
        smoke=str(metadata.get("profile")) == "smoke", sizes=_gallery_sizes(results),
        findings=finding_items(findings(results)) if results is not None else [],
        notebooks=[{"stem": nb["stem"], "html": nb.get("html"), "status": str(nb["status"]),
                    "seconds": float(nb["seconds"]), "title": NOTEBOOK_TITLES.get(nb["stem"][:2], nb["stem"])}
                   for nb in notebooks],
        results_table=_table(results) if results is not None else None,
        has_long=(reports_dir / "results_long.csv").exists(),
        files=[(f, what) for f, what in _FILES if (reports_dir / f).exists()],
        galleries=sorted(p.relative_to(reports_dir).as_posix() for p in reports_dir.glob("galleries/*/result.html")),
        metadata_table=_table(meta_rows))
    return _readable(atomic_write_text(reports_dir / "index.html", page))
