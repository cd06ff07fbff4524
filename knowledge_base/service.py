"""HTTP search service: ``python -m knowledge_base serve [--host 127.0.0.1 --port 8001]``.

``POST /search`` with ``{"query": str, "language": "zh"|"en" (optional), "top_k": 1..20 (optional)}``
returns ``{"decision", "language", "hits": [...], "urgent": {...}?, "clarify": [...]?}``;
``GET /health`` reports readiness. The model and index are loaded once, in
``on_startup`` (building the index cache if it is missing); searches run in a
single worker thread so the event loop never blocks. Bad input gets a 400 with
a JSON ``{"error": ...}`` body.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from aiohttp import web

from knowledge_base import GUIDANCE_DIR, LANGUAGES

log = logging.getLogger("knowledge_base.service")

MAX_QUERY_CHARS = 2000
MAX_TOP_K = 20
DEFAULT_TOP_K = 3


def _default_cache_dir() -> Path:
    from knowledge_base.index import DEFAULT_CACHE_DIR

    return DEFAULT_CACHE_DIR


@dataclass(frozen=True)
class ServiceConfig:
    guidance_dir: Path = GUIDANCE_DIR
    model: Optional[str] = None  # None: $KB_MODEL or the offline e5 folder
    index_type: str = "flat"
    cache_dir: Path = field(default_factory=_default_cache_dir)


class RequestError(ValueError):
    """A client error, reported as HTTP 400."""


@dataclass(frozen=True)
class SearchRequest:
    query: str
    language: Optional[str]
    top_k: int


def parse_search_request(body: Any) -> SearchRequest:
    """Validate a decoded ``/search`` body (pure); raises :class:`RequestError`."""
    if not isinstance(body, dict):
        raise RequestError("body must be a JSON object")
    query = body.get("query")
    if not isinstance(query, str) or not query.strip():
        raise RequestError("'query' must be a non-empty string")
    if len(query) > MAX_QUERY_CHARS:
        raise RequestError(f"'query' is too long (max {MAX_QUERY_CHARS} characters)")
    language = body.get("language")
    if language is not None and language not in LANGUAGES:
        raise RequestError(f"'language' must be one of {', '.join(LANGUAGES)}")
    top_k = body.get("top_k", DEFAULT_TOP_K)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
        raise RequestError(f"'top_k' must be a whole number from 1 to {MAX_TOP_K}")
    return SearchRequest(query.strip(), language, top_k)


CONFIG_KEY = web.AppKey("kb_config", ServiceConfig)
SEARCHER_KEY = web.AppKey("kb_searcher", object)
EXECUTOR_KEY = web.AppKey("kb_executor", ThreadPoolExecutor)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False))


@web.middleware
async def json_errors(request: web.Request, handler):
    """Every error leaves as JSON, never as an HTML page or a traceback."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json":
            raise
        return _json({"error": exc.reason}, status=exc.status)
    except Exception:  # pragma: no cover - defensive
        log.exception("search failed")
        return _json({"error": "internal error"}, status=500)


async def search_handler(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        return _json({"error": "body must be valid JSON"}, status=400)
    try:
        req = parse_search_request(body)
    except RequestError as exc:
        return _json({"error": str(exc)}, status=400)
    searcher = request.app[SEARCHER_KEY]
    loop = asyncio.get_running_loop()
    result = await loop.run_in_executor(
        request.app[EXECUTOR_KEY], searcher.search, req.query, req.language, req.top_k
    )
    return _json(result)


async def health_handler(request: web.Request) -> web.Response:
    searcher = request.app[SEARCHER_KEY]
    return _json({
        "status": "ok",
        "entries": len(searcher.index.entries),
        "topics": len(searcher.topics),
        "documents": searcher.index.size,
        "index": searcher.index.index_type,
        "model": searcher.embedder.identity,
    })


def create_app(config: Optional[ServiceConfig] = None, searcher: Any = None) -> web.Application:
    """The aiohttp application. Pass ``searcher`` to reuse an already loaded one (tests)."""
    app = web.Application(middlewares=[json_errors], client_max_size=64 * 1024)
    app[CONFIG_KEY] = config or ServiceConfig()
    app[EXECUTOR_KEY] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kb-search")
    if searcher is not None:
        app[SEARCHER_KEY] = searcher

    async def load(app: web.Application) -> None:
        if SEARCHER_KEY in app:
            return
        from knowledge_base.search import load_searcher

        cfg = app[CONFIG_KEY]
        loop = asyncio.get_running_loop()
        app[SEARCHER_KEY] = await loop.run_in_executor(
            app[EXECUTOR_KEY],
            lambda: load_searcher(cfg.model, cfg.guidance_dir, cfg.index_type, cfg.cache_dir, progress=False),
        )
        log.info("knowledge base ready: %d entries", len(app[SEARCHER_KEY].index.entries))

    async def close(app: web.Application) -> None:
        app[EXECUTOR_KEY].shutdown(wait=False)

    app.on_startup.append(load)
    app.on_cleanup.append(close)
    app.router.add_post("/search", search_handler)
    app.router.add_get("/health", health_handler)
    return app


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m knowledge_base serve", description="run the search service")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--dir", type=Path, default=GUIDANCE_DIR, help="guidance folder")
    parser.add_argument("--index", choices=("flat", "ivf", "hnsw"), default="flat")
    parser.add_argument("--model", default=None, help="sentence-transformers name or path (default: $KB_MODEL or offline e5)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ServiceConfig(guidance_dir=args.dir, model=args.model, index_type=args.index)
    web.run_app(create_app(config), host=args.host, port=args.port, print=lambda *_: None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
