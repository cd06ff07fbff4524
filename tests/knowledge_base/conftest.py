"""Fixtures for the knowledge-base tests.

The real offline e5 model is loaded once per session (about 10 s); the search
index is built from the three small fixture topics in ``fixtures/guidance``
into a temporary cache, so tests never depend on the full guidance set being
written or indexed.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

os.environ.setdefault("HF_HUB_OFFLINE", "1")

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "guidance"


@pytest.fixture
def fixture_dir(tmp_path) -> Path:
    """A writable copy of the fixture guidance folder."""
    target = tmp_path / "guidance"
    shutil.copytree(FIXTURES, target)
    return target


@pytest.fixture(scope="session")
def embedder():
    from knowledge_base.embedding import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def kb_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("kb-cache")


@pytest.fixture(scope="session")
def searcher(embedder, kb_cache):
    from knowledge_base.index import build_index
    from knowledge_base.search import Searcher, load_config

    index, _ = build_index(embedder, FIXTURES, "flat", kb_cache, progress=False)
    return Searcher(index, embedder, load_config())


async def start_server(app) -> TestServer:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.fixture
async def kb_server(searcher):
    """The real aiohttp service on a loopback port, searching the fixture topics."""
    from knowledge_base.service import create_app

    server = await start_server(create_app(searcher=searcher))
    yield server
    await server.close()
