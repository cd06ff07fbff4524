"""Signed JSON posts to the voice gateway connector on a loopback Sanic server."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import aiohttp
import pytest

from reminders.delivery import sign
from bot.channels.voice_gateway import VoiceGatewayInput
from bot.voice.speakable import voice_problems

SECRET = "gateway-test-secret"


async def post(server, body, secret=SECRET, header=None, raw=None):
    data = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode("utf-8")
    headers = {"Content-Type": "application/json"}
    sig = header if header is not None else (sign(data, secret) if secret else None)
    if sig:
        headers["X-Signature"] = sig
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{server.base}/webhook", data=data, headers=headers) as resp:
            return resp.status, await resp.json()


@pytest.fixture
async def gateway(serve):
    return await serve(VoiceGatewayInput(SECRET))


async def test_start_event_greets_with_text_and_ssml(gateway, bot):
    status, reply = await post(gateway, {"session_id": "spk-1", "event": "start"})
    assert status == 200
    assert reply["language"] == "zh-CN" and reply["expect"] == ["speech", "dtmf"]
    assert "按0" in reply["text"] and reply["end_session"] is False
    root = ET.fromstring(reply["ssml"])
    assert root.tag == "speak" and root.find("prosody").get("rate") == "90%"
    assert bot.received == []


async def test_recognised_text_goes_to_the_bot_and_comes_back_speakable(gateway, bot):
    bot.answer = lambda text: [{"text": "麻腮风疫苗（MMR）8个月打第一针，18个月打第二针。"}]
    status, reply = await post(gateway, {"session_id": "call-7", "caller": "+8613900001111",
                                         "text": "马腮风几个月打"})
    assert status == 200
    assert bot.texts == ["麻腮风几个月打"]
    assert bot.received[0].sender_id == "+8613900001111" and bot.received[0].metadata["voice_mode"] is True
    assert "MMR" not in reply["text"] and "（" not in reply["text"] and "麻腮风" in reply["text"]
    assert voice_problems(reply["text"], "zh") == []
    assert "八个月" in ET.fromstring(reply["ssml"]).find("prosody").text


async def test_digits_choices_and_slow_speech(gateway, bot):
    bot.answer = lambda text: (
        [{"text": "要不要转给热线工作人员？", "buttons": [{"title": "好，转人工", "payload": "/request_human"},
                                                  {"title": "不用了", "payload": "/deny"}]}]
        if text == "宝宝一直哭" else [{"text": "好的。"}]
    )
    _, offer = await post(gateway, {"session_id": "s2", "text": "宝宝一直哭"})
    assert [c["key"] for c in offer["choices"]] == ["1", "2"] and "说1或者按1" in offer["text"]
    await post(gateway, {"session_id": "s2", "digits": "1"})
    assert bot.texts[-1] == "/request_human"
    _, slow = await post(gateway, {"session_id": "s2", "digits": "8"})
    assert slow["speech_rate"] == "slow"
    assert ET.fromstring(slow["ssml"]).find("prosody").get("rate") == "70%"


async def test_bad_signature_and_bad_bodies(gateway, bot):
    body = {"session_id": "s3", "text": "你好"}
    assert (await post(gateway, body, header="sha256=" + "0" * 64))[0] == 401
    assert (await post(gateway, body, secret=None))[0] == 401
    assert (await post(gateway, body, secret="wrong"))[0] == 401
    assert (await post(gateway, None, raw=b"[1]"))[0] == 400
    assert (await post(gateway, {"text": "hi"}))[0] == 400
    assert (await post(gateway, {"session_id": "s3", "event": "dance"}))[0] == 400
    assert (await post(gateway, {"session_id": "s3", "digits": "12ab"}))[0] == 400
    assert bot.received == []


async def test_end_event_and_no_input(gateway, bot):
    status, reply = await post(gateway, {"session_id": "s4", "event": "no_input"})
    assert status == 200 and "没听到" in reply["text"]
    status, reply = await post(gateway, {"session_id": "s4", "event": "end"})
    assert status == 200 and reply["end_session"] is True
    assert bot.received == []


async def test_spoken_slower_makes_every_later_turn_slow(gateway, bot):
    bot.answer = lambda text: [{"text": "好的，我说慢一点。"}] if "慢" in text else [{"text": "宝宝发烧先看精神。"}]
    _, normal = await post(gateway, {"session_id": "s5", "text": "宝宝发烧咋办"})
    assert normal["speech_rate"] == "normal"
    _, slower = await post(gateway, {"session_id": "s5", "text": "你说慢一点"})
    _, later = await post(gateway, {"session_id": "s5", "text": "宝宝发烧咋办"})
    assert slower["speech_rate"] == later["speech_rate"] == "slow"
    assert '<break time="500ms"/>' in later["ssml"] or later["text"].count("。") < 2
