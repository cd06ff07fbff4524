"""Hotline service benchmark: ticket API latency, queue read with many open
tickets, live-queue (SSE) delay, and claim races between many workers.

    nice .venv/bin/python bench/hotline_bench.py [--tickets 1000] [--workers 20]

Runs the real app on a loopback port with a fresh SQLite file (Rasa is not
needed: nothing here talks to it). Prints one JSON object.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from hotline.app import create_app
from hotline.config import HotlineConfig
from hotline.store import Store
from launcher.supervisor import free_port

TOKEN = "bench-token"
PASSWORD = "bench password 123"


def pct(values, q):
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 2)


async def login(base: str, username: str) -> aiohttp.ClientSession:
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[base]))
    async with session.get(f"{base}/login") as r:
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', await r.text()).group(1)
    async with session.post(f"{base}/login", data={"username": username, "password": PASSWORD, "csrf_token": csrf},
                            allow_redirects=False) as r:
        assert r.status == 303
    async with session.get(f"{base}/") as r:
        session.headers["X-CSRF-Token"] = re.search(r'name="csrf-token" content="([^"]+)"', await r.text()).group(1)
    return session


async def main(tickets: int, workers: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="hotline-bench-"))
    config = HotlineConfig(db_path=str(tmp / "hotline.db"), api_token=TOKEN, rasa_url="http://127.0.0.1:9", poll_seconds=3600)
    store = Store(config.db_path)
    for i in range(workers):
        store.create_user(f"w{i}", PASSWORD, "worker")
    store.close()
    runner = web.AppRunner(create_app(config, poll=False))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    result = {"tickets": tickets, "workers": workers}
    api = aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        # 1. Ticket API, one at a time.
        latencies = []
        for i in range(tickets):
            body = {"sender_id": f"s{i}", "channel": "webchat", "urgency": "urgent" if i % 10 == 0 else "normal",
                    "summary": [{"question": "宝宝发烧怎么办", "answer": "先量体温"}] * 3}
            t0 = time.perf_counter()
            async with api.post(f"{base}/api/tickets", json=body) as r:
                assert r.status == 201
            latencies.append(time.perf_counter() - t0)
        result["open_ticket_ms"] = {"p50": pct(latencies, 0.5), "p95": pct(latencies, 0.95)}

        sessions = [await login(base, f"w{i}") for i in range(workers)]
        # 2. Queue read with every ticket open.
        latencies = []
        for _ in range(50):
            t0 = time.perf_counter()
            async with sessions[0].get(f"{base}/queue") as r:
                data = await r.json()
            latencies.append(time.perf_counter() - t0)
        assert len(data["tickets"]) == tickets
        result["queue_read_ms"] = {"open_tickets": tickets, "p50": pct(latencies, 0.5), "p95": pct(latencies, 0.95)}

        # 3. Live queue: time from POST /api/tickets to the SSE frame.
        delays = []
        async with sessions[0].get(f"{base}/events") as stream:
            buffer = b""

            async def next_frame():
                nonlocal buffer
                while b"\n\n" not in buffer:
                    buffer += await stream.content.readany()
                frame, buffer = buffer.split(b"\n\n", 1)
                for line in frame.split(b"\n"):
                    if line.startswith(b"data: "):
                        return json.loads(line[6:])
                return await next_frame()

            first = await next_frame()  # initial snapshot
            result["sse_snapshot_bytes"] = len(json.dumps(first, ensure_ascii=False).encode())
            for i in range(20):
                t0 = time.perf_counter()
                async with api.post(f"{base}/api/tickets", json={"sender_id": f"live{i}"}) as r:
                    assert r.status == 201
                while True:
                    frame = await next_frame()
                    if any(t["sender"] == f"live{i}" for t in frame["tickets"]):
                        break
                delays.append(time.perf_counter() - t0)
        result["sse_delay_ms"] = {"p50": pct(delays, 0.5), "p95": pct(delays, 0.95)}

        # 4. Claim race: every worker tries every ticket of the first 200.
        targets = list(range(1, min(tickets, 200) + 1))
        wins = {}

        async def claim(session, ticket_id):
            async with session.post(f"{base}/tickets/{ticket_id}/claim") as r:
                return ticket_id, r.status

        t0 = time.perf_counter()
        outcomes = await asyncio.gather(*(claim(s, t) for t in targets for s in sessions))
        elapsed = time.perf_counter() - t0
        for ticket_id, status in outcomes:
            if status == 200:
                wins[ticket_id] = wins.get(ticket_id, 0) + 1
        result["claim_race"] = {
            "attempts": len(outcomes), "seconds": round(elapsed, 2),
            "attempts_per_second": round(len(outcomes) / elapsed),
            "tickets_claimed_once": sum(1 for t in targets if wins.get(t) == 1),
            "tickets_claimed_twice_or_more": sum(1 for t in targets if wins.get(t, 0) > 1),
            "tickets_unclaimed": sum(1 for t in targets if t not in wins),
        }
        for s in sessions:
            await s.close()
    finally:
        await api.close()
        await runner.cleanup()
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.tickets, args.workers)), indent=2))
