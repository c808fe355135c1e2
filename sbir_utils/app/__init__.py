"""``sbir app`` / ``make app``: a local web page where a person draws (mouse, touch or pen) or uploads a sketch
and sees the top-k photos of a gallery embedded once with ``sbir embed``, with their cosine similarities.

Without arguments it opens the checkpoints and test galleries of the latest ``make reproduce`` (one per
design, see :mod:`.defaults`); ``--ckpt CKPT --gallery DIR`` (repeatable, in pairs) opens any others. The
server is Starlette on uvicorn (:mod:`.server`), the page a plain canvas on the Pointer Events API
(``static/``), the search :mod:`.search`. See ``docs/app.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..retrieval import INDEX_KINDS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``sbir app``."""
    parser.description = ("Start a local web page: draw or upload a sketch, see the top-k photos of a gallery. "
                          "Without --ckpt it opens the checkpoints and test galleries of the latest "
                          "'make reproduce'.")
    parser.add_argument("--ckpt", action="append", default=[], metavar="CKPT",
                        help="engine checkpoint (repeat with one --gallery each to offer several)")
    parser.add_argument("--gallery", action="append", default=[], type=Path, metavar="DIR",
                        help="an 'sbir embed' output folder made with CKPT, or a folder of photos (embedded once)")
    parser.add_argument("--index", choices=INDEX_KINDS, default="exact", help="search index (default exact)")
    parser.add_argument("--embed_dir", type=Path, default=None,
                        help="where a photo folder's embeddings go (default runs/app-galleries/<hash>)")
    parser.add_argument("--k", type=int, default=10, help="results shown per query (default 10)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--no_cuda", action="store_true", help="run the model on the CPU even with a GPU")


def build_searchers(args: argparse.Namespace) -> tuple[list, str]:
    """The galleries ``args`` ask for, and the notice the page shows."""
    from .defaults import latest_reproduce_sources
    from .search import open_searcher

    if len(args.ckpt) != len(args.gallery):
        raise ValueError(f"give one --gallery per --ckpt (got {len(args.ckpt)} --ckpt, {len(args.gallery)} --gallery)")
    if args.embed_dir is not None and len(args.ckpt) > 1:
        raise ValueError("--embed_dir works with a single --ckpt")
    if args.ckpt:
        searchers = [open_searcher(str(c), c, g, index=args.index, embed_dir=args.embed_dir, note=f"{c} on {g}",
                                   no_cuda=args.no_cuda) for c, g in zip(args.ckpt, args.gallery)]
        return searchers, ""
    sources, notice = latest_reproduce_sources()
    print(notice, flush=True)
    searchers = [open_searcher(s.name, s.checkpoint, s.photos, index=args.index, labels=s.labels, note=s.note,
                               no_cuda=args.no_cuda) for s in sources]
    return searchers, notice


def run(args: argparse.Namespace) -> int:
    """Open the galleries, then serve the page until interrupted."""
    import uvicorn

    from ..cli import error
    from .server import create_app

    try:
        if not 1 <= args.k <= 50:
            raise ValueError(f"--k must be between 1 and 50, got {args.k}")
        searchers, notice = build_searchers(args)
    except (OSError, ValueError, KeyError) as exc:
        return error("app", exc)
    for s in searchers:
        print(f"  {s.name}: {len(s.paths)} photos, {s.index_kind} index", flush=True)
    print(f"sbir app: open http://{args.host}:{args.port}/ (Ctrl+C stops it)", file=sys.stderr, flush=True)
    uvicorn.run(create_app(searchers, notice, args.k), host=args.host, port=args.port, log_level="warning")
    return 0
