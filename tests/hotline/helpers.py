"""Loopback stand-ins for the hotline's neighbours, and a signed-in staff client."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from typing import Any, Dict, List, Optional

import aiohttp
from aiohttp import web
from yarl import URL

API_TOKEN = "test-hotline-token"
SMS_SECRET = "test-sms-secret"
PASSWORD = "correct horse battery"


class FakeRasa:
    """Rasa's tracker API as the hotline uses it: trackers and appended events."""

    def __init__(self, token: str = "rasa-token") -> None:
        self.token = token
        self.trackers: Dict[str, Dict[str, Any]] = {}
        self.appended: List[Dict[str, Any]] = []
        self.fail = False

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/conversations/{sender}/tracker", self.get_tracker)
        app.router.add_post("/conversations/{sender}/tracker/events", self.post_events)
        return app

    def _check(self, request: web.Request) -> None:
        if request.query.get("token") != self.token:
            raise web.HTTPUnauthorized()
        if self.fail:
            raise web.HTTPServiceUnavailable()

    def add_user_message(self, sender: str, text: str, at: Optional[float] = None) -> None:
        tracker = self.trackers.setdefault(sender, {"sender_id": sender, "events": [], "paused": True})
        tracker["events"].append({"event": "user", "text": text, "timestamp": at or time.time(),
                                  "parse_data": {"intent": {"name": "ask_question"}}})

    async def get_tracker(self, request: web.Request) -> web.Response:
        self._check(request)
        sender = request.match_info["sender"]
        return web.json_response(self.trackers.get(sender, {"sender_id": sender, "events": [], "paused": False}))

    async def post_events(self, request: web.Request) -> web.Response:
        self._check(request)
        body = await request.json()
        sender = request.match_info["sender"]
        self.appended.append({"sender": sender, "query": dict(request.query), "events": body})
        tracker = self.trackers.setdefault(sender, {"sender_id": sender, "events": [], "paused": True})
        for event in body:
            event.setdefault("timestamp", time.time())
            tracker["events"].append(event)
            if event["event"] == "resume":
                tracker["paused"] = False
        return web.json_response(tracker)


class SmsGateway:
    """An SMS gateway that checks the X-Signature HMAC and remembers messages."""

    def __init__(self, secret: str = SMS_SECRET) -> None:
        self.secret = secret
        self.received: List[Dict[str, Any]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/sms", self.receive)
        return app

    async def receive(self, request: web.Request) -> web.Response:
        raw = await request.read()
        expected = "sha256=" + hmac.new(self.secret.encode(), raw, hashlib.sha256).hexdigest()
        valid = hmac.compare_digest(expected, request.headers.get("X-Signature", ""))
        self.received.append({"body": json.loads(raw), "valid": valid,
                              "key": request.headers.get("Idempotency-Key")})
        return web.json_response({"ok": valid}, status=200 if valid else 401)


class Staff:
    """A browser-like client of the console: cookies and the CSRF token."""

    def __init__(self, base: URL) -> None:
        self.base = base
        self.session = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[base]),
        )
        self.csrf: Optional[str] = None

    def url(self, path: str) -> URL:
        return self.base.join(URL(path))

    async def login(self, username: str, password: str = PASSWORD) -> aiohttp.ClientResponse:
        async with self.session.get(self.url("/login")) as response:
            page = await response.text()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        response = await self.session.post(
            self.url("/login"), data={"username": username, "password": password, "csrf_token": token},
            allow_redirects=False,
        )
        if response.status == 303:
            async with self.session.get(self.url("/")) as page_response:
                self.csrf = re.search(r'name="csrf-token" content="([^"]+)"', await page_response.text()).group(1)
        return response

    async def get(self, path: str) -> aiohttp.ClientResponse:
        response = await self.session.get(self.url(path), allow_redirects=False)
        await response.read()
        return response

    async def post(self, path: str, body: Optional[Dict[str, Any]] = None, csrf: Optional[str] = "auto",
                   headers: Optional[Dict[str, str]] = None) -> aiohttp.ClientResponse:
        headers = dict(headers or {})
        if csrf == "auto":
            csrf = self.csrf
        if csrf is not None:
            headers["X-CSRF-Token"] = csrf
        response = await self.session.post(self.url(path), json=body or {}, headers=headers, allow_redirects=False)
        await response.read()
        return response

    async def close(self) -> None:
        await self.session.close()


async def open_ticket(base: URL, **fields: Any) -> Dict[str, Any]:
    body = {"sender_id": "family-1", "channel": "webchat", "language": "zh", "urgency": "normal",
            "trigger": "request", "summary": [{"question": "宝宝发烧怎么办", "answer": "..."}], **fields}
    async with aiohttp.ClientSession() as session:
        async with session.post(base.join(URL("/api/tickets")), json=body,
                                headers={"Authorization": f"Bearer {API_TOKEN}"}) as response:
            assert response.status in (200, 201), await response.text()
            return await response.json()


async def wait_for(predicate, timeout: float = 5.0, interval: float = 0.05):
    """Poll an (async or plain) predicate until truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)
