"""Fixtures: loopback SMS gateway and fake Rasa HTTP API (real aiohttp servers), app factory
with a FakeClock and a real SQLite file in a tmp dir."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any, Dict, List, Optional

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from reminders.api import SWEEPER_KEY, STORE_KEY, create_app
from reminders.clock import FakeClock
from reminders.config import Config
from reminders.delivery import sign

UTC = dt.timezone.utc
TOKEN = "test-token"
SECRET = "test-secret"
# 2026-03-02 10:00 in Shanghai (02:00 UTC) - a Monday, outside quiet hours
T0 = dt.datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


class Recorder:
    """A loopback HTTP server that records requests and answers from a status script."""

    def __init__(self) -> None:
        self.requests: List[Dict[str, Any]] = []
        self.script: List[int] = []        # statuses to return first, then `default`
        self.default = 200
        self.delay = 0.0
        self.server: Optional[TestServer] = None

    async def handler(self, request: web.Request) -> web.Response:
        raw = await request.read()
        status = self.script.pop(0) if self.script else self.default
        self.requests.append({"path": request.path, "query": dict(request.query), "headers": dict(request.headers),
                              "raw": raw, "json": json.loads(raw) if raw else None, "status": status})
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.json_response({"ok": status < 300}, status=status)

    @property
    def url(self) -> str:
        return str(self.server.make_url(""))

    def ok(self) -> List[Dict[str, Any]]:
        return [r for r in self.requests if r["status"] < 300]


async def _start_recorder() -> Recorder:
    rec = Recorder()
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", rec.handler)
    rec.server = TestServer(app, host="127.0.0.1")
    await rec.server.start_server()
    return rec


@pytest_asyncio.fixture
async def gateway():
    rec = await _start_recorder()
    yield rec
    await rec.server.close()


@pytest_asyncio.fixture
async def rasa():
    rec = await _start_recorder()
    yield rec
    await rec.server.close()


@pytest.fixture
def clock():
    return FakeClock(T0)


@pytest_asyncio.fixture
async def make_client(tmp_path, clock, gateway, rasa):
    clients: List[TestClient] = []

    async def factory(**overrides) -> TestClient:
        cfg = Config.from_env(env={}, database_url=f"sqlite:///{tmp_path}/r{len(clients)}.db", api_token=TOKEN,
                              rasa_url=rasa.url, rasa_auth_token="rasa-tok",
                              sms_gateway_url=gateway.url + "/sms", sms_webhook_secret=SECRET,
                              sweep_enabled=False, backoff_base=60.0, backoff_cap=600.0, max_attempts=4,
                              http_timeout=2.0, public_url="http://testserver")
        for k, v in overrides.items():
            setattr(cfg, k, v)
        client = TestClient(TestServer(create_app(cfg, clock=clock), host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield factory
    for c in clients:
        await c.close()


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def child_payload(birth="2026-01-02", caregivers=None, **child_kw) -> Dict[str, Any]:
    return {"consent": {"given": True, "by": "妈妈", "text_version": "2026-01", "channel": "chat"},
            "child": {"nickname": "小明", "birth_date": birth, **child_kw},
            "caregivers": caregivers if caregivers is not None else [
                {"role": "mother", "chat": {"sender_id": "mom-1", "output_channel": "wechat"}},
                {"role": "grandma", "phone": "139 0000 1111"}]}


async def create_child(client: TestClient, payload=None, **kw) -> Dict[str, Any]:
    resp = await client.post("/children", json=payload or child_payload(**kw), headers=AUTH)
    body = await resp.json()
    assert resp.status == 201, body
    return body


async def sweep(client: TestClient) -> int:
    return await client.server.app[SWEEPER_KEY].sweep()


def store(client: TestClient):
    return client.server.app[STORE_KEY]


def signed(payload: Dict[str, Any], secret: str = SECRET):
    raw = json.dumps(payload, ensure_ascii=False).encode()
    return raw, {"X-Signature": sign(raw, secret), "Content-Type": "application/json"}
