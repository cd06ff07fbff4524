from __future__ import annotations

import pytest

from hotline.app import create_app
from hotline.config import HotlineConfig
from hotline.store import Store
from tests.hotline.helpers import API_TOKEN, PASSWORD, SMS_SECRET, FakeRasa, SmsGateway, Staff


@pytest.fixture
async def neighbours(aiohttp_server):
    """A fake Rasa tracker API and an SMS gateway on loopback."""
    rasa, sms = FakeRasa(), SmsGateway()
    rasa_server = await aiohttp_server(rasa.app())
    sms_server = await aiohttp_server(sms.app())
    return {"rasa": rasa, "sms": sms, "rasa_url": str(rasa_server.make_url("")).rstrip("/"),
            "sms_url": str(sms_server.make_url("/sms"))}


@pytest.fixture
def config(tmp_path, neighbours):
    return HotlineConfig(
        db_path=str(tmp_path / "hotline.db"),
        api_token=API_TOKEN,
        rasa_url=neighbours["rasa_url"],
        rasa_token=neighbours["rasa"].token,
        rasa_tracker_db=str(tmp_path / "rasa_tracker.db"),
        sms_gateway_url=neighbours["sms_url"],
        sms_secret=SMS_SECRET,
        poll_seconds=0.1,
    )


@pytest.fixture
def accounts(config):
    store = Store(config.db_path)
    store.create_user("wang", PASSWORD, "worker", "王芳")
    store.create_user("li", PASSWORD, "worker", "李强")
    store.create_user("boss", PASSWORD, "supervisor", "张主任")
    store.close()


@pytest.fixture
async def hotline(aiohttp_server, config, accounts):
    app = create_app(config)
    server = await aiohttp_server(app)
    return server


@pytest.fixture
async def staff(hotline):
    """Factory of signed-in staff clients (closed at the end)."""
    clients = []

    async def make(username: str) -> Staff:
        client = Staff(hotline.make_url("/"))
        clients.append(client)
        response = await client.login(username)
        assert response.status == 303, await response.text()
        return client

    yield make
    for client in clients:
        await client.close()
