"""Custom actions, run the way the action server runs them."""
import asyncio

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.conversation import ActionDeliverReminder, ActionRepeat, ActionSlower, previous_bot_turn
from bot.actions.fallback import ActionDefaultFallback
from bot.actions.handoff import ActionHandoff
from bot.actions.language import ActionSwitchLanguage


def tracker(events, slots=None, text="", entities=None):
    return Tracker(
        sender_id="u1",
        slots={"language": "zh", **(slots or {})},
        latest_message={"text": text, "intent": {"name": "x"}, "entities": entities or []},
        events=events,
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )


def run(action, t):
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, t, {}))
    return dispatcher.messages, events


CONVERSATION = [
    {"event": "user", "text": "宝宝发烧怎么办"},
    {"event": "bot", "text": "第一段", "data": {}},
    {"event": "bot", "text": "请选择", "data": {"buttons": [{"title": "是", "payload": "/affirm"}]}},
    {"event": "action", "name": "action_listen"},
    {"event": "user", "text": "再说一遍"},
]


def test_previous_bot_turn_is_between_the_last_two_user_messages():
    assert [e["text"] for e in previous_bot_turn(CONVERSATION)] == ["第一段", "请选择"]


def test_repeat_replays_text_and_buttons():
    messages, events = run(ActionRepeat(), tracker(CONVERSATION))
    assert [m["text"] for m in messages] == ["第一段", "请选择"]
    assert messages[1]["buttons"][0]["payload"] == "/affirm"
    assert events == []


def test_repeat_with_nothing_said_yet_answers_in_english():
    messages, _ = run(ActionRepeat(), tracker([{"event": "user", "text": "repeat"}], {"language": "en"}))
    assert "haven't said anything" in messages[0]["text"]


def test_slower_sets_rate_and_repeats():
    messages, events = run(ActionSlower(), tracker(CONVERSATION))
    assert [m["text"] for m in messages] == ["第一段", "请选择"]
    assert {"event": "slot", "name": "speech_rate", "value": "slow"} in [
        {k: e.get(k) for k in ("event", "name", "value")} for e in events
    ]


def test_switch_language_to_english_from_chinese_request():
    _, events = run(ActionSwitchLanguage(), tracker([], {"language": "zh"}, text="说英语"))
    assert events[0]["name"] == "language" and events[0]["value"] == "en"


def test_fallback_reverts_the_message_and_answers_in_language():
    messages, events = run(ActionDefaultFallback(), tracker([], {"language": "en"}))
    assert "rephrase" in messages[0]["text"]
    assert events[0]["event"] == "rewind"


def test_handoff_mentions_hotline_and_emergency(monkeypatch):
    monkeypatch.setenv("HOTLINE_NUMBER", "400-000-0000")
    messages, _ = run(ActionHandoff(), tracker([]))
    assert "400-000-0000" in messages[0]["text"] and "120" in messages[0]["text"]


def test_deliver_reminder_says_the_pushed_text():
    entities = [{"entity": "reminder_text", "value": "明天该打百白破第二针了"}]
    messages, _ = run(ActionDeliverReminder(), tracker([], entities=entities))
    assert messages[0]["text"] == "明天该打百白破第二针了"


def _push(reminder_id, text="明天该打百白破第二针了"):
    entities = [{"entity": "reminder_text", "value": text}, {"entity": "reminder_id", "value": reminder_id}]
    return {"event": "user", "text": "EXTERNAL_reminder",
            "parse_data": {"intent": {"name": "EXTERNAL_reminder"}, "entities": entities}}


def test_deliver_reminder_says_a_re_sent_reminder_only_once():
    """A worker killed after pushing re-sends after its lease: the user hears it once."""
    entities = _push("42")["parse_data"]["entities"]
    first = [_push("41"), {"event": "bot", "text": "..."}, _push("42")]
    messages, _ = run(ActionDeliverReminder(), tracker(first, entities=entities))
    assert [m["text"] for m in messages] == ["明天该打百白破第二针了"]
    again = first + [{"event": "bot", "text": "明天该打百白破第二针了"}, _push("42")]
    messages, _ = run(ActionDeliverReminder(), tracker(again, entities=entities))
    assert messages == []


def test_out_of_scope_declines_first_then_hands_over():
    from bot.actions.out_of_scope import ActionOutOfScope

    first = [{"event": "user", "text": "今天股票涨了没"}]
    messages, events = run(ActionOutOfScope(), tracker(first))
    assert "帮不上" in messages[0]["text"] and events == []
    again = first + [
        {"event": "action", "name": "action_out_of_scope"},
        {"event": "bot", "text": "抱歉"},
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "我就要问股票"},
    ]
    messages, events = run(ActionOutOfScope(), tracker(again))
    assert messages == []
    assert events[0]["event"] == "followup" and events[0]["name"] == "action_handoff"


def test_detect_language_sets_the_slot_only_when_the_message_shows_one():
    from bot.actions.language import ActionDetectLanguage

    _, events = run(ActionDetectLanguage(), tracker([], text="hello there"))
    assert events[0]["name"] == "language" and events[0]["value"] == "en"
    _, events = run(ActionDetectLanguage(), tracker([], {"language": "en"}, text="👍"))
    assert events == []


def test_emergency_answered_even_when_the_knowledge_base_is_down(monkeypatch):
    from bot.actions.knowledge import ActionAnswerQuestion
    from launcher.supervisor import free_port

    monkeypatch.setenv("KB_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    messages, events = run(ActionAnswerQuestion(), tracker([], text="孩子把纽扣电池吞下去了"))
    assert "120" in messages[0]["text"]
    assert events[0]["event"] == "followup" and events[0]["name"] == "action_handoff"
