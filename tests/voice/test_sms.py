"""Signed inbound SMS to the sms connector; the answer goes to a loopback SMS gateway."""
from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from bot.channels.sms import SmsInput
from reminders.delivery import sign, verify_signature

SECRET = "sms-test-secret"
PHONE = "+8613812345678"


async def post(server, body, secret=SECRET, header=None):
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
    headers = {"Content-Type": "application/json"}
    sig = header if header is not None else (sign(raw, secret) if secret else None)
    if sig:
        headers["X-Signature"] = sig
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{server.base}/webhook", data=raw, headers=headers) as resp:
            return resp.status, await resp.json()


async def wait_for(predicate, timeout=5.0):
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def test_question_by_sms_gets_a_short_signed_sms_answer(serve, bot, sms_gateway):
    bot.answer = lambda text: [{"text": (
        "- 足月宝宝的生理性黄疸多在出生后第2到3天出现，第4到5天最明显，约2周消退。\n"
        "- 出生24小时内就出现黄疸、黄得很快，要尽快就医。详见 https://example.cn/jaundice"
    )}]
    server = await serve(SmsInput(SECRET, sms_gateway.url, retry_delays=(0.05, 0.05)))
    status, body = await post(server, {"from": PHONE, "text": "黄胆几天退", "message_id": "m-1"})
    assert status == 202 and body["status"] == "accepted"
    await wait_for(lambda: sms_gateway.requests)
    sent = sms_gateway.requests[0]
    assert bot.texts == ["黄疸几天退"] and bot.received[0].input_channel == "sms"
    assert sent["json"]["to"] == PHONE and sent["json"]["reply_to"] == "m-1"
    assert sent["headers"]["Idempotency-Key"] == sent["json"]["idempotency_key"]
    assert verify_signature(sent["raw"], sent["headers"]["X-Signature"], SECRET)
    text = sent["json"]["text"]
    assert len(text) <= 70 and "http" not in text and "回复1" in text
    # "1" gets the next part without asking the bot again.
    await post(server, {"from": PHONE, "text": "1", "message_id": "m-2"})
    await wait_for(lambda: len(sms_gateway.requests) == 2)
    assert len(bot.received) == 1 and "就医" in sms_gateway.requests[1]["json"]["text"]


async def test_retries_transient_failures_with_the_same_key(serve, bot, sms_gateway):
    sms_gateway.script = [503, 429]
    server = await serve(SmsInput(SECRET, sms_gateway.url, retry_delays=(0.05, 0.05, 0.05)))
    await post(server, {"from": PHONE, "text": "你好", "message_id": "m-9"})
    await wait_for(lambda: len(sms_gateway.requests) == 3)
    keys = {r["headers"]["Idempotency-Key"] for r in sms_gateway.requests}
    assert len(keys) == 1 and [r["json"]["attempt"] for r in sms_gateway.requests] == [1, 2, 3]


async def test_duplicate_message_id_answered_once(serve, bot, sms_gateway):
    server = await serve(SmsInput(SECRET, sms_gateway.url, retry_delays=()))
    assert (await post(server, {"from": PHONE, "text": "你好", "message_id": "dup"}))[0] == 202
    status, body = await post(server, {"from": PHONE, "text": "你好", "message_id": "dup"})
    assert status == 200 and body["status"] == "duplicate"
    await wait_for(lambda: sms_gateway.requests)
    await asyncio.sleep(0.2)
    assert len(bot.received) == 1 and len(sms_gateway.requests) == 1


async def test_bad_signature_is_401_and_bad_body_400(serve, bot, sms_gateway):
    server = await serve(SmsInput(SECRET, sms_gateway.url))
    assert (await post(server, {"from": PHONE, "text": "hi"}, header="sha256=abc"))[0] == 401
    assert (await post(server, {"from": PHONE, "text": "hi"}, secret=None))[0] == 401
    assert (await post(server, {"from": "not a phone", "text": "hi"}))[0] == 400
    assert (await post(server, {"from": PHONE, "text": 5}))[0] == 400
    await asyncio.sleep(0.1)
    assert bot.received == [] and sms_gateway.requests == []


async def test_pushed_messages_go_out_as_short_sms(sms_gateway):
    from bot.channels.sms import SmsOutput

    channel = SmsInput(SECRET, sms_gateway.url, retry_delays=())
    long_text = "接种提醒：宝宝明天（3月5日）上午9:30该打第2剂百白破（DTaP），请带上预防接种证。" * 2
    await SmsOutput(channel).send_text_message(PHONE, long_text)
    texts = [r["json"]["text"] for r in sms_gateway.requests]
    assert len(texts) >= 2 and all(len(t) <= 70 for t in texts)
    assert "上午九点半" in texts[0] and "DTaP" not in "".join(texts) and "回复1" not in "".join(texts)
    assert len({r["headers"]["Idempotency-Key"] for r in sms_gateway.requests}) == len(texts)
