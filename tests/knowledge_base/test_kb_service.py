"""The search service on a real loopback server: decisions, hits, health, 400s; the index cache."""
from __future__ import annotations

import json

import aiohttp
import pytest

from knowledge_base.index import build_index
from knowledge_base.search import ModeThresholds, Searcher, SearchConfig, decide, TopicScore
from tests.knowledge_base.conftest import FIXTURES


async def post(server, body, raw=False):
    async with aiohttp.ClientSession() as session:
        data = body if raw else json.dumps(body)
        async with session.post(server.make_url("/search"), data=data,
                                headers={"Content-Type": "application/json"}) as resp:
            return resp.status, await resp.json()


async def test_health(kb_server):
    async with aiohttp.ClientSession() as session:
        async with session.get(kb_server.make_url("/health")) as resp:
            assert resp.status == 200
            body = await resp.json()
    assert body["status"] == "ok" and body["entries"] == 6 and body["topics"] == 3


async def test_answer_with_source_for_a_speech_slip(kb_server):
    status, body = await post(kb_server, {"query": "俺家娃黄胆咋还不退", "language": "zh", "top_k": 2})
    assert status == 200 and body["decision"] == "answer"
    hit = body["hits"][0]
    assert hit["topic"] == "neonatal_jaundice" and hit["entry_id"] == "fixture_jaundice.zh"
    assert hit["source"] == "国家卫生健康委员会《3岁以下婴幼儿健康养育照护指南（试行）》2022-11"
    assert hit["sources"][0]["organisation"] == "国家卫生健康委员会"
    assert hit["voice_answer"] and hit["reviewed_on"] == "2026-01-01" and len(body["hits"]) == 2


async def test_english_query_gets_the_english_entry(kb_server):
    status, body = await post(kb_server, {"query": "what temperature water to mix formula", "language": "en"})
    assert status == 200 and body["decision"] == "answer"
    assert body["hits"][0]["entry_id"] == "fixture_formula.en"
    assert body["hits"][0]["source"].startswith("World Health Organization, Safe preparation")


async def test_urgent_before_search(kb_server):
    status, body = await post(kb_server, {"query": "孩子吞了纽扣电池", "language": "zh"})
    assert status == 200 and body["decision"] == "urgent" and body["hits"] == []
    assert body["urgent"]["handoff"] is True and "120" in body["urgent"]["message"]


async def test_out_of_scope(kb_server):
    status, body = await post(kb_server, {"query": "今天股票涨了没", "language": "zh"})
    assert status == 200 and body["decision"] == "out_of_scope"


@pytest.mark.parametrize("body,message", [
    ([1, 2], "JSON object"),
    ({}, "'query'"),
    ({"query": "   "}, "'query'"),
    ({"query": 42}, "'query'"),
    ({"query": "发" * 2001}, "too long"),
    ({"query": "发烧", "language": "fr"}, "'language'"),
    ({"query": "发烧", "top_k": 0}, "'top_k'"),
    ({"query": "发烧", "top_k": 21}, "'top_k'"),
    ({"query": "发烧", "top_k": "3"}, "'top_k'"),
    ({"query": "发烧", "top_k": True}, "'top_k'"),
])
async def test_bad_input_is_a_clean_400(kb_server, body, message):
    status, reply = await post(kb_server, body)
    assert status == 400 and message in reply["error"]


async def test_invalid_json_is_a_400(kb_server):
    status, reply = await post(kb_server, "{not json", raw=True)
    assert status == 400 and reply == {"error": "body must be valid JSON"}


def test_decide_is_pure():
    th = ModeThresholds(out_of_scope=0.4, clarify_margin=0.05)
    assert decide([TopicScore("a", 0.3, 0, 0)], th) == "out_of_scope"
    assert decide([TopicScore("a", 0.8, 0, 0), TopicScore("b", 0.78, 0, 0)], th) == "clarify"
    assert decide([TopicScore("a", 0.8, 0, 0), TopicScore("b", 0.5, 0, 0)], th) == "answer"
    assert decide([], th) == "out_of_scope"


def test_clarify_returns_both_titles(searcher):
    config = SearchConfig(thresholds={"hybrid": ModeThresholds(0.0, 1.0)})
    result = Searcher(searcher.index, searcher.embedder, config).search("宝宝打完疫苗发烧了", "zh")
    assert result["decision"] == "clarify" and len(result["clarify"]) == 2
    assert result["clarify"][0] == "打疫苗后的反应（测试）"


def test_modes_rank_the_slip(searcher):
    for mode in ("hybrid", "dense", "lexical"):
        result = searcher.search("打完一秒腿上起了个硬块", "zh", 3, mode)
        assert result["hits"][0]["topic"] == "vaccine_side_effects", mode


def test_index_cache_is_reused_and_keyed_by_content(embedder, fixture_dir, tmp_path):
    cache = tmp_path / "cache"
    first, built = build_index(embedder, fixture_dir, "flat", cache, progress=False)
    assert built is True and (cache / first.key / "index_flat.faiss").exists() and (cache / first.key / "vectors.npy").exists()
    again, built = build_index(embedder, fixture_dir, "flat", cache, progress=False)
    assert built is False and again.key == first.key and again.faiss_index.ntotal == first.size
    path = fixture_dir / "formula_feeding.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("冲奶粉水温多少", "冲奶粉的水温多少"), encoding="utf-8")
    changed, built = build_index(embedder, fixture_dir, "flat", cache, progress=False)
    assert built is True and changed.key != first.key


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_indexes(embedder, tmp_path, kind):
    index, _ = build_index(embedder, FIXTURES, kind, tmp_path, progress=False)
    result = Searcher(index, embedder).search("新生儿黄疸多久能退", "zh")
    assert result["hits"][0]["topic"] == "neonatal_jaundice"


def test_other_index_types_reuse_the_cached_vectors(embedder, fixture_dir, tmp_path, monkeypatch):
    build_index(embedder, fixture_dir, "flat", tmp_path, progress=False)
    import knowledge_base.index as index_module

    def no_embedding(*args, **kwargs):
        raise AssertionError("vectors should come from the cache")

    monkeypatch.setattr(index_module, "embed_documents", no_embedding)
    hnsw, built = build_index(embedder, fixture_dir, "hnsw", tmp_path, progress=False)
    assert built is True and (tmp_path / hnsw.key / "index_hnsw.faiss").exists()
    assert build_index(embedder, fixture_dir, "hnsw", tmp_path, progress=False)[1] is False
