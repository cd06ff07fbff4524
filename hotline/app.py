"""The hotline service: internal ticket API and the staff console.

`create_app(config)` builds the aiohttp application. Every route except
`/health`, `/login` and the bearer-token API under `/api/` needs a staff
session; every state-changing request needs the session's CSRF token.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional

import aiohttp
from aiohttp import web

from hotline import pages
from hotline.bridge import (
    AFTER_RESUME_EVENTS,
    RESUME_EVENTS,
    Bridge,
    DeliveryError,
    back_message,
    group_questions,
    staff_text,
    tracker_db_unanswered,
    transcript,
    user_messages_after,
)
from hotline.config import HotlineConfig
from hotline.security import DUMMY_HASH, mask_phone, mask_phones_in_text, new_token, tokens_equal, verify_password
from hotline.store import TRIGGERS, URGENCY_RANK, Store

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
SESSION_COOKIE = "hotline_session"
LOGIN_CSRF_COOKIE = "hotline_login_csrf"
PUBLIC_PATHS = frozenset({"/health", "/login"})
MAX_TEXT = 2000
LOGIN_MAX_FAILURES, LOGIN_WINDOW = 5, 15 * 60
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


class Hub:
    """Wakes live streams (server-sent events) when anything changes."""

    def __init__(self) -> None:
        self.version = 0
        self.closing = False
        self._condition = asyncio.Condition()

    async def notify(self) -> None:
        async with self._condition:
            self.version += 1
            self._condition.notify_all()

    async def wait(self, seen: int, timeout: float) -> int:
        """Wait until the version moves past `seen` (or the timeout); return it."""
        async with self._condition:
            try:
                await asyncio.wait_for(
                    self._condition.wait_for(lambda: self.version != seen or self.closing), timeout
                )
            except asyncio.TimeoutError:
                pass
            return self.version

    async def close(self) -> None:
        async with self._condition:
            self.closing = True
            self._condition.notify_all()


CONFIG = web.AppKey("config", HotlineConfig)
STORE = web.AppKey("store", Store)
HUB = web.AppKey("hub", Hub)
BRIDGE = web.AppKey("bridge", Bridge)
HTTP = web.AppKey("http", aiohttp.ClientSession)
POLLER = web.AppKey("poller", asyncio.Task)
FAILURES = web.AppKey("login_failures", dict)


# --------------------------------------------------------------- helpers
def _json_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _wants_html(request: web.Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("Accept", "")


def _set_cookie(response: web.StreamResponse, config: HotlineConfig, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", httponly=True, samesite="Strict", secure=config.cookie_secure
    )


def _ticket_id(request: web.Request) -> int:
    try:
        return int(request.match_info["ticket_id"])
    except ValueError:
        raise web.HTTPNotFound() from None


def _ticket(request: web.Request) -> Dict[str, Any]:
    ticket = request.app[STORE].ticket(_ticket_id(request))
    if ticket is None:
        raise web.HTTPNotFound(text=json.dumps({"error": {"code": "not_found", "message": "no such ticket"}}),
                               content_type="application/json")
    return ticket


def _require_supervisor(request: web.Request) -> Dict[str, Any]:
    user = request["user"]
    if user["role"] != "supervisor":
        raise web.HTTPForbidden(text=json.dumps({"error": {"code": "forbidden", "message": "supervisors only"}}),
                                content_type="application/json")
    return user


async def _body(request: web.Request) -> Dict[str, Any]:
    if request.content_type == "application/json":
        try:
            data = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text='{"error":{"code":"invalid_json","message":"body must be JSON"}}',
                                     content_type="application/json") from None
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(text='{"error":{"code":"invalid_json","message":"body must be an object"}}',
                                     content_type="application/json")
        return data
    return dict(await request.post())


def _text(data: Dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise web.HTTPBadRequest(text=json.dumps({"error": {"code": "invalid_" + key, "message": f"'{key}' is required"}}),
                                 content_type="application/json")
    if len(value) > MAX_TEXT:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_TEXT, actual_size=len(value))
    return value.strip()


def public_ticket(ticket: Dict[str, Any], now: float) -> Dict[str, Any]:
    """A ticket as the console shows it: phone and sender id masked."""
    sender = ticket["sender_id"]
    return {
        "id": ticket["id"],
        "sender": mask_phones_in_text(sender) if not ticket.get("phone") else mask_phone(ticket["phone"]),
        "channel": ticket["channel"],
        "language": ticket["language"],
        "urgency": ticket["urgency"],
        "trigger": ticket["trigger"],
        "child_age_months": ticket.get("child_age_months"),
        "status": ticket["status"],
        "created_at": ticket["created_at"],
        "waiting_seconds": round((ticket.get("claimed_at") or now) - ticket["created_at"], 1),
        "claimed_by": ticket.get("claimed_by_name"),
        "user_messages": ticket.get("user_messages"),
        "has_phone": bool(ticket.get("phone")),
    }


# ------------------------------------------------------------ middlewares
@web.middleware
async def security_headers(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
    try:
        response = await handler(request)
    except web.HTTPException as error:
        response = error
    if not response.prepared:
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cache-Control", "no-store")
    if isinstance(response, web.HTTPException) and response.status >= 400:
        raise response
    return response


@web.middleware
async def authenticate(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
    """Bearer token for /api/, a live session (and CSRF token on writes) for the rest."""
    config = request.app[CONFIG]
    path = request.path
    if path in PUBLIC_PATHS:
        return await handler(request)
    if path.startswith("/api/"):
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.startswith("Bearer ") else ""
        if not config.api_token or not tokens_equal(token, config.api_token):
            return _json_error(401, "unauthorized", "a valid bearer token is required")
        return await handler(request)
    user = request.app[STORE].session(request.cookies.get(SESSION_COOKIE))
    if user is None:
        if _wants_html(request):
            raise web.HTTPSeeOther("/login")
        return _json_error(401, "login_required", "sign in first")
    request["user"] = user
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        origin = request.headers.get("Origin")
        if origin and origin != "null" and origin.split("://", 1)[-1] != request.host:
            return _json_error(403, "bad_origin", "cross-origin request refused")
        sent = request.headers.get("X-CSRF-Token")
        if sent is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            sent = (await request.post()).get("csrf_token")
        if not tokens_equal(sent, user["csrf_token"]):
            return _json_error(403, "csrf", "missing or wrong CSRF token")
    return await handler(request)


# ------------------------------------------------------------------ public
async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def login_form(request: web.Request) -> web.Response:
    if request.app[STORE].session(request.cookies.get(SESSION_COOKIE)):
        raise web.HTTPSeeOther("/")
    csrf = new_token()
    response = web.Response(text=pages.login_page(csrf), content_type="text/html")
    _set_cookie(response, request.app[CONFIG], LOGIN_CSRF_COOKIE, csrf, 3600)
    return response


def _login_failed(request: web.Request, username: str, status: int, message: str) -> web.Response:
    csrf = new_token()
    response = web.Response(text=pages.login_page(csrf, message, username), content_type="text/html", status=status)
    _set_cookie(response, request.app[CONFIG], LOGIN_CSRF_COOKIE, csrf, 3600)
    return response


async def login(request: web.Request) -> web.Response:
    store, config = request.app[STORE], request.app[CONFIG]
    form = await request.post()
    username = str(form.get("username", "")).strip()[:64]
    password = str(form.get("password", ""))
    if not tokens_equal(str(form.get("csrf_token", "")), request.cookies.get(LOGIN_CSRF_COOKIE)):
        return _login_failed(request, username, 403, "表单已过期，请重试。The form expired, please try again.")
    now = time.time()
    failures = request.app[FAILURES].setdefault(username.lower(), [])
    failures[:] = [t for t in failures if now - t < LOGIN_WINDOW]
    if len(failures) >= LOGIN_MAX_FAILURES:
        store.audit(None, "login_locked", detail=username)
        return _login_failed(request, username, 429, "尝试次数过多，请15分钟后再试。Too many attempts; try again in 15 minutes.")
    user = store.user_by_name(username)
    # Verify against a dummy hash for unknown names: same time either way.
    ok = verify_password(password, user["password_hash"] if user else DUMMY_HASH) and user is not None
    if not ok:
        failures.append(now)
        store.audit(None, "login_failed", detail=username)
        return _login_failed(request, username, 401, "用户名或密码错误。Wrong username or password.")
    failures.clear()
    token, _ = store.create_session(user["id"], config.session_hours * 3600)
    store.audit(user, "login")
    response = web.HTTPSeeOther("/")
    _set_cookie(response, config, SESSION_COOKIE, token, int(config.session_hours * 3600))
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/")
    raise response


async def logout(request: web.Request) -> web.Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        request.app[STORE].delete_session(token)
    request.app[STORE].audit(request["user"], "logout")
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


# ----------------------------------------------------------------- console
async def static_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in ("console.js", "console.css"):
        raise web.HTTPNotFound()
    content_type = "application/javascript" if name.endswith(".js") else "text/css"
    return web.Response(text=(STATIC / name).read_text(encoding="utf-8"), content_type=content_type)


async def queue_page(request: web.Request) -> web.Response:
    return web.Response(text=pages.console_page("queue", "队列 Queue", request["user"], pages.QUEUE_BODY),
                        content_type="text/html")


def _queue_snapshot(store: Store) -> Dict[str, Any]:
    now = time.time()
    return {"now": now, "tickets": [public_ticket(t, now) for t in store.queue()]}


async def queue_data(request: web.Request) -> web.Response:
    request.app[STORE].audit(request["user"], "view_queue")
    return web.json_response(_queue_snapshot(request.app[STORE]))


async def _sse(request: web.Request, produce: Callable[[int], Awaitable[Optional[List[str]]]]) -> web.StreamResponse:
    """Server-sent events: call `produce(version)` now and after every change;
    it returns SSE frames to send (None ends the stream)."""
    hub, store = request.app[HUB], request.app[STORE]
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no",
        "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
    })
    await response.prepare(request)
    token = request.cookies.get(SESSION_COOKIE)
    version = hub.version
    try:
        await response.write(b"retry: 2000\n\n")
        while not hub.closing:
            if store.session(token) is None:
                await response.write(b"event: logout\ndata: {}\n\n")
                break
            frames = await produce(version)
            if frames is None:
                break
            for frame in frames:
                await response.write(frame.encode("utf-8"))
            new_version = await hub.wait(version, timeout=15.0)
            if new_version == version:
                await response.write(b": keep-alive\n\n")
            version = new_version
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return response


def _frame(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


async def queue_events(request: web.Request) -> web.StreamResponse:
    store = request.app[STORE]
    store.audit(request["user"], "watch_queue")
    last: Dict[str, Any] = {"sent": None}

    async def produce(version: int) -> List[str]:
        snapshot = _queue_snapshot(store)
        key = json.dumps([(t["id"], t["status"], t["urgency"], t["claimed_by"], t["user_messages"]) for t in snapshot["tickets"]])
        if key == last["sent"]:
            return []
        last["sent"] = key
        return [_frame("queue", snapshot)]

    return await _sse(request, produce)


async def ticket_page(request: web.Request) -> web.Response:
    ticket = _ticket(request)
    return web.Response(
        text=pages.console_page("ticket", f"工单 #{ticket['id']}", request["user"], pages.TICKET_BODY,
                                {"ticket": str(ticket["id"])}),
        content_type="text/html",
    )


def _ticket_detail(store: Store, ticket: Dict[str, Any], user: Dict[str, Any]) -> Dict[str, Any]:
    now = time.time()
    detail = public_ticket(ticket, now)
    detail.update({
        "summary": [
            {"question": mask_phones_in_text(s.get("question", "")), "answer": mask_phones_in_text(s.get("answer", ""))}
            for s in ticket["summary"]
        ],
        "resolved_by": ticket.get("resolved_by_name"),
        "resolved_at": ticket.get("resolved_at"),
        "claimed_by_me": ticket.get("claimed_by") == user["id"],
        "route": None,
    })
    return detail


async def ticket_data(request: web.Request) -> web.Response:
    store, bridge = request.app[STORE], request.app[BRIDGE]
    ticket, user = _ticket(request), request["user"]
    store.audit(user, "view_ticket", ticket)
    detail = _ticket_detail(store, ticket, user)
    detail["route"] = bridge.route(ticket["channel"])
    return web.json_response({
        "ticket": detail,
        "notes": store.notes(ticket["id"]),
        "messages": [{**m, "text": mask_phones_in_text(m["text"])} for m in store.messages(ticket["id"])],
        "callbacks": [{**c, "phone": mask_phone(c["phone"])} for c in store.callbacks(ticket["id"])],
    })


async def ticket_transcript(request: web.Request) -> web.Response:
    store, bridge = request.app[STORE], request.app[BRIDGE]
    ticket, user = _ticket(request), request["user"]
    store.audit(user, "view_transcript", ticket)
    try:
        tracker = await bridge.tracker(ticket["sender_id"])
    except (DeliveryError, aiohttp.ClientError, asyncio.TimeoutError) as error:
        return _json_error(502, "rasa_unavailable", f"cannot read the conversation: {error}")
    return web.json_response({
        "sender": public_ticket(ticket, time.time())["sender"],
        "paused": bool(tracker.get("paused")),
        "events": transcript(tracker.get("events") or []),
    })


async def ticket_stream(request: web.Request) -> web.StreamResponse:
    """Live messages and status of one ticket (SSE)."""
    store = request.app[STORE]
    ticket, user = _ticket(request), request["user"]
    store.audit(user, "watch_ticket", ticket)
    state: Dict[str, Any] = {"after": int(request.query.get("after", "0") or 0), "status": None}

    async def produce(version: int) -> List[str]:
        frames = []
        current = store.ticket(ticket["id"])
        status = (current["status"], current.get("claimed_by_name"))
        if status != state["status"]:
            state["status"] = status
            frames.append(_frame("status", {"status": status[0], "claimed_by": status[1],
                                            "claimed_by_me": current.get("claimed_by") == user["id"]}))
        for message in store.messages(ticket["id"], state["after"]):
            state["after"] = message["id"]
            frames.append(_frame("message", {**message, "text": mask_phones_in_text(message["text"])}))
        return frames

    return await _sse(request, produce)


async def claim(request: web.Request) -> web.Response:
    store, hub = request.app[STORE], request.app[HUB]
    ticket, user = _ticket(request), request["user"]
    if not store.claim(ticket["id"], user["id"]):
        current = store.ticket(ticket["id"])
        return _json_error(409, "not_claimable",
                           f"ticket is {current['status']}" + (f" by {current['claimed_by_name']}" if current.get("claimed_by_name") else ""))
    store.audit(user, "claim", ticket)
    await hub.notify()
    return web.json_response({"ok": True, "claimed_by": user["username"]})


async def release(request: web.Request) -> web.Response:
    store, hub = request.app[STORE], request.app[HUB]
    ticket, user = _ticket(request), request["user"]
    if not store.release(ticket["id"], user["id"]):
        return _json_error(409, "not_yours", "only the worker holding the ticket can release it")
    store.audit(user, "release", ticket)
    await hub.notify()
    return web.json_response({"ok": True})


def _may_act(ticket: Dict[str, Any], user: Dict[str, Any]) -> bool:
    """Replies and resolving: the worker holding the ticket, or a supervisor."""
    return ticket["status"] == "claimed" and (ticket["claimed_by"] == user["id"] or user["role"] == "supervisor")


async def reply(request: web.Request) -> web.Response:
    store, bridge, hub = request.app[STORE], request.app[BRIDGE], request.app[HUB]
    ticket, user = _ticket(request), request["user"]
    text = _text(await _body(request), "text")
    if not _may_act(ticket, user):
        return _json_error(409, "claim_first", "claim the ticket before replying")
    outgoing = staff_text(ticket["language"], text)
    try:
        delivery = await bridge.deliver(ticket, outgoing)
    except (DeliveryError, aiohttp.ClientError, asyncio.TimeoutError) as error:
        store.audit(user, "reply_failed", ticket, str(error)[:200])
        return _json_error(502, "delivery_failed", f"the reply did not go out: {error}")
    callback_id = None
    if delivery == "voice":
        callback_id = store.add_callback(ticket["id"], ticket.get("phone") or ticket["sender_id"], text, user["id"])
    message_id = store.add_message(ticket["id"], "staff", text, user_id=user["id"], delivery=delivery)
    store.audit(user, "reply", ticket, delivery)
    await hub.notify()
    return web.json_response({"ok": True, "message_id": message_id, "delivery": delivery, "callback_id": callback_id})


async def add_note(request: web.Request) -> web.Response:
    store, hub = request.app[STORE], request.app[HUB]
    ticket, user = _ticket(request), request["user"]
    text = _text(await _body(request), "text")
    note_id = store.add_note(ticket["id"], user["id"], text)
    store.audit(user, "note", ticket)
    await hub.notify()
    return web.json_response({"ok": True, "note_id": note_id})


async def resolve(request: web.Request) -> web.Response:
    store, bridge, hub = request.app[STORE], request.app[BRIDGE], request.app[HUB]
    ticket, user = _ticket(request), request["user"]
    if not _may_act(ticket, user):
        return _json_error(409, "claim_first", "only the worker holding the ticket (or a supervisor) can resolve it")
    if not store.resolve(ticket["id"], user["id"]):
        return _json_error(409, "already_resolved", "the ticket is already resolved")
    try:
        # Resume the bot and say so, on the user's channel.
        delivery = await bridge.deliver(ticket, back_message(ticket["language"]), extra_events=RESUME_EVENTS,
                                        then=AFTER_RESUME_EVENTS)
    except (DeliveryError, aiohttp.ClientError, asyncio.TimeoutError) as error:
        store.unresolve(ticket["id"], ticket["claimed_by"], ticket["claimed_at"])
        store.audit(user, "resolve_failed", ticket, str(error)[:200])
        return _json_error(502, "resume_failed", f"the conversation could not be resumed: {error}")
    store.add_message(ticket["id"], "system", back_message(ticket["language"]), delivery=delivery)
    store.audit(user, "resolve", ticket, delivery)
    await hub.notify()
    return web.json_response({"ok": True, "delivery": delivery})


async def reveal_phone(request: web.Request) -> web.Response:
    store = request.app[STORE]
    ticket, user = _ticket(request), request["user"]
    phone = ticket.get("phone")
    store.audit(user, "reveal_phone", ticket, "revealed" if phone else "no phone on file")
    return web.json_response({"phone": phone})


async def callback_done(request: web.Request) -> web.Response:
    store, hub = request.app[STORE], request.app[HUB]
    ticket, user = _ticket(request), request["user"]
    try:
        callback_id = int(request.match_info["callback_id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    if not store.complete_callback(callback_id, ticket["id"], user["id"]):
        return _json_error(409, "not_pending", "no pending call-back with that id")
    store.audit(user, "callback_done", ticket, str(callback_id))
    await hub.notify()
    return web.json_response({"ok": True})


# -------------------------------------------------------------- supervisor
async def dashboard_page(request: web.Request) -> web.Response:
    user = _require_supervisor(request)
    return web.Response(text=pages.console_page("dashboard", "看板 Dashboard", user, pages.DASHBOARD_BODY),
                        content_type="text/html")


async def dashboard_data(request: web.Request) -> web.Response:
    user = _require_supervisor(request)
    store, bridge, config = request.app[STORE], request.app[BRIDGE], request.app[CONFIG]
    days = min(365, max(1, int(request.query.get("days", "30") or 30)))
    since = time.time() - days * 86400
    store.audit(user, "view_dashboard", detail=f"days={days}")
    questions = store.unanswered(since) + await asyncio.get_running_loop().run_in_executor(
        None, tracker_db_unanswered, config.rasa_tracker_db, since
    )
    reminders = await bridge.reminders_overview()
    if reminders.get("overdue_by_community"):
        store.audit(user, "view_overdue_by_community",
                    detail=f"communities={len(reminders['overdue_by_community'])}")
    return web.json_response({
        "days": days,
        "tickets": store.ticket_stats(since=since),
        "unanswered": group_questions(questions),
        "reminders": reminders,
    })


async def audit_page(request: web.Request) -> web.Response:
    user = _require_supervisor(request)
    return web.Response(text=pages.console_page("audit", "审计 Audit", user, pages.AUDIT_BODY), content_type="text/html")


async def audit_data(request: web.Request) -> web.Response:
    user = _require_supervisor(request)
    store = request.app[STORE]
    ticket_id = request.query.get("ticket")
    entries = store.audit_entries(500, int(ticket_id) if ticket_id and ticket_id.isdigit() else None)
    store.audit(user, "view_audit")
    return web.json_response({"entries": [{**e, "sender_id": mask_phones_in_text(e["sender_id"])} for e in entries]})


# ------------------------------------------------------------ internal API
def validate_ticket_request(data: Dict[str, Any]) -> Dict[str, Any]:
    """Check and normalise a `POST /api/tickets` body; raises ValueError."""
    sender = data.get("sender_id")
    if not isinstance(sender, str) or not sender.strip() or len(sender) > 128:
        raise ValueError("'sender_id' must be a non-empty string of at most 128 characters")
    urgency = data.get("urgency", "normal")
    if urgency not in URGENCY_RANK:
        raise ValueError(f"'urgency' must be one of {sorted(URGENCY_RANK)}")
    trigger = data.get("trigger", "request")
    if trigger not in TRIGGERS:
        raise ValueError(f"'trigger' must be one of {list(TRIGGERS)}")
    language = data.get("language", "zh")
    if language not in ("zh", "en"):
        raise ValueError("'language' must be zh or en")
    age = data.get("child_age_months")
    if age is not None and (not isinstance(age, (int, float)) or isinstance(age, bool) or not 0 <= age <= 216):
        raise ValueError("'child_age_months' must be a number from 0 to 216")
    summary = data.get("summary") or []
    if not isinstance(summary, list) or not all(isinstance(s, dict) for s in summary):
        raise ValueError("'summary' must be a list of {question, answer} objects")
    summary = [
        {"question": str(s.get("question") or "")[:500], "answer": str(s.get("answer") or "")[:500]}
        for s in summary[-5:]
    ]
    channel = data.get("channel") or "unknown"
    phone = data.get("phone")
    if not isinstance(channel, str) or len(channel) > 64:
        raise ValueError("'channel' must be a short string")
    if phone is not None and (not isinstance(phone, str) or len(phone) > 32):
        raise ValueError("'phone' must be a short string")
    paused_at = data.get("paused_at")
    if paused_at is not None and not isinstance(paused_at, (int, float)):
        raise ValueError("'paused_at' must be a timestamp")
    return {
        "sender_id": sender, "channel": channel, "language": language, "urgency": urgency, "trigger": trigger,
        "child_age_months": age, "summary": summary, "phone": phone, "paused_at": paused_at,
    }


async def api_open_ticket(request: web.Request) -> web.Response:
    store, config, hub = request.app[STORE], request.app[CONFIG], request.app[HUB]
    try:
        data = validate_ticket_request(await request.json())
    except (ValueError, AttributeError) as error:
        return _json_error(400, "invalid_ticket", str(error))
    ticket, created = store.open_ticket(data)
    store.audit(None, "ticket_opened" if created else "ticket_reopened_request", ticket, data["trigger"])
    await hub.notify()
    return web.json_response({
        "ticket_id": ticket["id"],
        "created": created,
        "status": ticket["status"],
        "urgency": ticket["urgency"],
        "expected_wait_minutes": store.expected_wait_minutes(ticket["id"]),
        "hotline_number": config.hotline_number,
        "transcript_url": f"{config.public_url}/tickets/{ticket['id']}",
    }, status=201 if created else 200)


async def api_unanswered(request: web.Request) -> web.Response:
    try:
        data = await request.json()
        text = data["text"]
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        return _json_error(400, "invalid_question", "'text' must be a non-empty string")
    sender, language = data.get("sender_id"), data.get("language")
    request.app[STORE].add_unanswered(text.strip(), sender if isinstance(sender, str) else None,
                                      language if language in ("zh", "en") else None)
    return web.json_response({"ok": True}, status=201)


# -------------------------------------------------------------- background
async def poll_conversations(app: web.Application) -> None:
    """Copy users' messages of paused conversations into their tickets, so
    the console shows them live (Rasa logs them but runs no actions)."""
    store, bridge, hub, config = app[STORE], app[BRIDGE], app[HUB], app[CONFIG]
    failing: Dict[int, float] = {}
    while not hub.closing:
        changed = False
        for ticket in store.active_tickets():
            try:
                tracker = await bridge.tracker(ticket["sender_id"])
            except Exception as error:  # noqa: BLE001 - Rasa down or odd answers must not stop the poller
                if time.time() - failing.get(ticket["id"], 0) > 60:
                    log.warning("ticket %s: cannot read the conversation: %s", ticket["id"], error)
                    failing[ticket["id"]] = time.time()
                continue
            new = user_messages_after(tracker.get("events") or [], ticket["seen_until"])
            for message in new:
                store.add_message(ticket["id"], "user", message["text"], at=message["at"])
            if new:
                store.advance_seen(ticket["id"], max(m["at"] for m in new))
                changed = True
        if changed:
            await hub.notify()
        await asyncio.sleep(config.poll_seconds)


# ----------------------------------------------------------------- factory
ROUTES = [
    ("GET", "/health", health),
    ("GET", "/login", login_form),
    ("POST", "/login", login),
    ("POST", "/logout", logout),
    ("GET", "/", queue_page),
    ("GET", "/queue", queue_data),
    ("GET", "/events", queue_events),
    ("GET", "/static/{name}", static_file),
    ("GET", "/tickets/{ticket_id}", ticket_page),
    ("GET", "/tickets/{ticket_id}/data", ticket_data),
    ("GET", "/tickets/{ticket_id}/transcript", ticket_transcript),
    ("GET", "/tickets/{ticket_id}/stream", ticket_stream),
    ("POST", "/tickets/{ticket_id}/claim", claim),
    ("POST", "/tickets/{ticket_id}/release", release),
    ("POST", "/tickets/{ticket_id}/reply", reply),
    ("POST", "/tickets/{ticket_id}/notes", add_note),
    ("POST", "/tickets/{ticket_id}/resolve", resolve),
    ("POST", "/tickets/{ticket_id}/reveal-phone", reveal_phone),
    ("POST", "/tickets/{ticket_id}/callbacks/{callback_id}/done", callback_done),
    ("GET", "/dashboard", dashboard_page),
    ("GET", "/dashboard/data", dashboard_data),
    ("GET", "/audit", audit_page),
    ("GET", "/audit/data", audit_data),
    ("POST", "/api/tickets", api_open_ticket),
    ("POST", "/api/unanswered", api_unanswered),
]


def create_app(config: Optional[HotlineConfig] = None, *, poll: bool = True) -> web.Application:
    """The hotline application (`poll=False` skips the tracker poller)."""
    config = config or HotlineConfig.from_env()
    app = web.Application(middlewares=[security_headers, authenticate], client_max_size=64 * 1024)
    app[CONFIG] = config
    app[HUB] = Hub()
    app[FAILURES] = {}
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)

    async def on_startup(app: web.Application) -> None:
        app[STORE] = Store(config.db_path)
        app[HTTP] = aiohttp.ClientSession()
        app[BRIDGE] = Bridge(config, app[HTTP])
        if poll:
            app[POLLER] = asyncio.create_task(poll_conversations(app))

    async def on_shutdown(app: web.Application) -> None:
        await app[HUB].close()

    async def on_cleanup(app: web.Application) -> None:
        if POLLER in app:
            app[POLLER].cancel()
            try:
                await app[POLLER]
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        await app[HTTP].close()
        app[STORE].close()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app
