"""action_handoff: which trigger it records, what it tells the user, and that
it pauses only when a ticket was opened (real hotline server on loopback)."""
from __future__ import annotations

import datetime as dt
import time

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions import handoff
from bot.actions.handoff import ActionHandoff, child_age_months, detect_trigger, summarize
from hotline.store import Store
from tests.hotline.helpers import API_TOKEN


def user(text, intent, t=0.0):
    return {"event": "user", "text": text, "timestamp": t, "parse_data": {"intent": {"name": intent, "confidence": 0.9}}}


def bot(text, utter=None):
    return {"event": "bot", "text": text, "metadata": {"utter_action": utter} if utter else {}}


def action(name):
    return {"event": "action", "name": name}


LISTEN = action("action_listen")


def test_a_plain_request_for_a_person():
    events = [user("你好", "greet"), action("utter_greet"), bot("您好！"), LISTEN, user("转人工", "request_human")]
    assert detect_trigger(events) == ("request", "normal")


def test_urgent_when_the_knowledge_base_hands_over_in_the_same_turn():
    events = [user("宝宝抽搐了", "ask_question"), action("action_answer_question"), bot("请立即拨打120……")]
    assert detect_trigger(events) == ("urgent", "urgent")
    # As action_answer_question marks it (metadata of its bot message).
    flagged = events[:2] + [{"event": "bot", "text": "请立即拨打120……", "metadata": {"decision": "urgent"}}]
    assert detect_trigger(flagged) == ("urgent", "urgent")


def test_low_confidence_when_the_user_accepts_the_offer_of_a_human():
    offered = [user("宝宝老是打嗝", "ask_question"), action("utter_offer_human"), bot("要不要转人工？", "utter_offer_human"), LISTEN]
    assert detect_trigger(offered + [user("好的", "affirm")]) == ("low_confidence", "normal")
    assert detect_trigger(offered + [user("/request_human", "request_human")]) == ("low_confidence", "normal")
    # The offer said inside the knowledge-base action counts too.
    inside = [user("宝宝老是打嗝", "ask_question"), action("action_answer_question"),
              bot("要不要转人工？", "utter_offer_human"), LISTEN, user("好", "affirm")]
    assert detect_trigger(inside) == ("low_confidence", "normal")


def test_out_of_scope_insisted_on():
    declined = [user("帮我订机票", "out_of_scope"), action("action_out_of_scope"), bot("抱歉……"), LISTEN]
    # Asked again: action_out_of_scope hands over with FollowupAction.
    again = declined + [user("我就要订机票", "out_of_scope"), action("action_out_of_scope")]
    assert detect_trigger(again) == ("out_of_scope_insist", "normal")
    assert detect_trigger(declined + [user("找人工", "request_human")]) == ("out_of_scope_insist", "normal")
    # The knowledge base's own out-of-scope decision, if it flags it.
    kb = [user("孩子上哪个小学好", "ask_question"), action("action_answer_question"),
          {"event": "bot", "text": "这个我答不了", "metadata": {"decision": "out_of_scope"}}, LISTEN]
    assert detect_trigger(kb + [user("转人工", "request_human")]) == ("out_of_scope_insist", "normal")


def test_summary_keeps_the_last_questions_and_answers():
    events = [user("宝宝发烧怎么办", "ask_question"), bot("先量体温……"), LISTEN,
              user("吃什么药", "ask_question"), bot("按说明书……"), bot("来源：卫健委"), LISTEN,
              user("转人工", "request_human")]
    assert summarize(events) == [
        {"question": "宝宝发烧怎么办", "answer": "先量体温……"},
        {"question": "吃什么药", "answer": "按说明书…… 来源：卫健委"},
    ]


def test_child_age_from_a_slot_or_a_birth_date():
    assert child_age_months({"child_age_months": 7}) == 7.0
    assert child_age_months({"child_birth_date": "2026-01-15"}, today=dt.date(2026, 12, 4)) == 10.0
    assert child_age_months({"language": "zh"}) is None


def make_tracker(sender, events, language="zh", channel="webchat", slots=None, metadata=None):
    latest = next((e for e in reversed(events) if e["event"] == "user"), {})
    latest = {**latest, "metadata": metadata or {}}
    events = [dict(e, input_channel=channel) if e["event"] == "user" else e for e in events]
    return Tracker(sender, {"language": language, **(slots or {})}, latest, events, False, None, {}, "action_listen")


@pytest.fixture
def hotline_env(monkeypatch, hotline):
    monkeypatch.setenv("HOTLINE_URL", str(hotline.make_url("")).rstrip("/"))
    monkeypatch.setenv("HOTLINE_API_TOKEN", API_TOKEN)
    monkeypatch.setenv("HOTLINE_NUMBER", "12356")
    return hotline


async def test_handoff_opens_a_ticket_tells_the_user_and_pauses(hotline_env, config):
    events = [user("宝宝抽搐了怎么办", "ask_question", time.time()), action("action_answer_question"), bot("请立即拨打120")]
    tracker = make_tracker("grandma-1", events, slots={"child_age_months": 5})
    dispatcher = CollectingDispatcher()
    result = await ActionHandoff().run(dispatcher, tracker, {})
    assert [e["event"] for e in result] == ["slot", "pause"]
    text = dispatcher.messages[0]["text"]
    assert "120" in text and "12356" in text and "分钟" in text
    store = Store(config.db_path)
    ticket = store.ticket(int(result[0]["value"]))
    assert (ticket["sender_id"], ticket["trigger"], ticket["urgency"], ticket["channel"], ticket["language"]) == (
        "grandma-1", "urgent", "urgent", "webchat", "zh")
    assert ticket["child_age_months"] == 5 and ticket["summary"][0]["question"] == "宝宝抽搐了怎么办"


async def test_handoff_in_english_for_an_sms_user_keeps_the_phone(hotline_env, config):
    events = [user("I need a real person", "request_human")]
    tracker = make_tracker("+8613812345678", events, language="en", channel="sms")
    dispatcher = CollectingDispatcher()
    result = await ActionHandoff().run(dispatcher, tracker, {})
    assert result[-1]["event"] == "pause"
    text = dispatcher.messages[0]["text"]
    assert text.startswith("OK, I've passed your conversation to a hotline worker")
    assert "120" in text and "12356" in text and "min" in text
    ticket = Store(config.db_path).ticket(int(result[0]["value"]))
    assert ticket["phone"] == "+8613812345678" and ticket["trigger"] == "request" and ticket["language"] == "en"


async def test_without_the_hotline_service_the_bot_does_not_pause(monkeypatch):
    monkeypatch.setenv("HOTLINE_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("HOTLINE_NUMBER", "12320")
    dispatcher = CollectingDispatcher()
    result = await ActionHandoff().run(dispatcher, make_tracker("u", [user("转人工", "request_human")]), {})
    assert result == []
    assert "12320" in dispatcher.messages[0]["text"] and "120" in dispatcher.messages[0]["text"]


async def test_a_wrong_api_token_is_refused_and_the_bot_does_not_pause(hotline_env, monkeypatch):
    monkeypatch.setenv("HOTLINE_API_TOKEN", "wrong")
    dispatcher = CollectingDispatcher()
    result = await ActionHandoff().run(dispatcher, make_tracker("u", [user("human", "request_human")], language="en"), {})
    assert result == [] and "can't reach the hotline" in dispatcher.messages[0]["text"]
