"""Figures, tables and the report site: notebooks save figures here, the pipeline exports each executed
notebook to ``reports/NN_name.html`` and writes ``reports/index.html``."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from . import paths
from .fileio import atomic_write_text

NOTEBOOK_TITLES = {
    "01": "Data audit",
    "02": "AAFG: attention-augmented Siamese network, batch-hard triplet",
    "03": "ConvNeXt-InfoNCE: scene-level retrieval",
    "04": "Evaluation",
    "05": "Error analysis",
}


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


def export_notebook_html(executed: Path, out_html: Path) -> Path:
    """Executed notebook -> standalone HTML with code hidden, figures embedded, streams coalesced.

    External scripts (MathJax, require.js from a CDN) are removed: the reports must open offline, and
    nothing in them needs those scripts.
    """
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import CoalesceStreamsPreprocessor

    nb = nbformat.read(executed, as_version=4)
    exporter = HTMLExporter(template_name="lab", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True, embed_images=True)
    exporter.register_preprocessor(CoalesceStreamsPreprocessor(enabled=True), enabled=True)
    body, _ = exporter.from_notebook_node(nb)
    body = _NETWORK_INLINE_SCRIPT.sub("", _EXTERNAL_SCRIPT.sub("", body))
    return atomic_write_text(out_html, body)


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em} h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em} td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f4f4f4} .fail{color:#b00} .ok{color:#070} code{background:#f4f4f4;padding:0 3px}
"""


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, escape=True, border=0, float_format=lambda v: f"{v:.4g}")


def write_index_html(reports_dir: Path, notebooks: list[dict[str, Any]], metadata: dict[str, Any]) -> Path:
    """Write ``index.html``: links to every report, the headline results table and the run metadata.

    Args:
        notebooks: one dict per notebook: ``stem``, ``html`` (file name or None), ``seconds``, ``status``.
        metadata: git commit, profile, dataset, package versions, total wall time...
    """
    e = html.escape
    rows = []
    for nb in notebooks:
        num = nb["stem"][:2]
        title = NOTEBOOK_TITLES.get(num, nb["stem"])
        link = f'<a href="{e(quote(nb["html"]))}">{e(nb["stem"])}</a>' if nb.get("html") else e(nb["stem"])
        cls = "ok" if nb["status"] == "ok" else "fail"
        rows.append(f'<tr><td>{link}</td><td>{e(title)}</td><td class="{cls}">{e(nb["status"])}</td>'
                    f'<td>{nb["seconds"]:.1f}</td></tr>')
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>SBIR study: reports</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Sketch-based image retrieval: a reproducible study</h1>",
        f"<p>Profile <code>{e(str(metadata.get('profile')))}</code>, dataset "
        f"<code>{e(str(metadata.get('dataset')))}</code>, commit <code>{e(str(metadata.get('git_commit')))}</code>, "
        f"finished {e(str(metadata.get('finished')))} in {float(metadata.get('wall_seconds', 0)):.0f} s.</p>",
        "<h2>Notebook reports</h2><table><tr><th>report</th><th>what it shows</th><th>status</th>"
        "<th>wall time (s)</th></tr>",
        *rows,
        "</table>",
    ]
    results = reports_dir / "results.csv"
    if results.exists():
        long_link = (" Every metric with its 95% confidence interval: <a href='results_long.csv'>results_long.csv</a>."
                     if (reports_dir / "results_long.csv").exists() else "")
        parts += ["<h2>Headline results</h2>",
                  "<p>Test split, this run's models and baselines. Definitions of every metric are in the "
                  f"evaluation report (04).{long_link}</p>",
                  _table(pd.read_csv(results, keep_default_na=False))]
    galleries = sorted(p.relative_to(reports_dir).as_posix() for p in reports_dir.glob("galleries/*/result.html"))
    if galleries:
        parts.append("<h2>Retrieval galleries (top-10 per query, correct photo in red)</h2><ul>")
        parts += [f'<li><a href="{e(quote(g))}">{e(g)}</a></li>' for g in galleries]
        parts.append("</ul>")
    meta_rows = pd.DataFrame(
        [{"key": k, "value": json.dumps(v) if isinstance(v, dict | list) else str(v)}
         for k, v in metadata.items()]
    )
    parts += ["<h2>Run metadata</h2>", _table(meta_rows), "</body></html>"]
    return atomic_write_text(reports_dir / "index.html", "\n".join(parts) + "\n")
