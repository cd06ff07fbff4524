"""Sweep + delivery through real loopback servers: fake Rasa HTTP API and SMS gateway."""
import datetime as dt
import json
import re

import pytest

from reminders.api import METRICS_KEY
from reminders.delivery import sign, verify_signature

from .conftest import AUTH, SECRET, T0, child_payload, create_child, signed, store, sweep

pytestmark = pytest.mark.asyncio
UTC = dt.timezone.utc


def metric(text: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert m, name
    return float(m.group(1))


async def rows(c, child_id, status=None):
    q = f"?status={status}" if status else ""
    return (await (await c.get(f"/children/{child_id}/reminders{q}", headers=AUTH)).json())["reminders"]


SMS_ONLY = [{"role": "grandma", "phone": "+86 139-0000-1111", "language": "zh"}]


async def test_chat_delivery_via_rasa_trigger_intent(make_client, rasa, gateway):
    c = await make_client()
    child = await create_child(c, birth="2026-01-02")          # 2 months old: DTaP-1, IPV-1 due today
    assert await sweep(c) == 1
    assert len(rasa.requests) == 1 and not gateway.requests
    req = rasa.requests[0]
    assert req["path"] == "/conversations/mom-1/trigger_intent"
    assert req["query"] == {"output_channel": "wechat", "token": "rasa-tok"}
    assert req["json"]["name"] == "EXTERNAL_reminder"
    ent = req["json"]["entities"]
    assert "百白破疫苗第1剂" in ent["reminder_text"] and "脊灰灭活疫苗（IPV）第1剂" in ent["reminder_text"]
    sent = await rows(c, child["id"], "sent")
    assert len(sent) == 1 and ent["reminder_id"] == str(sent[0]["id"])
    assert await sweep(c) == 0                                  # nothing else due: never sent twice


async def test_sms_signature_and_idempotency_key(make_client, gateway):
    c = await make_client()
    await create_child(c, payload=child_payload(caregivers=SMS_ONLY))
    assert await sweep(c) == 1
    req = gateway.requests[0]
    assert req["path"] == "/sms"
    assert req["headers"]["X-Signature"] == sign(req["raw"], SECRET)
    assert verify_signature(req["raw"], req["headers"]["X-Signature"], SECRET)
    assert not verify_signature(req["raw"], req["headers"]["X-Signature"], "other-secret")
    assert req["json"]["to"] == "13900001111"
    assert req["headers"]["Idempotency-Key"] == req["json"]["idempotency_key"]
    assert req["headers"]["Idempotency-Key"].startswith("sch:")


async def test_retries_through_failing_gateway_then_recovers_same_key(make_client, gateway, clock):
    c = await make_client()
    child = await create_child(c, payload=child_payload(caregivers=SMS_ONLY))
    gateway.script = [503, 429, 500]
    assert await sweep(c) == 1
    r = (await rows(c, child["id"]))[0]
    assert r["status"] == "pending" and r["attempts"] == 1 and "503" in r["last_error"]
    nxt = dt.datetime.fromisoformat(r["next_attempt_at"])
    assert T0 + dt.timedelta(seconds=30) <= nxt <= T0 + dt.timedelta(seconds=60)   # backoff with jitter
    assert await sweep(c) == 0                                   # not before the backoff
    for _ in range(3):
        clock.advance(minutes=15)
        await sweep(c)
    assert [q["status"] for q in gateway.requests] == [503, 429, 500, 200]
    assert len({q["headers"]["Idempotency-Key"] for q in gateway.requests}) == 1
    assert [q["json"]["attempt"] for q in gateway.requests] == [1, 2, 3, 4]
    r = (await rows(c, child["id"]))[0]
    assert r["status"] == "sent" and r["attempts"] == 4


async def test_failed_after_max_attempts_visible_in_api_and_metrics(make_client, gateway, clock):
    c = await make_client(max_attempts=3)
    child = await create_child(c, payload=child_payload(caregivers=SMS_ONLY))
    gateway.default = 502
    for _ in range(6):
        await sweep(c)
        clock.advance(minutes=20)
    assert len(gateway.requests) == 3
    failed = (await (await c.get("/reminders?status=failed", headers=AUTH)).json())
    assert len(failed["reminders"]) == 1 and failed["counts"]["failed"] == 1
    f = failed["reminders"][0]
    assert f["attempts"] == 3 and "gave up after 3 attempts" in f["last_error"] and f["child_id"] == child["id"]
    text = await (await c.get("/metrics")).text()
    assert metric(text, 'reminders_by_status{status="failed"}') == 1
    assert metric(text, "reminders_failed") == 1
    assert metric(text, 'reminders_deliveries_total{channel="sms",outcome="failed"}') == 1
    assert metric(text, 'reminders_deliveries_total{channel="sms",outcome="retry"}') == 2
    assert metric(text, "reminders_sweep_duration_seconds_count") >= 6


async def test_permanent_4xx_fails_at_once(make_client, rasa, clock):
    c = await make_client()
    child = await create_child(c)
    rasa.default = 404                                          # e.g. intent not in the domain
    await sweep(c)
    clock.advance(hours=1)
    await sweep(c)
    assert len(rasa.requests) == 1
    r = (await rows(c, child["id"], "failed"))
    assert len(r) == 1 and "404" in r[0]["last_error"]


async def test_timeout_is_retried(make_client, gateway):
    c = await make_client(http_timeout=0.2)
    child = await create_child(c, payload=child_payload(caregivers=SMS_ONLY))
    gateway.delay = 0.5
    await sweep(c)
    r = (await rows(c, child["id"]))[0]
    assert r["status"] == "pending" and r["attempts"] == 1 and "timeout" in r["last_error"]


async def test_quiet_hours_defer_to_morning(make_client, rasa, clock):
    clock.set(dt.datetime(2026, 3, 2, 13, 30, tzinfo=UTC))         # 21:30 Shanghai
    c = await make_client()
    child = await create_child(c)
    first = (await rows(c, child["id"]))[0]
    assert first["due_at"] == "2026-03-03T00:00:00+00:00"          # planned for 08:00
    assert await sweep(c) == 0 and not rasa.requests
    clock.set(dt.datetime(2026, 3, 2, 23, 59, tzinfo=UTC))         # 07:59
    assert await sweep(c) == 0 and not rasa.requests
    clock.set(dt.datetime(2026, 3, 3, 0, 0, tzinfo=UTC))           # 08:00
    assert await sweep(c) == 1 and len(rasa.requests) == 1


async def test_quiet_hours_checked_again_at_send_time(make_client, gateway, clock):
    """A retry whose backoff lands in quiet hours is pushed to the morning, not sent at night."""
    clock.set(dt.datetime(2026, 3, 2, 12, 50, tzinfo=UTC))         # 20:50 Shanghai
    c = await make_client(backoff_base=1200.0, backoff_cap=1200.0)
    child = await create_child(c, payload=child_payload(caregivers=SMS_ONLY))
    gateway.script = [503]
    await sweep(c)
    clock.set(dt.datetime(2026, 3, 2, 13, 30, tzinfo=UTC))         # 21:30: retry due but quiet
    await sweep(c)
    assert len(gateway.requests) == 1
    r = (await rows(c, child["id"]))[0]
    assert r["next_attempt_at"] == "2026-03-03T00:00:00+00:00" and r["attempts"] == 1
    clock.set(dt.datetime(2026, 3, 3, 0, 1, tzinfo=UTC))
    await sweep(c)
    assert len(gateway.requests) == 2 and (await rows(c, child["id"]))[0]["status"] == "sent"


async def test_escalation_to_next_caregiver_after_24h(make_client, rasa, gateway, clock):
    c = await make_client()
    child = await create_child(c)                               # mom (chat) then grandma (sms)
    await sweep(c)
    assert len(rasa.requests) == 1 and not gateway.requests
    clock.advance(hours=23, minutes=59)
    await sweep(c)
    assert not gateway.requests
    clock.advance(minutes=2)
    await sweep(c)
    assert len(gateway.requests) == 1
    text = gateway.requests[0]["json"]["text"]
    assert "第一联系人尚未确认" in text and "百白破疫苗第1剂" in text
    esc = [r for r in await rows(c, child["id"]) if r["kind"] == "escalation"]
    assert esc[0]["caregiver_id"] == child["caregivers"][1]["id"] and esc[0]["status"] == "sent"


async def test_ack_stops_escalation(make_client, rasa, gateway, clock):
    c = await make_client()
    child = await create_child(c)
    await sweep(c)
    r = await c.post("/replies", json={"sender_id": "mom-1", "text": "收到"}, headers=AUTH)
    body = await r.json()
    assert body["action"] == "ack" and "确认" in body["reply_text"]
    clock.advance(hours=25)
    await sweep(c)
    assert not gateway.requests
    statuses = {r["kind"]: r["status"] for r in await rows(c, child["id"]) if r["status"] != "pending"}
    assert statuses == {"schedule": "acknowledged"}
    assert not [r for r in await rows(c, child["id"]) if r["kind"] == "escalation"]


async def test_chat_dose_given_confirmation_flow(make_client, rasa, clock):
    c = await make_client()
    child = await create_child(c)
    await sweep(c)
    r = await (await c.post("/replies", json={"sender_id": "mom-1", "text": "已打"}, headers=AUTH)).json()
    assert r["action"] == "confirmation_requested" and "百白破疫苗第1剂" in r["reply_text"]
    assert (await (await c.get(f"/children/{child['id']}/doses", headers=AUTH)).json())["doses"] == []
    r = await (await c.post("/replies", json={"sender_id": "mom-1", "text": "是"}, headers=AUTH)).json()
    assert r["action"] == "dose_recorded"
    doses = (await (await c.get(f"/children/{child['id']}/doses", headers=AUTH)).json())["doses"]
    assert {d["item_id"] for d in doses} == {"bcg-1", "hepb-1", "dtap-1", "polio-1"} and {d["source"] for d in doses} == {"chat"}
    r = await (await c.post("/replies", json={"sender_id": "mom-1", "text": "是"}, headers=AUTH)).json()
    assert r["action"] == "nothing_to_confirm"


@pytest.mark.parametrize("word", ["退订", "TD", "STOP", "取消提醒", "unsubscribe"])
async def test_opt_out_by_chat_word(make_client, rasa, gateway, clock, word):
    c = await make_client()
    child = await create_child(c, payload=child_payload(caregivers=[{"chat": {"sender_id": "mom-1"}}]))
    r = await (await c.post("/replies", json={"sender_id": "mom-1", "text": word}, headers=AUTH)).json()
    assert r["action"] == "opt_out"
    assert all(x["status"] == "cancelled" for x in await rows(c, child["id"]))
    clock.advance(days=400)
    assert await sweep(c) == 0 and not rasa.requests


async def test_inbound_sms_signature_rejected(make_client, gateway):
    c = await make_client()
    await create_child(c, payload=child_payload(caregivers=SMS_ONLY))
    raw, headers = signed({"from": "13900001111", "text": "退订"}, secret="wrong")
    r = await c.post("/sms/inbound", data=raw, headers=headers)
    assert r.status == 401 and (await r.json())["error"]["code"] == "invalid_signature"
    r = await c.post("/sms/inbound", data=raw, headers={"Content-Type": "application/json"})
    assert r.status == 401
    raw2, headers2 = signed({"from": "13900001111", "text": "退订"})
    r = await c.post("/sms/inbound", data=raw2 + b" ", headers=headers2)     # body tampered after signing
    assert r.status == 401
    cg = store(c).caregivers_by(phone="13900001111")[0]
    assert not cg["opted_out"]
    text = await (await c.get("/metrics")).text()
    assert metric(text, 'reminders_inbound_sms_total{action="bad_signature"}') == 3


@pytest.mark.parametrize("word", ["退订", "TD", "STOP", "取消提醒"])
async def test_inbound_sms_opt_out_stops_everything_and_confirms(make_client, gateway, clock, word):
    c = await make_client()
    child = await create_child(c, payload=child_payload(caregivers=SMS_ONLY))
    raw, headers = signed({"from": "+86 13900001111", "text": word, "message_id": "m1"})
    r = await c.post("/sms/inbound", data=raw, headers=headers)
    assert r.status == 200 and (await r.json())["action"] == "opt_out"
    assert all(x["status"] == "cancelled" for x in await rows(c, child["id"]))
    await sweep(c)
    assert len(gateway.requests) == 1 and "退订" in gateway.requests[0]["json"]["text"]   # only the confirmation
    clock.advance(days=200)
    await sweep(c)
    assert len(gateway.requests) == 1


async def test_inbound_sms_ack_and_dose_confirmation(make_client, gateway, clock):
    c = await make_client()
    child = await create_child(c, payload=child_payload(caregivers=SMS_ONLY))
    await sweep(c)
    assert len(gateway.requests) == 1
    raw, h = signed({"from": "13900001111", "text": "已打", "message_id": "m1"})
    body = await (await c.post("/sms/inbound", data=raw, headers=h)).json()
    assert body["action"] == "confirmation_requested"
    await sweep(c)
    assert "回复“是”" in gateway.requests[-1]["json"]["text"]
    raw, h = signed({"from": "13900001111", "text": "是", "message_id": "m2"})
    body = await (await c.post("/sms/inbound", data=raw, headers=h)).json()
    assert body["action"] == "dose_recorded"
    doses = (await (await c.get(f"/children/{child['id']}/doses", headers=AUTH)).json())["doses"]
    assert {d["item_id"] for d in doses} == {"bcg-1", "hepb-1", "dtap-1", "polio-1"} and doses[0]["source"] == "sms"
    # the gateway retries the same inbound webhook: no duplicate reply SMS (same idempotency key)
    await c.post("/sms/inbound", data=raw, headers=h)
    await sweep(c)
    replies = [q for q in gateway.requests if q["json"]["idempotency_key"].startswith("reply:m2")]
    assert len(replies) == 1
    raw, h = signed({"from": "13711112222", "text": "收到"})
    assert (await (await c.post("/sms/inbound", data=raw, headers=h)).json())["action"] == "unknown_sender"


async def test_activity_reminders_delivered_day_and_hour_before(make_client, rasa, clock):
    c = await make_client()
    child = await create_child(c, payload=child_payload(birth="2025-01-01", caregivers=[
        {"chat": {"sender_id": "mom-1"}, "language": "en"}]))
    await sweep(c)                                           # the overdue schedule message
    n0 = len(rasa.requests)
    act = await (await c.post("/activities", json={"title": "Baby first aid", "place": "Community centre",
                                                   "starts_at": "2026-03-04T15:00:00+08:00", "capacity": 5},
                              headers=AUTH)).json()
    await c.post(f"/activities/{act['id']}/bookings", json={"caregiver_id": child["caregivers"][0]["id"]}, headers=AUTH)
    clock.set(dt.datetime(2026, 3, 3, 6, 59, tzinfo=UTC))
    await sweep(c)
    assert len(rasa.requests) == n0
    clock.set(dt.datetime(2026, 3, 3, 7, 0, tzinfo=UTC))     # 15:00 the day before
    await sweep(c)
    assert len(rasa.requests) == n0 + 1 and "Baby first aid" in rasa.requests[-1]["json"]["entities"]["reminder_text"]
    clock.set(dt.datetime(2026, 3, 4, 6, 0, tzinfo=UTC))     # 14:00, an hour before
    await sweep(c)
    assert len(rasa.requests) == n0 + 2


async def test_log_lines_mask_phone_numbers(make_client, gateway, caplog):
    import logging
    c = await make_client()
    with caplog.at_level(logging.INFO):
        await create_child(c, payload=child_payload(caregivers=SMS_ONLY))
        gateway.default = 500
        await sweep(c)
        raw, h = signed({"from": "13900001111", "text": "收到"})
        await c.post("/sms/inbound", data=raw, headers=h)
    assert "139****1111" in caplog.text
    assert "13900001111" not in caplog.text


async def test_aiohttp_client_path_retries_with_same_key(make_client, gateway, clock):
    c = await make_client(http_client="aiohttp")
    child = await create_child(c, payload=child_payload(caregivers=SMS_ONLY))
    gateway.script = [500]
    await sweep(c)
    clock.advance(minutes=15)
    await sweep(c)
    assert [q["status"] for q in gateway.requests] == [500, 200]
    assert gateway.requests[0]["headers"]["Idempotency-Key"] == gateway.requests[1]["headers"]["Idempotency-Key"]
    assert (await rows(c, child["id"]))[0]["status"] == "sent"


async def test_planning_horizon_is_extended_by_the_sweep(make_client, rasa, clock):
    c = await make_client()
    child = await create_child(c, birth="2026-01-02")
    days = {r["local_date"] for r in await rows(c, child["id"])}
    assert "2026-05-02" in days and "2026-07-02" not in days          # 120-day horizon from 2026-03-02
    clock.advance(days=61)
    await sweep(c)
    days = {r["local_date"] for r in await rows(c, child["id"])}
    assert "2026-07-02" in days                                        # 6-month items planned now
    keys = [r["idempotency_key"] for r in await rows(c, child["id"])]
    assert len(keys) == len(set(keys))
