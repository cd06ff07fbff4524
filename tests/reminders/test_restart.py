"""Restart safety: the real service process is SIGKILLed while delivering 10,000 due reminders,
restarted, and the loopback gateway must end up with every reminder (none lost); every duplicate
it sees carries the same idempotency key."""
import asyncio
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestServer

from reminders.delivery import verify_signature
from reminders.store import Store, reminders

pytestmark = pytest.mark.asyncio
N = 10_000
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECRET = "restart-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def populate(db_url: str) -> set:
    """N families with an SMS caregiver and no quiet hours; each has exactly one message due now."""
    st = Store(db_url, send_time=dt.time(0, 0))
    now = dt.datetime.now(dt.timezone.utc)
    birth = (now - dt.timedelta(days=70)).date()
    fams = [{"consent": {"by": "test", "text_version": "t"},
             "child": {"nickname": f"c{i}", "birth_date": birth, "language": "zh", "timezone": "Asia/Shanghai",
                       "region": "CN"},
             "caregivers": [{"role": "parent", "phone": f"139{i:08d}", "quiet_start": "00:00", "quiet_end": "00:00"}]}
            for i in range(N)]
    for k in range(0, N, 2000):
        st.bulk_create(fams[k:k + 2000], now)
    with st.engine.connect() as conn:
        keys = {r[0] for r in conn.execute(sa.select(reminders.c.idempotency_key).where(
            reminders.c.next_attempt_at <= now + dt.timedelta(seconds=1)))}
    st.close()
    return keys


def start_service(env, port, log):
    return subprocess.Popen([sys.executable, "-m", "reminders", "serve", "--port", str(port), "--log-level", "WARNING"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


async def wait_for(cond, timeout, what):
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timeout waiting for {what}")
        await asyncio.sleep(0.05)


async def test_sigkill_mid_delivery_loses_nothing(tmp_path):
    db = f"sqlite:///{tmp_path}/restart.db"
    expected = await asyncio.get_running_loop().run_in_executor(None, populate, db)
    assert len(expected) == N

    seen = []                     # (idempotency key, reminder id)
    bad_sig = []

    async def gateway(request):
        raw = await request.read()
        if not verify_signature(raw, request.headers.get("X-Signature"), SECRET):
            bad_sig.append(raw)
            return web.json_response({"error": "signature"}, status=401)
        body = json.loads(raw)
        assert request.headers["Idempotency-Key"] == body["idempotency_key"]
        await asyncio.sleep(0.002)
        seen.append((body["idempotency_key"], body["reminder_id"]))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/sms", gateway)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    port = free_port()
    env = dict(os.environ, DATABASE_URL=db, SMS_GATEWAY_URL=str(server.make_url("/sms")),
               SMS_WEBHOOK_SECRET=SECRET, REMINDERS_API_TOKEN="t", SWEEP_INTERVAL="0.5", CLAIM_LEASE="3s",
               SWEEP_BATCH_SIZE="200", DELIVERY_CONCURRENCY="50", RASA_URL="http://127.0.0.1:9",
               PYTHONPATH=ROOT)
    log = open(tmp_path / "service.log", "wb")
    proc = start_service(env, port, log)
    proc2 = None
    try:
        await wait_for(lambda: len(seen) >= 3000, 90, "3000 deliveries")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        at_kill = len(seen)
        assert at_kill < N, "killed too late to test anything"
        with sa.create_engine(db).connect() as conn:
            in_flight = conn.execute(sa.text("SELECT count(*) FROM reminders WHERE status='claimed'")).scalar()
            marked = conn.execute(sa.text("SELECT count(*) FROM reminders WHERE status='sent'")).scalar()
        # really killed in the middle: rows claimed but not finished, or delivered but not marked sent
        assert in_flight > 0 or marked < at_kill
        assert marked <= at_kill

        proc2 = start_service(env, port, log)
        await wait_for(lambda: len({k for k, _ in seen}) >= N, 120, "all deliveries after restart")
        # every row is eventually marked sent by the new worker
        def all_sent():
            with sa.create_engine(db).connect() as conn:
                return conn.execute(sa.text("SELECT count(*) FROM reminders WHERE status='sent'")).scalar()
        await wait_for(lambda: all_sent() == N, 60, "rows marked sent")
    finally:
        for p in (proc, proc2):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        log.close()
        await server.close()

    keys = [k for k, _ in seen]
    assert not bad_sig
    assert set(keys) == expected                   # none lost, nothing unexpected
    by_id = defaultdict(set)
    for k, rid in seen:
        by_id[rid].add(k)
    assert len(by_id) == N
    assert all(len(ks) == 1 for ks in by_id.values())   # duplicates carry the same idempotency key
    dups = len(keys) - len(set(keys))
    print(f"\nrestart: {at_kill} delivered before SIGKILL, {in_flight} rows in flight, "
          f"{dups} duplicate deliveries (same key), {len(keys)} requests total")
