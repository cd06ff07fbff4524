"""The running stack, as a user and a service see it: real Rasa and action
servers on loopback, the trained model, real HTTP."""
from __future__ import annotations

import json
import re
import uuid

import pytest
from e2e_http import get, post

CJK = re.compile(r"[\u4e00-\u9fff]")


def say(stack, sender: str, message: str):
    status, replies = post(stack.rest, {"sender": sender, "message": message})
    assert status == 200, replies
    return replies


def texts(replies) -> str:
    return "\n".join(r.get("text", "") for r in replies)


def new_sender() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def test_chinese_greeting_gets_chinese_answer(rasa_stack):
    reply = texts(say(rasa_stack, new_sender(), "你好"))
    assert CJK.search(reply) and "育儿" in reply


def test_english_greeting_gets_english_answer(rasa_stack):
    reply = texts(say(rasa_stack, new_sender(), "hello"))
    assert reply and not CJK.search(reply) and "parenting assistant" in reply


def test_language_follows_the_user_and_persists(rasa_stack):
    sender = new_sender()
    assert not CJK.search(texts(say(rasa_stack, sender, "hello")))
    # "ok" and an emoji show no language: the conversation stays English.
    assert not CJK.search(texts(say(rasa_stack, sender, "ok")))
    assert not CJK.search(texts(say(rasa_stack, sender, "😀")))
    # The user switches by writing Chinese.
    assert CJK.search(texts(say(rasa_stack, sender, "谢谢")))


def test_switch_language_request(rasa_stack):
    sender = new_sender()
    say(rasa_stack, sender, "你好")
    reply = texts(say(rasa_stack, sender, "请用英文回答"))
    assert "English" in reply and not CJK.search(reply)


def test_repeat_says_the_last_reply_again(rasa_stack):
    sender = new_sender()
    first = texts(say(rasa_stack, sender, "你好"))
    assert texts(say(rasa_stack, sender, "没听清 再说一遍")) == first


@pytest.mark.parametrize(
    "message",
    ["", "   ", "宝" * 10_000, "baby " * 2_000, "😀🍼👶"],
    ids=["empty", "blank", "10k-chinese", "10k-english", "emoji-only"],
)
def test_odd_messages_get_a_polite_answer(rasa_stack, message):
    sender = new_sender()
    replies = say(rasa_stack, sender, message)
    assert replies and all(r.get("text") for r in replies)
    # The conversation is not stuck: a normal message still works after it.
    assert "育儿" in texts(say(rasa_stack, sender, "你好"))


@pytest.mark.parametrize(
    "raw",
    [b"[]", b'["sender", "message"]', b'"hello"', b"{not json", b'{"message": "hi"}', b"null"],
)
def test_malformed_bodies_get_a_clean_400(rasa_stack, raw):
    status, body = post(rasa_stack.rest, raw=raw)
    assert status == 400
    assert body["error"]["code"]


def test_webchat_page_is_served(rasa_stack):
    status, html = get(f"{rasa_stack.url}/webhooks/webchat/chat")
    assert status == 200 and "<form" in html and "育儿小助手" in html


def test_http_api_needs_the_token(rasa_stack):
    assert get(f"{rasa_stack.url}/status")[0] == 401
    assert get(f"{rasa_stack.url}/status?token={rasa_stack.token}")[0] == 200


def test_reminder_pushed_to_webchat_outbox(rasa_stack):
    sender = new_sender()
    status, _ = post(f"{rasa_stack.url}/webhooks/webchat/webhook", {"sender": sender, "message": "你好"})
    assert status == 200
    url = (
        f"{rasa_stack.url}/conversations/{sender}/trigger_intent"
        f"?output_channel=webchat&token={rasa_stack.token}"
    )
    text = "宝宝明天该打百白破第二针了"
    status, _ = post(url, {"name": "EXTERNAL_reminder", "entities": {"reminder_text": text}})
    assert status == 200
    status, body = get(f"{rasa_stack.url}/webhooks/webchat/outbox?sender={sender}&after=0")
    messages = json.loads(body)["messages"]
    assert [m["text"] for m in messages] == [text]
    # Nothing is delivered twice to the page: asking after the last id is empty.
    status, body = get(f"{rasa_stack.url}/webhooks/webchat/outbox?sender={sender}&after={messages[-1]['id']}")
    assert json.loads(body)["messages"] == []
    # A reminder pushed again with the same id (a worker re-sending after its lease
    # expired) is not said twice; a new id is.
    for reminder_id, said in (("r-7", "明天体检"), ("r-7", "明天体检"), ("r-8", "后天接种")):
        status, _ = post(url, {"name": "EXTERNAL_reminder", "entities": {"reminder_text": said, "reminder_id": reminder_id}})
        assert status == 200
    status, body = get(f"{rasa_stack.url}/webhooks/webchat/outbox?sender={sender}&after={messages[-1]['id']}")
    assert [m["text"] for m in json.loads(body)["messages"]] == ["明天体检", "后天接种"]
