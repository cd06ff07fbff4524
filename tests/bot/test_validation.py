import json

import pytest

from bot.channels.validation import (
    MAX_MESSAGE_CHARS,
    ChatRequestError,
    immediate_reply,
    parse_chat_request,
)


def body(obj) -> bytes:
    return json.dumps(obj).encode()


def test_well_formed_request():
    chat = parse_chat_request(body({"sender": "u1", "message": "你好", "metadata": {"voice_mode": True}}))
    assert (chat.sender, chat.message, chat.metadata) == ("u1", "你好", {"voice_mode": True})


@pytest.mark.parametrize(
    "raw, code",
    [
        (b"[1, 2]", "invalid_json"),
        (b'"just a string"', "invalid_json"),
        (b"not json", "invalid_json"),
        (b"", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        (body({"message": "hi"}), "invalid_sender"),
        (body({"sender": "", "message": "hi"}), "invalid_sender"),
        (body({"sender": 5, "message": "hi"}), "invalid_sender"),
        (body({"sender": "a b", "message": "hi"}), "invalid_sender"),
        (body({"sender": "x" * 200, "message": "hi"}), "invalid_sender"),
        (body({"sender": "u", "message": ["hi"]}), "invalid_message"),
        (body({"sender": "u", "message": "hi", "metadata": [1]}), "invalid_metadata"),
        (body({"sender": "u", "message": "/EXTERNAL_reminder"}), "reserved_intent"),
    ],
)
def test_bad_requests_are_refused_with_400(raw, code):
    with pytest.raises(ChatRequestError) as error:
        parse_chat_request(raw)
    assert error.value.status == 400
    assert error.value.as_json()["error"]["code"] == code


def test_oversized_body_is_413():
    with pytest.raises(ChatRequestError) as error:
        parse_chat_request(b"{" + b" " * (70 * 1024) + b"}")
    assert error.value.status == 413


def test_missing_message_is_empty_and_answered_politely():
    chat = parse_chat_request(body({"sender": "u1"}))
    reply = immediate_reply(chat.message)
    assert reply is not None and "问题" in reply and "question" in reply


def test_long_message_answered_in_its_language():
    assert "太长" in immediate_reply("宝" * (MAX_MESSAGE_CHARS + 1))
    assert "too long" in immediate_reply("baby " * MAX_MESSAGE_CHARS)


def test_normal_and_emoji_messages_go_to_the_bot():
    assert immediate_reply("宝宝发烧怎么办") is None
    assert immediate_reply("😀") is None
