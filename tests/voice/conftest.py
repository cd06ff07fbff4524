"""A real Sanic server on loopback mounting one connector's blueprint, with a
fake bot (records every UserMessage, answers from a script through the
connector's CollectingOutputChannel), and a loopback SMS gateway."""
from __future__ import annotations

import json
import socket
import uuid
from typing import Any, Callable, Dict, List, Optional

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Sanic


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeBot:
    """Stands in for Rasa: `answer(text)` gives the replies for one user message."""

    def __init__(self) -> None:
        self.received: List[UserMessage] = []
        self.answer: Callable[[str], List[Dict[str, Any]]] = lambda text: [{"text": f"您说的是：{text}"}]

    async def on_new_message(self, message: UserMessage) -> None:
        self.received.append(message)
        for reply in self.answer(message.text):
            if reply.get("buttons"):
                await message.output_channel.send_text_with_buttons(
                    message.sender_id, reply["text"], reply["buttons"]
                )
            else:
                await message.output_channel.send_text_message(message.sender_id, reply["text"])

    @property
    def texts(self) -> List[str]:
        return [m.text for m in self.received]


class ConnectorServer:
    def __init__(self, channel: InputChannel, bot: FakeBot) -> None:
        self.channel = channel
        self.bot = bot
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/webhooks/{channel.name()}"
        self._server = None

    async def start(self) -> None:
        Sanic.test_mode = True
        app = Sanic(f"voice_test_{uuid.uuid4().hex[:8]}")
        app.blueprint(self.channel.blueprint(self.bot.on_new_message), url_prefix=f"/webhooks/{self.channel.name()}")
        self._server = await app.create_server(
            host="127.0.0.1", port=self.port, return_asyncio_server=True, access_log=False
        )
        await self._server.startup()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
def bot() -> FakeBot:
    return FakeBot()


@pytest_asyncio.fixture
async def serve(bot):
    """`await serve(channel)` -> a running ConnectorServer (stopped after the test)."""
    servers: List[ConnectorServer] = []

    async def start(channel: InputChannel) -> ConnectorServer:
        server = ConnectorServer(channel, bot)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


class GatewayRecorder:
    """A loopback SMS gateway recording what it is sent; answers from a status script."""

    def __init__(self) -> None:
        self.requests: List[Dict[str, Any]] = []
        self.script: List[int] = []
        self.server: Optional[TestServer] = None

    async def handler(self, request: web.Request) -> web.Response:
        raw = await request.read()
        status = self.script.pop(0) if self.script else 200
        self.requests.append({"headers": dict(request.headers), "raw": raw, "json": json.loads(raw), "status": status})
        return web.json_response({"ok": status < 300}, status=status)

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/sms"))


@pytest_asyncio.fixture
async def sms_gateway():
    recorder = GatewayRecorder()
    app = web.Application()
    app.router.add_post("/sms", recorder.handler)
    recorder.server = TestServer(app, host="127.0.0.1")
    await recorder.server.start_server()
    yield recorder
    await recorder.server.close()
