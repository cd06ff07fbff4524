"""Real Twilio-format form posts to the twilio_voice connector on a loopback Sanic server."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Dict, Optional

import aiohttp
import pytest

from bot.channels.twilio_voice import TwilioVoiceInput, twilio_signature
from bot.voice.speakable import voice_problems

TOKEN = "twilio-test-token"
CALLER = "+8613812345678"


def call_params(speech: Optional[str] = None, digits: Optional[str] = None, **extra) -> Dict[str, str]:
    params = {
        "AccountSid": "AC" + "0" * 32,
        "CallSid": "CA" + "1" * 32,
        "From": CALLER,
        "To": "+12025550100",
        "CallStatus": "in-progress",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
    }
    if speech is not None:
        params.update({"SpeechResult": speech, "Confidence": "0.91"})
    if digits is not None:
        params["Digits"] = digits
    params.update(extra)
    return params


async def post(server, params: Dict[str, str], token: str = TOKEN, signature: Optional[str] = None,
               query: str = "") -> aiohttp.ClientResponse:
    url = f"{server.base}/webhook{query}"
    sig = signature if signature is not None else twilio_signature(url, params.items(), token)
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=params, headers={"X-Twilio-Signature": sig}) as resp:
            resp.body_text = await resp.text()
            return resp


def parse(twiml: str) -> ET.Element:
    assert twiml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(twiml)


def spoken(root: ET.Element) -> str:
    say = root.find(".//Say")
    assert say is not None
    return "".join(say.itertext())


@pytest.fixture
async def phone(serve):
    return await serve(TwilioVoiceInput(TOKEN))


async def test_call_start_greets_in_mandarin_with_speech_and_keypad_gather(phone, bot):
    resp = await post(phone, call_params(CallStatus="ringing"))
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/xml")
    root = parse(resp.body_text)
    gather = root.find("Gather")
    assert gather is not None
    assert gather.get("input") == "speech dtmf"
    assert gather.get("language") == "zh-CN"
    assert gather.get("action") == "/webhooks/twilio_voice/webhook"
    say = gather.find("Say")
    assert say.get("voice") == "Polly.Zhiyu" and say.get("language") == "cmn-CN"
    assert say.find("prosody") is not None
    assert "按0" in spoken(root) and "按9" in spoken(root)
    # No input: Twilio falls through to the redirect, which asks again.
    assert root.find("Redirect").text.endswith("?noinput=1")
    assert bot.received == []


async def test_speech_goes_to_the_bot_repaired_and_answer_is_spoken(phone, bot):
    bot.answer = lambda text: [{"text": "打完疫苗发烧一般1-2天退。超过38.5℃或者精神不好，请看医生，详见 https://example.cn/fever 😀"}]
    resp = await post(phone, call_params(speech="打完一秒宝宝发烧了咋办"))
    assert resp.status == 200
    text = spoken(parse(resp.body_text))
    assert bot.texts == ["打完疫苗宝宝发烧了咋办"]  # the 一秒/疫苗 slip is repaired
    message = bot.received[0]
    assert message.input_channel == "twilio_voice" and message.sender_id == CALLER
    assert message.metadata["voice_mode"] is True and message.metadata["call_sid"].startswith("CA")
    assert "http" not in text and "example" not in text and "😀" not in text
    assert "三十八度五" in text and "一到两天" in text
    assert voice_problems(text, "zh") == []


async def test_bad_or_missing_signature_is_403(phone, bot):
    params = call_params(speech="宝宝发烧")
    assert (await post(phone, params, signature="bm90LXRoZS1zaWduYXR1cmU=")).status == 403
    assert (await post(phone, params, token="another-token")).status == 403
    url = f"{phone.base}/webhook"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=params) as resp:
            assert resp.status == 403
    # A parameter changed after signing is refused too.
    sig = twilio_signature(url, params.items(), TOKEN)
    tampered = {**params, "SpeechResult": "转人工"}
    assert (await post(phone, tampered, signature=sig)).status == 403
    assert bot.received == []


async def test_unconfigured_token_refuses_everything(serve, bot):
    server = await serve(TwilioVoiceInput(None))
    resp = await post(server, call_params(speech="你好"), token="")
    assert resp.status == 403


async def test_long_answer_is_split_and_1_continues(phone, bot):
    long_answer = (
        "足月宝宝的生理性黄疸多在出生后第2到3天出现，第4到5天最明显，约2周消退。"
        "早产宝宝可持续到4周左右。出生24小时内就出现黄疸要尽快就医。"
        "黄得很快、越来越深也要就医。手心脚心发黄要就医。"
    )
    bot.answer = lambda text: [{"text": long_answer}]
    first = spoken(parse((await post(phone, call_params(speech="宝宝黄胆多久退"))).body_text))
    assert bot.texts == ["宝宝黄疸多久退"]
    assert first.endswith("要继续听吗？说1或者按1。")
    assert voice_problems(first, "zh", "要继续听吗？说1或者按1。") == []
    heard = [first]
    for _ in range(5):
        resp = await post(phone, call_params(digits="1"))
        heard.append(spoken(parse(resp.body_text)))
        if not heard[-1].endswith("按1。"):
            break
    assert len(bot.received) == 1  # continuing did not ask the bot again
    assert "手心脚心" in heard[-1] and not heard[-1].endswith("按1。")
    assert all(len(re.sub(r"\s", "", h)) <= 60 for h in heard)
    # "再说一遍" replays the turn last heard, not the whole answer.
    again = spoken(parse((await post(phone, call_params(speech="再说一遍"))).body_text))
    assert again == heard[-1] and len(bot.received) == 2
    # A new question with a long answer starts from its first turn; spoken "继续" goes on.
    restart = spoken(parse((await post(phone, call_params(speech="黄疸还要注意啥"))).body_text))
    assert restart == first
    second = spoken(parse((await post(phone, call_params(speech="继续"))).body_text))
    assert len(bot.received) == 3 and second == heard[1]


async def test_keys_at_every_menu(phone, bot):
    bot.answer = lambda text: (
        [{"text": "我没找到可靠的答案。要不要转给热线工作人员？",
          "buttons": [{"title": "好，转人工", "payload": "/request_human"}, {"title": "不用了", "payload": "/deny"}]}]
        if not text.startswith("/") else [{"text": {"/request_human": "好的，正在转人工。"}.get(text, "好的。")}]
    )
    offer = spoken(parse((await post(phone, call_params(speech="孩子老是打嗝"))).body_text))
    assert "好，转人工，说1或者按1" in offer and "不用了，说2或者按2" in offer
    assert voice_problems(offer, "zh") == [] or len(re.sub(r"\s", "", offer)) <= 60
    await post(phone, call_params(digits="2"))
    assert bot.texts[-1] == "/deny"
    # 0 is the hotline anywhere, 8 asks for slower speech, 9 repeats locally.
    await post(phone, call_params(digits="0"))
    assert bot.texts[-1] == "/request_human"
    before = len(bot.received)
    again = await post(phone, call_params(digits="9"))
    assert len(bot.received) == before and "正在转人工" in spoken(parse(again.body_text))
    slow = parse((await post(phone, call_params(digits="8"))).body_text)
    assert bot.texts[-1] == "/slower"
    assert slow.find(".//prosody").get("rate") == "70%"
    # A spoken key works like a pressed one.
    await post(phone, call_params(speech="零"))
    assert bot.texts[-1] == "/request_human"


async def test_english_caller_gets_english_voice(phone, bot):
    bot.answer = lambda text: [{"text": "Call 120 now (in China)."}]
    root = parse((await post(phone, call_params(speech="my baby is not breathing"))).body_text)
    gather, say = root.find("Gather"), root.find(".//Say")
    assert gather.get("language") == "en-US" and say.get("voice") == "Polly.Joanna"
    assert "one two zero" in spoken(root) and "(" not in spoken(root)


async def test_no_input_asks_again_then_says_goodbye(phone, bot):
    texts = []
    for _ in range(3):
        root = parse((await post(phone, call_params(), query="?noinput=1")).body_text)
        texts.append(spoken(root))
    assert "没听到" in texts[0]
    assert root.find("Hangup") is not None and "再见" in texts[-1]
    assert bot.received == []


async def test_completed_call_status_gets_empty_answer(phone, bot):
    resp = await post(phone, call_params(CallStatus="completed"))
    assert resp.status == 200 and bot.received == []
