"""Handoff end to end with real processes: Rasa (trained model), the action
server and the hotline service. Each trigger, pause (no bot answers, the
user's messages reach the console), staff replies reaching Rasa's callback
channel, resolve (resume, the bot is back and answers again)."""
from __future__ import annotations

import time
import uuid

import aiohttp
import pytest
from yarl import URL

from hotline.bridge import BACK_MESSAGES
from tests.hotline.helpers import Staff, wait_for



def new_sender(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def rest(stack, sender: str, message: str):
    async with aiohttp.ClientSession() as session:
        async with session.post(stack.rest, json={"sender": sender, "message": message},
                                timeout=aiohttp.ClientTimeout(total=60)) as response:
            assert response.status == 200
            return await response.json()


async def tracker(stack, sender: str):
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{stack.rasa_url}/conversations/{sender}/tracker",
                               params={"token": stack.rasa_token}) as response:
            assert response.status == 200
            return await response.json()


async def rasa_post(stack, path: str, body):
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{stack.rasa_url}{path}", params={"token": stack.rasa_token}, json=body,
                                timeout=aiohttp.ClientTimeout(total=60)) as response:
            assert response.status == 200, await response.text()
            return await response.json()


async def ticket_of(staff: Staff, sender: str):
    async def find():
        queue = await (await staff.session.get(staff.url("/queue"))).json()
        for t in queue["tickets"]:
            data = await (await staff.session.get(staff.url(f"/tickets/{t['id']}/data"))).json()
            # The console masks senders only when they look like phones; these do not.
            if data["ticket"]["sender"] == sender:
                return data["ticket"]
        return None
    return await wait_for(find, timeout=10, interval=0.3)


@pytest.fixture
async def worker(hotline_stack):
    client = Staff(URL(hotline_stack.hotline_url))
    assert (await client.login("wang")).status == 303
    yield client
    await client.close()


async def test_request_pause_reply_resolve_over_the_callback_channel(hotline_stack, worker):
    stack, sender = hotline_stack, new_sender("cb")
    async with aiohttp.ClientSession() as session:
        async def send(text):
            async with session.post(f"{stack.rasa_url}/webhooks/callback/webhook",
                                    json={"sender": sender, "message": text}) as response:
                assert response.status == 200

        await send("转人工")
        handoff = await wait_for(lambda: stack.callback.to(sender), timeout=30)
        assert "120" in handoff[0]["text"] and "12320" in handoff[0]["text"] and "分钟" in handoff[0]["text"]
        assert (await tracker(stack, sender))["paused"] is True
        ticket = await ticket_of(worker, sender)
        assert (ticket["trigger"], ticket["channel"], ticket["language"], ticket["urgency"]) == (
            "request", "callback", "zh", "normal")

        # Paused: the bot stays silent, the console gets the message live.
        await send("孩子一直哭，怎么办")
        messages = await wait_for(
            lambda: worker_messages(worker, ticket["id"], "user"), timeout=10, interval=0.3)
        assert messages[0]["text"] == "孩子一直哭，怎么办"
        assert len(stack.callback.to(sender)) == 1

        path = f"/tickets/{ticket['id']}"
        assert (await worker.post(path + "/claim")).status == 200
        reply = await worker.post(path + "/reply", {"text": "您好，我是热线小王。宝宝多大了？"})
        assert (await reply.json())["delivery"] == "chat:callback"
        staff_message = await wait_for(lambda: stack.callback.to(sender)[1:], timeout=10)
        assert staff_message[0]["text"] == "【热线工作人员】您好，我是热线小王。宝宝多大了？"

        assert (await worker.post(path + "/resolve")).status == 200
        back = await wait_for(lambda: stack.callback.to(sender)[2:], timeout=10)
        assert back[0]["text"] == BACK_MESSAGES["zh"]
        assert (await tracker(stack, sender))["paused"] is False

        await send("你好")
        greeting = await wait_for(lambda: stack.callback.to(sender)[3:], timeout=30)
        assert "育儿" in greeting[0]["text"]


async def worker_messages(worker: Staff, ticket_id: int, kind: str):
    data = await (await worker.session.get(worker.url(f"/tickets/{ticket_id}/data"))).json()
    return [m for m in data["messages"] if m["kind"] == kind]


async def test_english_request_over_rest_is_paused_until_resolved(hotline_stack, worker):
    stack, sender = hotline_stack, new_sender("rest")
    replies = await rest(stack, sender, "I want to talk to a real person")
    text = " ".join(r.get("text", "") for r in replies)
    assert "hotline worker" in text and "120" in text and "12320" in text
    ticket = await ticket_of(worker, sender)
    assert ticket["language"] == "en" and ticket["channel"] == "rest"
    # Paused: no answer at all over REST.
    assert await rest(stack, sender, "hello?") == []
    path = f"/tickets/{ticket['id']}"
    await worker.post(path + "/claim")
    await worker.post(path + "/reply", {"text": "Hi, how old is your baby?"})
    # REST cannot push: the reply is in the conversation for the next read.
    events = (await tracker(stack, sender))["events"]
    assert any(e["event"] == "bot" and e.get("text") == "[Hotline worker] Hi, how old is your baby?" for e in events)
    assert (await worker.post(path + "/resolve")).status == 200
    again = await rest(stack, sender, "hello")
    assert any("parenting assistant" in r.get("text", "") for r in again)


async def test_out_of_scope_insisted_on_goes_to_a_person(hotline_stack, worker):
    stack, sender = hotline_stack, new_sender("oos")
    first = await rest(stack, sender, "/out_of_scope")
    assert "120" not in first[0]["text"]  # declined, with the offer of a person
    assert (await tracker(stack, sender))["paused"] is False
    second = await rest(stack, sender, "/out_of_scope")
    assert "120" in second[0]["text"] and "12320" in second[0]["text"]
    assert (await tracker(stack, sender))["paused"] is True
    ticket = await ticket_of(worker, sender)
    assert ticket["trigger"] == "out_of_scope_insist"


async def test_accepting_the_offer_of_a_human_after_low_confidence(hotline_stack, worker):
    stack, sender = hotline_stack, new_sender("low")
    await rest(stack, sender, "/greet")
    # What the knowledge-base action does after two low-confidence answers.
    await rasa_post(stack, f"/conversations/{sender}/tracker/events", [
        {"event": "user", "text": "宝宝老打嗝", "parse_data": {"intent": {"name": "ask_question", "confidence": 0.9}}},
        {"event": "action", "name": "action_answer_question"},
        {"event": "bot", "text": "我没找到可靠的答案。要不要转给热线工作人员？", "metadata": {"utter_action": "utter_offer_human"}},
        {"event": "action", "name": "action_listen"},
    ])
    replies = await rest(stack, sender, "/request_human")  # the offer's "好，转人工" button
    assert "120" in replies[0]["text"] and "12320" in replies[0]["text"]
    ticket = await ticket_of(worker, sender)
    assert ticket["trigger"] == "low_confidence"
    assert ticket["summary"][-1]["question"] == "宝宝老打嗝"


async def test_urgent_answer_hands_over_as_urgent(hotline_stack, worker):
    stack, sender = hotline_stack, new_sender("urgent")
    await rest(stack, sender, "/greet")
    # The knowledge-base action's urgent answer, then its FollowupAction.
    await rasa_post(stack, f"/conversations/{sender}/tracker/events", [
        {"event": "user", "text": "宝宝抽搐了", "parse_data": {"intent": {"name": "ask_question", "confidence": 0.95}}},
        {"event": "action", "name": "action_answer_question"},
        {"event": "bot", "text": "请立即拨打120。", "metadata": {"decision": "urgent"}},
    ])
    result = await rasa_post(stack, f"/conversations/{sender}/execute", {"name": "action_handoff"})
    assert "120" in result["messages"][0]["text"]
    assert (await tracker(stack, sender))["paused"] is True
    ticket = await ticket_of(worker, sender)
    assert (ticket["trigger"], ticket["urgency"]) == ("urgent", "urgent")
    queue = await (await worker.session.get(worker.url("/queue"))).json()
    open_tickets = [t for t in queue["tickets"] if t["status"] == "open"]
    assert open_tickets[0]["urgency"] == "urgent"  # urgent first in the queue


async def test_sms_parent_gets_staff_replies_through_the_signed_gateway(hotline_stack, worker):
    """A parent texts 转人工 from a feature phone (the SMS connector); the
    worker's reply and the bot's return reach the loopback SMS gateway."""
    import hashlib
    import hmac
    import json

    from tests.hotline.helpers import SMS_SECRET

    stack = hotline_stack
    phone = "+86139" + uuid.uuid4().int.__str__()[:8]

    async def text(message: str):
        raw = json.dumps({"from": phone, "text": message, "message_id": uuid.uuid4().hex}, ensure_ascii=False).encode()
        signature = "sha256=" + hmac.new(SMS_SECRET.encode(), raw, hashlib.sha256).hexdigest()
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{stack.rasa_url}/webhooks/sms/webhook", data=raw,
                                    headers={"Content-Type": "application/json", "X-Signature": signature}) as response:
                assert response.status == 202, await response.text()

    await text("转人工")
    first = await wait_for(lambda: stack.callback.sms_to(phone), timeout=30)
    assert first[0]["signed"] and "转接热线工作人员" in first[0]["body"]["text"]
    queue = await (await worker.session.get(worker.url("/queue"))).json()
    ticket = next(t for t in queue["tickets"] if t["channel"] == "sms" and t["sender"].endswith(phone[-4:]))
    assert ticket["sender"] == phone[3:6] + "****" + phone[-4:]  # masked in the console
    path = f"/tickets/{ticket['id']}"
    assert (await worker.post(path + "/claim")).status == 200
    # Her next text, while paused, reaches the console (phone-number sender ids keep their "+").
    await text("孙子发烧39度")
    messages = await wait_for(lambda: worker_messages(worker, ticket["id"], "user"), timeout=10, interval=0.3)
    assert messages[0]["text"] == "孙子发烧39度"
    response = await worker.post(path + "/reply", {"text": "奶奶您好，我是热线小王，稍后给您打电话。"})
    assert (await response.json())["delivery"] == "sms"
    replies = await wait_for(lambda: [m for m in stack.callback.sms_to(phone) if "热线小王" in m["body"]["text"]], timeout=10)
    assert replies[0]["signed"] and replies[0]["key"]
    assert (await worker.post(path + "/resolve")).status == 200
    back = await wait_for(lambda: [m for m in stack.callback.sms_to(phone) if m["body"]["text"] == BACK_MESSAGES["zh"]], timeout=10)
    assert back[0]["signed"]
    assert (await tracker(stack, phone))["paused"] is False
