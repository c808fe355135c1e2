"""The app's web server: a Starlette application served by uvicorn.

Routes: ``/`` the page (``static/index.html``, its script and style under ``/static``); ``GET /api/models``
the galleries and a notice; ``POST /api/search?model=I&k=K`` with the image bytes as the request body
(``image/png`` from the canvas, or the uploaded file as it is) answers the top-k as JSON; ``GET
/api/photo/I/ROW`` a gallery photo. Every refusal is ``{"error": message}`` with a 4xx status, and the page
shows the message.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .search import MAX_UPLOAD_BYTES, QueryError, Searcher

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_K = 50


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _read_body(request: Request, limit: int, drain: int = 8) -> bytes:
    """The request body, or a :class:`QueryError` when it is over ``limit`` bytes. An oversized body is still
    read (and dropped) up to ``drain`` x ``limit`` bytes, so that the client receives the message instead of
    a connection reset while it is still sending."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif size > drain * limit:
            break
    if size > limit:
        declared = request.headers.get("content-length", "")
        size = int(declared) if declared.isdigit() else size
        raise QueryError(f"The file is {size / 2**20:.1f} MB; the limit is {limit / 2**20:.1f} MB.", 413)
    return b"".join(chunks)


def _pick(searchers: list[Searcher], value: str | None) -> Searcher:
    try:
        return searchers[int(value or 0)]
    except (ValueError, IndexError):
        raise QueryError(f"Unknown gallery {value!r}: choose 0 to {len(searchers) - 1}.", 404) from None


def create_app(searchers: list[Searcher], notice: str = "", default_k: int = 10) -> Starlette:
    """The ASGI application over ``searchers`` (one per checkpoint and gallery; the page lets a person pick)."""
    if not searchers:
        raise ValueError("the app needs at least one gallery")

    async def page(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    async def models(request: Request) -> Response:
        return JSONResponse({"notice": notice, "k": default_k, "max_k": MAX_K,
                             "max_upload_bytes": MAX_UPLOAD_BYTES,
                             "models": [dict(s.describe(), id=i) for i, s in enumerate(searchers)]})

    async def search(request: Request) -> Response:
        try:
            searcher = _pick(searchers, request.query_params.get("model"))
            try:
                k = int(request.query_params.get("k", default_k))
            except ValueError:
                raise QueryError("k must be a whole number.", 400) from None
            if not 1 <= k <= MAX_K:
                raise QueryError(f"k must be between 1 and {MAX_K}.", 400)
            data = await _read_body(request, MAX_UPLOAD_BYTES)
            result: dict[str, Any] = await run_in_threadpool(searcher.search, data, k)
        except QueryError as exc:
            return _error(str(exc), exc.status)
        return JSONResponse(result)

    async def photo(request: Request) -> Response:
        try:
            searcher = _pick(searchers, request.path_params["model"])
        except QueryError as exc:
            return _error(str(exc), exc.status)
        row = int(request.path_params["row"])
        if not 0 <= row < len(searcher.paths):
            return _error(f"No photo {row} in this gallery of {len(searcher.paths)}.", 404)
        return FileResponse(searcher.paths[row], headers={"Cache-Control": "max-age=3600"})

    routes = [Route("/", page), Route("/api/models", models), Route("/api/search", search, methods=["POST"]),
              Route("/api/photo/{model}/{row:int}", photo),
              Mount("/static", StaticFiles(directory=STATIC_DIR), name="static")]
    return Starlette(routes=routes)


class BackgroundServer:
    """uvicorn serving ``app`` on ``host:port`` in a daemon thread (tests, benchmarks, screenshots):
    ``with BackgroundServer(app) as url: ...``; port 0 picks a free one."""

    def __init__(self, app: Starlette, host: str = "127.0.0.1", port: int = 0):
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        import time

        self.thread.start()
        for _ in range(500):
            if self.server.started:
                break
            time.sleep(0.01)
        else:
            raise RuntimeError("the app server did not start within 5 s")
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
