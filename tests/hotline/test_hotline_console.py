"""Staff console: login, sessions, CSRF, access control, roles, queue, claim
races, replies per channel, resolve, audit log, masking, dashboard.

Real hotline server on loopback with a real SQLite file; Rasa's tracker API
and the SMS gateway are loopback stand-ins (tests/hotline/test_stack.py runs
the same flows against a real Rasa)."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import sqlite3
import threading
import time

import aiohttp
import pytest
from yarl import URL

from hotline.app import ROUTES
from hotline.bridge import BACK_MESSAGES
from hotline.store import Store
from tests.hotline.helpers import API_TOKEN, PASSWORD, SMS_SECRET, Staff, open_ticket, wait_for

PUBLIC = {"/health", "/login"}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


# ------------------------------------------------------------ access control
async def test_every_console_route_refuses_without_a_session(hotline):
    """Enumerate the app's routes: each one (bar /health, /login and the
    bearer API) answers 401 or a redirect to /login, and leaks no data."""
    await open_ticket(hotline.make_url("/"), phone="13812345678")
    routes = [(r.method, r.resource.canonical) for r in hotline.app.router.routes() if r.method != "HEAD"]
    assert len(routes) == len(ROUTES)
    console = [(m, p) for m, p in routes if p not in PUBLIC and not p.startswith("/api/")]
    assert len(console) >= 18
    async with aiohttp.ClientSession() as session:
        for method, path in console:
            for cookies in ({}, {"hotline_session": "forged-token"}):
                for accept in ("application/json", "text/html"):
                    async with session.request(method, hotline.make_url(_concrete(path)), cookies=cookies,
                                               headers={"Accept": accept}, allow_redirects=False) as response:
                        body = await response.text()
                        assert response.status in (401, 303), (method, path, response.status)
                        if response.status == 303:
                            assert method == "GET" and response.headers["Location"] == "/login"
                        assert "138" not in body and "family-1" not in body and "宝宝" not in body
        # The public ones: health says ok, the login page is a form.
        async with session.get(hotline.make_url("/health")) as response:
            assert response.status == 200 and await response.json() == {"status": "ok"}


async def test_the_ticket_api_needs_the_bearer_token(hotline):
    async with aiohttp.ClientSession() as session:
        for method, path in [(m, p) for m, p, _ in ROUTES if p.startswith("/api/")]:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": API_TOKEN}):
                async with session.request(method, hotline.make_url(path), json={"sender_id": "x", "text": "x"},
                                           headers=headers) as response:
                    assert response.status == 401, (path, headers)
        async with session.post(hotline.make_url("/api/tickets"), json={"sender_id": ""},
                                headers={"Authorization": f"Bearer {API_TOKEN}"}) as response:
            assert response.status == 400
    ticket = await open_ticket(hotline.make_url("/"))
    assert ticket["created"] and ticket["expected_wait_minutes"] >= 1 and ticket["hotline_number"] == "12320"
    again = await open_ticket(hotline.make_url("/"), urgency="urgent")
    assert again["ticket_id"] == ticket["ticket_id"] and not again["created"] and again["urgency"] == "urgent"


# ------------------------------------------------------------------- login
async def test_login_sets_a_secure_server_side_session(hotline, config):
    client = Staff(hotline.make_url("/"))
    try:
        wrong = await client.login("wang", "not the password")
        assert wrong.status == 401
        assert "hotline_session" not in wrong.cookies
        unknown = await client.login("nobody", PASSWORD)
        assert unknown.status == 401
        ok = await client.login("wang")
        assert ok.status == 303 and ok.headers["Location"] == "/"
        cookie = ok.cookies["hotline_session"]
        assert cookie["httponly"] and cookie["secure"] and cookie["samesite"] == "Strict"
        assert (await client.get("/queue")).status == 200
        # The password is stored as a salted scrypt hash; the session as a digest.
        db = sqlite3.connect(config.db_path)
        stored = db.execute("SELECT password_hash FROM users WHERE username = 'wang'").fetchone()[0]
        assert stored.startswith("scrypt$") and PASSWORD not in stored
        assert db.execute("SELECT COUNT(*) FROM sessions WHERE token_hash = ?", (cookie.value,)).fetchone()[0] == 0
        db.close()
        # Logging out ends the session on the server, not only in the browser.
        assert (await client.post("/logout")).status == 303
        async with aiohttp.ClientSession() as other:
            async with other.get(hotline.make_url("/queue"), cookies={"hotline_session": cookie.value}) as response:
                assert response.status == 401
    finally:
        await client.close()


async def test_login_needs_its_csrf_token_and_locks_after_failures(hotline):
    async with aiohttp.ClientSession() as session:
        async with session.post(hotline.make_url("/login"), data={"username": "wang", "password": PASSWORD},
                                allow_redirects=False) as response:
            assert response.status == 403 and "hotline_session" not in response.cookies
    client = Staff(hotline.make_url("/"))
    try:
        for _ in range(5):
            assert (await client.login("li", "wrong password!")).status == 401
        assert (await client.login("li")).status == 429  # locked even with the right password
    finally:
        await client.close()


async def test_every_post_needs_the_csrf_token(hotline, staff):
    await open_ticket(hotline.make_url("/"))
    wang = await staff("wang")
    posts = [_concrete(p) for m, p, _ in ROUTES if m == "POST" and p not in PUBLIC and not p.startswith("/api/")]
    assert "/tickets/1/claim" in posts and "/logout" in posts
    for path in posts:
        for csrf in (None, "wrong-token"):
            response = await wang.post(path, {"text": "hi"}, csrf=csrf)
            assert response.status == 403, (path, csrf, response.status)
            assert (await response.json())["error"]["code"] == "csrf"
        # A cross-origin request is refused even with the token.
        response = await wang.post(path, {"text": "hi"}, headers={"Origin": "http://evil.example"})
        assert response.status == 403
    # Nothing happened: still open, still signed in.
    queue = await (await wang.session.get(wang.url("/queue"))).json()
    assert queue["tickets"][0]["status"] == "open"
    assert (await wang.post("/tickets/1/claim")).status == 200


async def test_dashboard_and_audit_are_for_supervisors(hotline, staff):
    wang, boss = await staff("wang"), await staff("boss")
    for path in ("/dashboard", "/dashboard/data", "/audit", "/audit/data"):
        assert (await wang.get(path)).status == 403, path
        assert (await boss.get(path)).status == 200, path


# ------------------------------------------------------------------- queue
async def test_queue_is_ordered_by_urgency_then_waiting_time(hotline, staff):
    base = hotline.make_url("/")
    first = await open_ticket(base, sender_id="a")
    await asyncio.sleep(0.01)
    second = await open_ticket(base, sender_id="b")
    await asyncio.sleep(0.01)
    urgent = await open_ticket(base, sender_id="c", urgency="urgent", trigger="urgent")
    wang = await staff("wang")
    assert (await wang.post(f"/tickets/{first['ticket_id']}/claim")).status == 200
    queue = await (await wang.session.get(wang.url("/queue"))).json()
    assert [t["id"] for t in queue["tickets"]] == [urgent["ticket_id"], second["ticket_id"], first["ticket_id"]]
    assert queue["tickets"][-1]["status"] == "claimed" and queue["tickets"][-1]["claimed_by"] == "wang"


async def test_queue_updates_live_over_server_sent_events(hotline, staff):
    wang = await staff("wang")
    frames = []

    async def listen():
        async with wang.session.get(wang.url("/events")) as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            async for line in response.content:
                line = line.decode().strip()
                if line.startswith("data: "):
                    frames.append(json.loads(line[6:]))

    task = asyncio.create_task(listen())
    await wait_for(lambda: frames)  # the initial snapshot
    assert frames[0]["tickets"] == []
    ticket = await open_ticket(hotline.make_url("/"), sender_id="live-1", urgency="urgent", trigger="urgent")
    await wait_for(lambda: any(t["id"] == ticket["ticket_id"] for f in frames for t in f["tickets"]), timeout=3)
    assert (await wang.post(f"/tickets/{ticket['ticket_id']}/claim")).status == 200
    await wait_for(lambda: frames[-1]["tickets"][0]["status"] == "claimed", timeout=3)
    task.cancel()


# ------------------------------------------------------------------- claim
async def test_two_workers_claiming_at_once_get_one_claim(hotline, staff):
    wang, li = await staff("wang"), await staff("li")
    for n in range(10):
        ticket = await open_ticket(hotline.make_url("/"), sender_id=f"race-{n}")
        path = f"/tickets/{ticket['ticket_id']}/claim"
        a, b = await asyncio.gather(wang.post(path), li.post(path))
        assert sorted([a.status, b.status]) == [200, 409], (a.status, b.status)
        loser = a if a.status == 409 else b
        assert (await loser.json())["error"]["code"] == "not_claimable"


def test_claim_is_one_conditional_update_across_connections(tmp_path):
    """Eight threads, each with its own SQLite connection, claim the same
    tickets at the same moment: every ticket ends with exactly one owner."""
    path = str(tmp_path / "race.db")
    setup = Store(path)
    users = [setup.create_user(f"w{i}", PASSWORD, "worker") for i in range(8)]
    tickets = [setup.open_ticket({"sender_id": f"s{i}"})[0]["id"] for i in range(30)]
    stores = [Store(path) for _ in users]
    barrier = threading.Barrier(len(users))
    wins = {u: [] for u in users}

    def worker(store, user_id):
        for ticket_id in tickets:
            barrier.wait()
            if store.claim(ticket_id, user_id):
                wins[user_id].append(ticket_id)

    threads = [threading.Thread(target=worker, args=(s, u)) for s, u in zip(stores, users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = sorted(t for won in wins.values() for t in won)
    assert claimed == sorted(tickets)  # each ticket claimed once, none lost
    for ticket_id in tickets:
        assert setup.ticket(ticket_id)["claimed_by"] in [u for u, won in wins.items() if ticket_id in won]


# ----------------------------------------------------------- replies, resolve
async def test_chat_reply_goes_through_rasa_with_side_effects(hotline, staff, neighbours):
    ticket = await open_ticket(hotline.make_url("/"), sender_id="web-1", channel="webchat", language="en")
    wang, li = await staff("wang"), await staff("li")
    path = f"/tickets/{ticket['ticket_id']}"
    assert (await wang.post(path + "/reply", {"text": "Hello"})).status == 409  # claim first
    assert (await wang.post(path + "/claim")).status == 200
    assert (await li.post(path + "/reply", {"text": "Not mine"})).status == 409  # not li's ticket
    response = await wang.post(path + "/reply", {"text": "Hello, I'm Wang from the hotline."})
    assert response.status == 200 and (await response.json())["delivery"] == "chat:webchat"
    sent = neighbours["rasa"].appended[-1]
    assert sent["sender"] == "web-1"
    assert sent["query"]["execute_side_effects"] == "true" and sent["query"]["output_channel"] == "webchat"
    assert sent["events"][0]["event"] == "bot" and sent["events"][0]["text"] == "[Hotline worker] Hello, I'm Wang from the hotline."


async def test_sms_reply_goes_to_the_signed_sms_gateway(hotline, staff, neighbours):
    ticket = await open_ticket(hotline.make_url("/"), sender_id="13812345678", channel="sms", phone="13812345678")
    wang = await staff("wang")
    path = f"/tickets/{ticket['ticket_id']}"
    assert (await wang.post(path + "/claim")).status == 200
    response = await wang.post(path + "/reply", {"text": "宝宝现在体温多少？"})
    assert response.status == 200 and (await response.json())["delivery"] == "sms"
    message = neighbours["sms"].received[-1]
    assert message["valid"] and message["key"] and message["body"]["to"] == "13812345678"
    assert message["body"]["text"] == "【热线工作人员】宝宝现在体温多少？"
    # Recorded in the conversation, but not sent again by Rasa.
    recorded = neighbours["rasa"].appended[-1]
    assert "execute_side_effects" not in recorded["query"] and recorded["events"][0]["event"] == "bot"
    # Resolving texts the user that the bot is back.
    assert (await wang.post(path + "/resolve")).status == 200
    assert neighbours["sms"].received[-1]["body"]["text"] == BACK_MESSAGES["zh"]
    assert [e["event"] for e in neighbours["rasa"].appended[-1]["events"]] == ["resume", "bot", "action"]


async def test_voice_reply_becomes_a_call_back_task(hotline, staff, neighbours):
    ticket = await open_ticket(hotline.make_url("/"), sender_id="CA123", channel="twilio_voice", phone="+8613812345678")
    wang = await staff("wang")
    path = f"/tickets/{ticket['ticket_id']}"
    await wang.post(path + "/claim")
    response = await wang.post(path + "/reply", {"text": "请回电告诉她去社区医院"})
    body = await response.json()
    assert body["delivery"] == "voice" and body["callback_id"]
    data = await (await wang.session.get(wang.url(path + "/data"))).json()
    assert data["callbacks"][0]["status"] == "pending" and data["callbacks"][0]["phone"] == "138****5678"
    assert (await wang.post(f"{path}/callbacks/{body['callback_id']}/done")).status == 200
    assert (await wang.post(f"{path}/callbacks/{body['callback_id']}/done")).status == 409
    assert neighbours["sms"].received == []


async def test_resolve_resumes_the_conversation_in_the_users_language(hotline, staff, neighbours):
    base = hotline.make_url("/")
    ticket = await open_ticket(base, sender_id="web-2", channel="webchat", language="en")
    wang, boss = await staff("wang"), await staff("boss")
    path = f"/tickets/{ticket['ticket_id']}"
    assert (await wang.post(path + "/resolve")).status == 409  # open, not claimed by wang
    await wang.post(path + "/claim")
    neighbours["rasa"].fail = True
    failed = await wang.post(path + "/resolve")
    assert failed.status == 502  # Rasa down: the ticket stays with wang
    assert (await (await wang.session.get(wang.url(path + "/data"))).json())["ticket"]["status"] == "claimed"
    neighbours["rasa"].fail = False
    assert (await wang.post(path + "/resolve")).status == 200
    sent = neighbours["rasa"].appended[-1]
    assert [e["event"] for e in sent["events"]] == ["resume", "bot", "action"]
    assert sent["events"][2]["name"] == "action_listen"
    assert sent["events"][1]["text"] == BACK_MESSAGES["en"]
    assert sent["query"]["output_channel"] == "webchat"
    assert (await boss.post(path + "/resolve")).status == 409
    # A new handoff of the same conversation opens a new ticket.
    again = await open_ticket(base, sender_id="web-2")
    assert again["created"] and again["ticket_id"] != ticket["ticket_id"]


async def test_user_messages_while_paused_reach_the_console_live(hotline, staff, neighbours):
    ticket = await open_ticket(hotline.make_url("/"), sender_id="web-3")
    wang = await staff("wang")
    frames = []

    async def listen():
        async with wang.session.get(wang.url(f"/tickets/{ticket['ticket_id']}/stream")) as response:
            event = None
            async for line in response.content:
                line = line.decode().strip()
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    frames.append((event, json.loads(line[6:])))

    task = asyncio.create_task(listen())
    await wait_for(lambda: frames)
    assert frames[0] == ("status", {"status": "open", "claimed_by": None, "claimed_by_me": False})
    neighbours["rasa"].add_user_message("web-3", "他现在39度，手脚冰凉 13812345678")
    message = await wait_for(lambda: [d for e, d in frames if e == "message"], timeout=3)
    assert message[0]["kind"] == "user" and message[0]["text"] == "他现在39度，手脚冰凉 138****5678"
    task.cancel()


# ------------------------------------------------------ audit log, masking
async def test_views_of_family_data_are_audited_and_phones_masked(hotline, staff, neighbours):
    ticket = await open_ticket(hotline.make_url("/"), sender_id="13912345678", channel="sms", phone="13912345678",
                               summary=[{"question": "我的电话13912345678，宝宝咳嗽", "answer": "..."}])
    neighbours["rasa"].add_user_message("13912345678", "宝宝咳嗽")
    wang, boss = await staff("wang"), await staff("boss")
    path = f"/tickets/{ticket['ticket_id']}"
    queue_text = await (await wang.session.get(wang.url("/queue"))).text()
    data_text = await (await wang.session.get(wang.url(path + "/data"))).text()
    transcript = await (await wang.session.get(wang.url(path + "/transcript"))).json()
    for text in (queue_text, data_text, json.dumps(transcript, ensure_ascii=False)):
        assert "13912345678" not in text
    assert "139****5678" in data_text
    assert transcript["events"][0]["text"] == "宝宝咳嗽"
    revealed = await (await wang.post(path + "/reveal-phone")).json()
    assert revealed["phone"] == "13912345678"
    entries = (await (await boss.session.get(boss.url(f"/audit/data?ticket={ticket['ticket_id']}"))).json())["entries"]
    actions = [(e["username"], e["action"]) for e in reversed(entries)]
    assert actions[-3:] == [("wang", "view_ticket"), ("wang", "view_transcript"), ("wang", "reveal_phone")]
    assert all(e["ticket_id"] == ticket["ticket_id"] and e["sender_id"] == "139****5678" for e in entries[:3])
    assert all(e["at"] > time.time() - 60 for e in entries)
    everything = (await (await boss.session.get(boss.url("/audit/data"))).json())["entries"]
    assert ("wang", "view_queue") in [(e["username"], e["action"]) for e in everything]


async def test_notes_stay_internal(hotline, staff, neighbours):
    ticket = await open_ticket(hotline.make_url("/"), sender_id="web-4")
    wang = await staff("wang")
    path = f"/tickets/{ticket['ticket_id']}"
    assert (await wang.post(path + "/notes", {"text": "奶奶很着急，已建议去医院"})).status == 200
    data = await (await wang.session.get(wang.url(path + "/data"))).json()
    assert data["notes"][0]["text"] == "奶奶很着急，已建议去医院" and data["notes"][0]["username"] == "wang"
    assert neighbours["rasa"].appended == [] and neighbours["sms"].received == []


# ----------------------------------------------------------------- dashboard
async def test_dashboard_groups_unanswered_questions_and_degrades_without_reminders(hotline, staff, config):
    base = hotline.make_url("/")
    async with aiohttp.ClientSession() as session:
        for text in ("孩子上哪个小学好？", "孩子上哪个小学好", "What about school fees?"):
            async with session.post(base.join(URL("/api/unanswered")), json={"text": text, "sender_id": text[:3]},
                                    headers={"Authorization": f"Bearer {API_TOKEN}"}) as response:
                assert response.status == 201
    # Rasa's SQL tracker store: an out_of_scope message is counted too.
    db = sqlite3.connect(config.rasa_tracker_db)
    db.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id TEXT, type_name TEXT, timestamp REAL,"
               " intent_name TEXT, action_name TEXT, data TEXT)")
    insert = "INSERT INTO events (sender_id, type_name, timestamp, intent_name, data) VALUES (?, ?, ?, ?, ?)"
    db.execute(insert, ("x9", "user", time.time(), "out_of_scope", json.dumps({"text": "孩子上哪个小学好"})))
    # Declined by the knowledge-base action (decision in the bot message's metadata).
    db.execute(insert, ("x8", "user", time.time(), "ask_question", json.dumps({"text": "孩子上哪个小学好?"})))
    db.execute(insert, ("x8", "bot", time.time(), None, json.dumps({"text": "抱歉", "metadata": {"decision": "out_of_scope"}})))
    # Answered: not counted.
    db.execute(insert, ("x7", "user", time.time(), "ask_question", json.dumps({"text": "孩子上哪个小学好"})))
    db.execute(insert, ("x7", "bot", time.time(), None, json.dumps({"text": "……", "metadata": {"decision": "answer"}})))
    db.commit()
    db.close()
    ticket = await open_ticket(base, sender_id="d1")
    boss = await staff("boss")
    await boss.post(f"/tickets/{ticket['ticket_id']}/claim")
    data = await (await boss.session.get(boss.url("/dashboard/data"))).json()
    assert data["unanswered"][0] == {**data["unanswered"][0], "question": "孩子上哪个小学好？", "count": 4, "people": 3}
    assert data["tickets"]["by_status"] == {"open": 0, "claimed": 1, "resolved": 0}
    assert data["tickets"]["wait_to_claim_seconds"]["n"] == 1
    assert data["reminders"]["available"] is False and "REMINDERS_URL" in data["reminders"]["reason"]


async def test_dashboard_shows_reminder_figures_from_the_reminders_service(aiohttp_server, config, accounts):
    from dataclasses import replace

    from aiohttp import web

    from hotline.app import create_app

    seen_tokens = []

    async def metrics(request):
        seen_tokens.append(request.headers.get("Authorization"))
        return web.Response(text='# HELP x\nreminders_by_status{status="sent"} 41\n'
                                 'reminders_by_status{status="acknowledged"} 17\nreminders_by_status{status="failed"} 3\n')

    async def stats(request):
        return web.json_response({"error": "not here"}, status=404)

    reminders = web.Application()
    reminders.router.add_get("/metrics", metrics)
    reminders.router.add_get("/stats", stats)
    reminders_server = await aiohttp_server(reminders)
    app = create_app(replace(config, reminders_url=str(reminders_server.make_url("")).rstrip("/"),
                             reminders_token="rem-token"), poll=False)
    server = await aiohttp_server(app)
    boss = Staff(server.make_url("/"))
    try:
        assert (await boss.login("boss")).status == 303
        data = await (await boss.session.get(boss.url("/dashboard/data"))).json()
    finally:
        await boss.close()
    assert data["reminders"]["available"] is True
    assert {k: data["reminders"]["reminders"][k] for k in ("sent", "acknowledged", "failed")} == {
        "sent": 41, "acknowledged": 17, "failed": 3}
    assert seen_tokens == ["Bearer rem-token"]
