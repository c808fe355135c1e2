"""Retrieval galleries: ``result.html`` with one row per query sketch and its top-10 photos.

The correct photo(s) carry a red border; when none is in the top 10 the row says at which rank the true
photo was found. Thumbnails are written to ``thumbs/`` beside the page (names are hashes of the source
path, never the raw name), so the page opens from anywhere: relative links only, no external scripts,
styles or fonts. The pages are rendered from Jinja2 templates (``resources/templates/gallery_*.html``) with
autoescaping: every file name, caption and title is HTML-escaped. Large test sets are sampled
(seeded, deterministic) and split over ``result.html``, ``page-2.html``, ...
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .data.images import load_image
from .fileio import atomic_write, atomic_write_text
from .templating import render

TOP = 10  # photos shown per query

def _display_name(path: str | Path) -> str:
    """The last two path components (``class/file.png``): enough to identify, no local prefixes."""
    parts = Path(path).parts
    return "/".join(parts[-2:]) if parts else str(path)


def _thumb_name(path: Path, kind: str, size: int) -> str:
    """Hash of the source path, its size and mtime, the kind and the thumbnail size (stale thumbs never reused)."""
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{kind}|{size}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:24] + ".png"


def _make_thumb(src: Path, kind: str, size: int, thumbs_dir: Path) -> str:
    """Write a thumbnail (longest side ``size``) of ``src`` into ``thumbs_dir``; return its file name."""
    if not src.is_file():
        raise FileNotFoundError(f"{src}: gallery image not found")
    name = _thumb_name(src, kind, size)
    target = thumbs_dir / name
    if not target.exists():
        img = load_image(src, kind=kind)
        img.thumbnail((size, size), Image.Resampling.LANCZOS)
        atomic_write(target, lambda p: img.save(p, format="PNG"))
    return name


def _validate(
    n_query: int, n_gallery: int, topk_indices: np.ndarray, relevant: np.ndarray | None,
    correct_index: np.ndarray | None, ranks: np.ndarray, captions: Sequence[str] | None,
) -> np.ndarray:
    """Check shapes and ranges; return the (Q, G) boolean relevance mask."""
    if topk_indices.ndim != 2 or topk_indices.shape[0] != n_query:
        raise ValueError(f"topk_indices must be (Q={n_query}, k), got shape {topk_indices.shape}")
    if topk_indices.shape[1] < min(TOP, n_gallery):
        raise ValueError(f"topk_indices needs at least {min(TOP, n_gallery)} columns, got {topk_indices.shape[1]}")
    if topk_indices.size and (topk_indices.min() < 0 or topk_indices.max() >= n_gallery):
        raise ValueError(f"topk_indices must lie in [0, {n_gallery}); got [{topk_indices.min()}, {topk_indices.max()}]")
    if (relevant is None) == (correct_index is None):
        raise ValueError("pass exactly one of relevant (Q, G) bool or correct_index (Q,)")
    if relevant is not None:
        relevant = np.asarray(relevant, dtype=bool)
        if relevant.shape != (n_query, n_gallery):
            raise ValueError(f"relevant must be (Q={n_query}, G={n_gallery}), got shape {relevant.shape}")
    else:
        correct = np.asarray(correct_index).astype(np.int64).reshape(-1)
        if correct.shape != (n_query,):
            raise ValueError(f"correct_index must be (Q={n_query},), got shape {np.shape(correct_index)}")
        if correct.size and (correct.min() < 0 or correct.max() >= n_gallery):
            raise ValueError(f"correct_index must lie in [0, {n_gallery})")
        relevant = np.zeros((n_query, n_gallery), dtype=bool)
        relevant[np.arange(n_query), correct] = True
    if ranks.shape != (n_query,):
        raise ValueError(f"ranks must be (Q={n_query},), got shape {ranks.shape}")
    if ranks.size and ranks.min() < 1:
        raise ValueError("ranks are 1-based; got a value below 1")
    if captions is not None and len(captions) != n_query:
        raise ValueError(f"captions must have one entry per query ({n_query}), got {len(captions)}")
    return relevant


def sample_rows(n_query: int, max_rows: int, seed: int = 0) -> np.ndarray:
    """Indices of the queries shown: all of them, or ``max_rows`` drawn without replacement (sorted)."""
    if n_query <= max_rows:
        return np.arange(n_query)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_query, size=max_rows, replace=False))


def site_index_href(folder: Path, depth: int) -> str | None:
    """The report index (``reports/index.html``) as seen from a page in ``folder``, or None.

    Galleries written into the report site (``reports/galleries/NAME/``, ``depth`` 2; the gallery list
    ``reports/galleries/index.html``, ``depth`` 1) link back to it; elsewhere (``sbir eval --html_dir``)
    there is no index to go back to.
    """
    folder = Path(folder)
    inside = folder.parent.name if depth == 2 else folder.name
    return "../" * depth + "index.html" if inside == "galleries" else None


def _page_name(page: int) -> str:
    return "result.html" if page == 1 else f"page-{page}.html"


def _row(q: int, query_files: Sequence[Path], gallery_files: Sequence[Path], topk_indices: np.ndarray,
         ranks: np.ndarray, relevant: np.ndarray, captions: Sequence[str] | None, make_thumb: Callable[[Path, str], str],
         used: set[str]) -> dict[str, Any]:
    """Query ``q``'s row for the template: its sketch and top photos (thumbnail names, CSS class, label),
    the rank of its true photo and its caption; every thumbnail name is added to ``used``."""
    def thumb(path: Path, kind: str, css: str, label: str) -> dict[str, str]:
        name = make_thumb(path, kind)
        used.add(name)
        return {"css": css, "src": name, "label": label}

    qname = _display_name(query_files[q])
    imgs = [thumb(query_files[q], "sketch", "query", f"query: {qname}")]
    shown = topk_indices[q, :TOP]
    for j, g in enumerate(shown, start=1):
        hit = bool(relevant[q, g])
        label = f"#{j}{' (correct)' if hit else ''}: {_display_name(gallery_files[g])}"
        imgs.append(thumb(gallery_files[g], "photo", "hit" if hit else "", label))
    return {"query": q, "imgs": imgs, "name": qname, "rank": int(ranks[q]), "in_top": bool(relevant[q, shown].any()),
            "caption": str(captions[q]) if captions is not None and captions[q] else ""}


def write_result_html(
    out_dir: str | Path,
    query_files: Sequence[str | Path],
    gallery_files: Sequence[str | Path],
    topk_indices: np.ndarray,
    ranks: np.ndarray,
    title: str,
    *,
    relevant: np.ndarray | None = None,
    correct_index: np.ndarray | None = None,
    captions: Sequence[str] | None = None,
    metrics: dict[str, float] | None = None,
    model: str | None = None,
    max_rows: int = 50,
    per_page: int = 25,
    seed: int = 0,
    thumb_size: int = 96,
) -> Path:
    """Write ``out_dir/result.html`` (+ ``page-N.html``) and ``out_dir/thumbs/*.png``; return result.html.
    Inside the report site (``reports/galleries/NAME/``) every page links back to the report index.

    Args:
        query_files: Q sketch files (rows). gallery_files: G photo files.
        topk_indices: (Q, k >= 10) gallery indices, best first.
        ranks: (Q,) 1-based rank of the (first) true photo, ties counted against the query.
        relevant: (Q, G) bool, True where the photo is correct (category-level: several), or
        correct_index: (Q,) index of the single true photo (fine-grained / scene-level).
        captions: optional (Q,) text shown under each row (scene-level captions).
        metrics: shown in the header, e.g. ``{"acc@1": 0.31}``.
        max_rows: queries shown at most (seeded sample beyond); per_page: rows per HTML page.
    """
    out_dir = Path(out_dir)
    query_files = [Path(p) for p in query_files]
    gallery_files = [Path(p) for p in gallery_files]
    topk_indices = np.asarray(topk_indices).astype(np.int64)
    ranks = np.asarray(ranks).astype(np.int64).reshape(-1)
    if max_rows < 1 or per_page < 1 or thumb_size < 8:
        raise ValueError("max_rows and per_page must be >= 1, thumb_size >= 8")
    relevant = _validate(len(query_files), len(gallery_files), topk_indices, relevant, correct_index, ranks, captions)
    rows = sample_rows(len(query_files), max_rows, seed)
    thumbs_dir = out_dir / "thumbs"
    thumbs_dir.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    row_data = [_row(int(q), query_files, gallery_files, topk_indices, ranks, relevant, captions,
                     lambda path, kind: _make_thumb(path, kind, thumb_size, thumbs_dir), used) for q in rows]

    n_rows, n_query = len(rows), len(query_files)
    n_pages = max(1, -(-n_rows // per_page))
    page_names = [_page_name(page) for page in range(1, n_pages + 1)]
    common = {"title": title, "model": model or "", "n_gallery": len(gallery_files), "top": TOP,
              "shown_txt": (f"all {n_query} queries" if n_rows == n_query else
                            f"{n_rows} queries sampled at random (seed {seed}) of {n_query}"),
              "metrics": [(str(k), float(v)) for k, v in (metrics or {}).items()],
              "n_pages": n_pages, "page_names": page_names, "index_href": site_index_href(out_dir, 2)}
    for page in range(1, n_pages + 1):
        atomic_write_text(out_dir / page_names[page - 1],
                          render("gallery_page.html", page=page, rows=row_data[(page - 1) * per_page: page * per_page],
                                 **common))

    # Remove what an earlier, larger run left behind: extra pages and thumbnails no page uses any more.
    for old in out_dir.glob("page-*.html"):
        suffix = old.stem.removeprefix("page-")
        if suffix.isdigit() and int(suffix) > n_pages:
            old.unlink()
    for old in thumbs_dir.glob("*.png"):
        if old.name not in used:
            old.unlink()
    return out_dir / "result.html"


def write_gallery_index(galleries_dir: str | Path) -> Path:
    """Write ``galleries_dir/index.html`` linking every ``*/result.html`` below it; return its path."""
    galleries_dir = Path(galleries_dir)
    links = sorted(p.relative_to(galleries_dir).as_posix() for p in galleries_dir.glob("*/result.html"))
    return atomic_write_text(galleries_dir / "index.html", render("gallery_index.html", top=TOP, links=links,
                                                                     index_href=site_index_href(galleries_dir, 1)))
