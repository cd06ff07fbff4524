"""PostgreSQL code paths (FOR UPDATE SKIP LOCKED claim, ON CONFLICT DO NOTHING, row locks on bookings).

Each test gets a scratch database on the scale-out engines (the `engines` fixture: skipped, with the
reason listed, on a machine without PostgreSQL).
"""
import datetime as dt
import threading

import pytest

from reminders.store import Store, metadata

from .conftest import AUTH, child_payload, create_child, sweep

UTC = dt.timezone.utc


@pytest.fixture
def pg_url(engines):
    return engines.fresh_database("reminders_test")


@pytest.fixture
def pg_store(pg_url):
    st = Store(pg_url, send_time=dt.time(0, 0))
    metadata.create_all(st.engine)
    yield st
    st.close()


def _families(n, birth):
    return [{"consent": {"by": "t", "text_version": "t"},
             "child": {"nickname": f"c{i}", "birth_date": birth, "language": "zh", "timezone": "Asia/Shanghai",
                       "region": "CN"},
             "caregivers": [{"phone": f"139{i:08d}", "quiet_start": "00:00", "quiet_end": "00:00"},
                            {"chat_sender_id": f"s{i}", "quiet_start": "00:00", "quiet_end": "00:00"}]}
            for i in range(n)]


def test_concurrent_workers_claim_disjoint_rows(pg_store):
    now = dt.datetime.now(UTC)
    pg_store.bulk_create(_families(400, (now - dt.timedelta(days=70)).date()), now)
    due = pg_store.counts_by_status()["pending"]
    claimed = {0: [], 1: [], 2: []}
    errors = []

    def worker(i):
        try:
            while True:
                batch = pg_store.claim_batch(f"w{i}", now, dt.timedelta(minutes=5), 25)
                if not batch:
                    return
                claimed[i].extend(r["id"] for r in batch)
                pg_store.complete([{"id": r["id"], "token": r["claim_token"], "outcome": "sent",
                                    "escalate": True} for r in batch], now)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    ids = [x for v in claimed.values() for x in v]
    assert len(ids) == len(set(ids)) == 400            # one due message per child, none claimed twice
    assert sum(1 for v in claimed.values() if v) >= 2   # the work really was shared
    assert pg_store.counts_by_status()["sent"] == 400 and due > 400
    # escalation rows (ON CONFLICT DO NOTHING): idempotent
    later = now + dt.timedelta(hours=25)
    assert pg_store.escalate_due(later) == 400
    assert pg_store.escalate_due(later) == 0


def test_expired_lease_is_reclaimed(pg_store):
    now = dt.datetime.now(UTC)
    pg_store.bulk_create(_families(3, (now - dt.timedelta(days=70)).date()), now)
    first = pg_store.claim_batch("dead-worker", now, dt.timedelta(seconds=30), 10)
    assert len(first) == 3
    assert pg_store.claim_batch("w2", now + dt.timedelta(seconds=10), dt.timedelta(seconds=30), 10) == []
    again = pg_store.claim_batch("w2", now + dt.timedelta(seconds=31), dt.timedelta(seconds=30), 10)
    assert {r["id"] for r in again} == {r["id"] for r in first}
    assert {r["idempotency_key"] for r in again} == {r["idempotency_key"] for r in first}
    # the dead worker's late completion no longer matches the claim token
    pg_store.complete([{"id": r["id"], "token": r["claim_token"], "outcome": "failed", "error": "x"} for r in first],
                      now)
    assert pg_store.counts_by_status()["failed"] == 0


@pytest.mark.asyncio
async def test_api_end_to_end_on_postgres(make_client, rasa, gateway, clock, pg_url):
    c = await make_client(database_url=pg_url)
    child = await create_child(c)
    assert await sweep(c) == 1 and len(rasa.requests) == 1
    act = await (await c.post("/activities", json={"title": "课", "place": "社区", "starts_at": "2026-03-10T09:30:00",
                                                   "capacity": 1}, headers=AUTH)).json()
    r = await c.post(f"/activities/{act['id']}/bookings", json={"caregiver_id": child["caregivers"][0]["id"]},
                     headers=AUTH)
    assert r.status == 201
    r = await c.post(f"/activities/{act['id']}/bookings", json={"caregiver_id": child["caregivers"][1]["id"]},
                     headers=AUTH)
    assert r.status == 409
    clock.advance(hours=25)
    await sweep(c)
    assert len(gateway.requests) == 1 and "第一联系人尚未确认" in gateway.requests[0]["json"]["text"]
    r = await c.delete(f"/families/{child['family_id']}", headers=AUTH)
    assert r.status == 200
