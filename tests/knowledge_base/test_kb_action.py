"""action_answer_question against the real knowledge-base service on loopback."""
from __future__ import annotations

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.knowledge import ActionAnswerQuestion, format_source_line
from knowledge_base.search import ModeThresholds, Searcher, SearchConfig
from knowledge_base.service import create_app
from tests.knowledge_base.conftest import start_server


def tracker(text, language="zh", voice=False, count=0):
    slots = {"language": language, "voice_mode": voice, "low_confidence_count": count}
    latest = {"text": text, "intent": {"name": "ask_question", "confidence": 0.9}}
    return Tracker("user-1", slots, latest, [], False, None, {}, "action_listen")


async def run(text, **kw):
    dispatcher = CollectingDispatcher()
    events = await ActionAnswerQuestion().run(dispatcher, tracker(text, **kw), {})
    return dispatcher.messages, events


@pytest.fixture
def kb_env(kb_server, monkeypatch):
    monkeypatch.setenv("KB_URL", str(kb_server.make_url("")).rstrip("/"))
    return kb_server


def test_name():
    assert ActionAnswerQuestion().name() == "action_answer_question"


async def test_answer_then_source_line_in_chinese(kb_env):
    messages, events = await run("孩子黄胆咋还不退")
    assert len(messages) == 2
    assert messages[0]["text"].startswith("生理性黄疸多在出生后")
    assert messages[1]["text"] == "来源：国家卫生健康委员会《3岁以下婴幼儿健康养育照护指南（试行）》2022-11"
    assert messages[0]["decision"] == "answer"
    assert {"event": "slot", "timestamp": None, "name": "low_confidence_count", "value": 0} in events
    assert {"event": "slot", "timestamp": None, "name": "last_topic", "value": "neonatal_jaundice"} in events


async def test_answer_in_english_with_two_sources(kb_env):
    messages, _ = await run("my baby has a fever after his vaccines", language="en")
    assert messages[0]["text"].startswith("Low fever, redness")
    assert messages[1]["text"] == "Source: US Centers for Disease Control and Prevention, Possible side effects from vaccines, current web page"


async def test_voice_mode_says_the_voice_answer_and_the_source_briefly(kb_env):
    messages, events = await run("冲奶粉水温要多少度", voice=True)
    assert len(messages) == 1
    assert messages[0]["text"] == "用七十度以上的热水冲奶粉，晾到温热再喂，两小时内喝完。 以上内容来自世界卫生组织。"
    assert events[-1]["value"] == "formula_feeding"


async def test_out_of_scope_counts_then_offers_a_human(kb_env):
    messages, events = await run("帮我订一张去北京的机票")
    assert "转人工" in messages[0]["text"] and messages[0]["decision"] == "out_of_scope"
    assert events == [{"event": "slot", "timestamp": None, "name": "low_confidence_count", "value": 1}]
    messages, events = await run("帮我订一张去北京的机票", count=1)
    assert [m.get("response") for m in messages] == [None, "utter_offer_human"]
    assert events == [{"event": "slot", "timestamp": None, "name": "low_confidence_count", "value": 0}]


async def test_out_of_scope_in_english(kb_env):
    messages, _ = await run("what's the weather tomorrow", language="en")
    assert messages[0]["text"].startswith("Sorry, I don't have vetted childcare guidance")


async def test_urgent_hands_over(kb_env):
    messages, events = await run("孩子吞了一颗纽扣电池")
    assert messages[0]["text"].startswith("请马上拨打120") and messages[0]["decision"] == "urgent"
    assert events == [{"event": "followup", "timestamp": None, "name": "action_handoff"}]
    messages, events = await run("my baby is choking", language="en")
    assert "911" in messages[0]["text"] and events[0]["name"] == "action_handoff"


async def test_clarify_asks_which_with_buttons(searcher, monkeypatch):
    always_clarify = Searcher(searcher.index, searcher.embedder, SearchConfig(thresholds={"hybrid": ModeThresholds(0.0, 1.0)}))
    server = await start_server(create_app(searcher=always_clarify))
    try:
        monkeypatch.setenv("KB_URL", str(server.make_url("")).rstrip("/"))
        messages, events = await run("宝宝打完疫苗发烧了")
        assert messages[0]["text"].startswith("您是问打疫苗后的反应（测试），还是")
        assert messages[0]["text"].endswith("？") and len(messages[0]["buttons"]) == 2
        assert events == []
        messages, _ = await run("fever after shots", language="en")
        assert messages[0]["text"].startswith("Do you mean Reactions after vaccines (fixture) or ")
    finally:
        await server.close()


async def test_unreachable_knowledge_base_apologises(monkeypatch):
    monkeypatch.setenv("KB_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    messages, events = await run("宝宝发烧怎么办")
    assert messages[0]["text"].startswith("抱歉，育儿知识库暂时连不上") and "120" in messages[0]["text"]
    assert events == []
    messages, _ = await run("baby fever", language="en")
    assert messages[0]["text"].startswith("Sorry, I can't reach the childcare guidance")


def test_source_line_format():
    sources = [{"organisation": "国家卫生健康委员会", "document": "指南", "edition": "2022-11"},
               {"organisation": "WHO", "document": "Guide", "edition": ""}]
    assert format_source_line(sources, "zh") == "来源：国家卫生健康委员会《指南》2022-11；WHO《Guide》"
    assert format_source_line(sources[1:], "en") == "Source: WHO, Guide"


def test_every_message_exists_in_both_languages():
    from bot.actions.knowledge import MESSAGES

    assert MESSAGES and all(set(texts) == {"zh", "en"} and all(texts.values()) for texts in MESSAGES.values())
