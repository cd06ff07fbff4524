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


# ------------------------------------------------------------ real stack
import hashlib  # noqa: E402
import hmac  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from dataclasses import dataclass, field, replace  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Dict, Iterator, List  # noqa: E402


class Receiver:
    """A loopback HTTP server that records JSON POSTs (Rasa's callback channel)."""

    def __init__(self) -> None:
        self.messages: List[Dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                body = json.loads(raw or b"null")
                expected = "sha256=" + hmac.new(SMS_SECRET.encode(), raw, hashlib.sha256).hexdigest()
                receiver.messages.append({
                    "path": self.path, "body": body,
                    "signed": hmac.compare_digest(expected, self.headers.get("X-Signature") or ""),
                    "key": self.headers.get("Idempotency-Key"),
                })
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def to(self, recipient: str) -> List[Dict]:
        """Messages Rasa's callback channel sent to a recipient."""
        return [m["body"] for m in self.messages if m["path"] == "/bot" and m["body"].get("recipient_id") == recipient]

    def sms_to(self, phone: str) -> List[Dict]:
        """SMS the gateway received for a phone (with signature check and key)."""
        return [m for m in self.messages if m["path"] == "/sms" and m["body"].get("to") == phone]

    def close(self) -> None:
        self.server.shutdown()


@dataclass
class HotlineStack:
    rasa_url: str
    rasa_token: str
    hotline_url: str
    callback: Receiver
    var_dir: Path
    env: Dict[str, str] = field(default_factory=dict)

    @property
    def rest(self) -> str:
        return f"{self.rasa_url}/webhooks/rest/webhook"


@pytest.fixture(scope="session")
def hotline_stack(tmp_path_factory) -> Iterator[HotlineStack]:
    """Hotline service (`python -m hotline serve`), action server and Rasa
    (trained model, our channels plus Rasa's `callback` channel pointing at a
    loopback receiver), each a real process on a free loopback port."""
    from launcher.model import latest_model
    from launcher.processes import ROOT, Ports, base_environment, stack
    from launcher.supervisor import Supervisor, free_port

    model = latest_model()
    if model is None and os.environ.get("HOTLINE_TEST_MODEL"):
        model = Path(os.environ["HOTLINE_TEST_MODEL"])  # while iterating on a machine shared with others
    if model is None:
        pytest.fail("No trained model for the current inputs: run `make train` (make test does).")
    var_dir = tmp_path_factory.mktemp("hotline-var")
    callback = Receiver()
    credentials = var_dir / "credentials.yml"
    credentials.write_text(
        "bot.channels.rest.ValidatedRestInput: {}\n"
        "bot.channels.webchat.WebChatInput:\n"
        f"  outbox: {var_dir / 'webchat_outbox.db'}\n"
        "bot.channels.sms.SmsInput: {}\n"
        "callback:\n"
        f"  url: {callback.url}/bot\n",
        encoding="utf-8",
    )
    hotline_port = free_port()
    ports = Ports.free(hotline=hotline_port)
    secrets = {"RASA_AUTH_TOKEN": "stack-rasa-token", "HOTLINE_API_TOKEN": API_TOKEN}
    env = base_environment(ports, secrets, var_dir)
    env.update({
        "HOTLINE_URL": f"http://127.0.0.1:{hotline_port}",
        "HOTLINE_DB": str(var_dir / "hotline.db"),
        "HOTLINE_POLL_SECONDS": "0.5",
        "HOTLINE_NUMBER": "12320",
        "REMINDERS_URL": "",
        "SMS_GATEWAY_URL": f"{callback.url}/sms",
        "SMS_WEBHOOK_SECRET": SMS_SECRET,
    })
    for username, role in (("boss", "supervisor"), ("wang", "worker"), ("li", "worker")):
        subprocess.run(
            [sys.executable, "-m", "hotline", "create-admin" if role == "supervisor" else "create-user",
             "--username", username] + ([] if role == "supervisor" else ["--role", role]),
            cwd=ROOT, env={**os.environ, **env, "HOTLINE_ADMIN_PASSWORD": PASSWORD}, check=True,
            stdout=subprocess.DEVNULL,
        )
    specs = []
    for spec in stack(model, ports, secrets, var_dir):
        if spec.name == "hotline":
            specs.append(spec)
        elif spec.name in ("actions", "rasa"):
            argv = [str(credentials) if arg == "bot/credentials.yml" else arg for arg in spec.argv]
            specs.append(replace(spec, argv=argv))
    with Supervisor(specs, env, var_dir / "log"):
        yield HotlineStack(
            rasa_url=f"http://127.0.0.1:{ports.rasa}",
            rasa_token=secrets["RASA_AUTH_TOKEN"],
            hotline_url=f"http://127.0.0.1:{hotline_port}",
            callback=callback,
            var_dir=var_dir,
            env=env,
        )
    callback.close()
