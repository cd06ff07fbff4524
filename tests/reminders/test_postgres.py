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


def _drop_connections(pg_url: str) -> int:
    """Terminate every other session on the database, as a PostgreSQL restart does to its clients."""
    import sqlalchemy as sa
    admin = sa.create_engine(pg_url, future=True, poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        n = conn.execute(sa.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                 "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    admin.dispose()
    return n


def test_store_reconnects_after_its_connections_were_dropped(pg_store, pg_url):
    # regression: pooled connections died with the server and the next transaction failed
    now = dt.datetime.now(UTC)
    pg_store.bulk_create(_families(3, (now - dt.timedelta(days=70)).date()), now)
    assert pg_store.ping()
    assert _drop_connections(pg_url) >= 1
    assert len(pg_store.claim_batch("w", now, dt.timedelta(seconds=30), 10)) == 3


@pytest.mark.asyncio
async def test_sweep_retries_outcome_writes_while_the_database_is_away(pg_store, gateway, rasa, monkeypatch):
    # regression: a batch handed to the gateway whose outcome write failed was sent again after the lease
    import sqlalchemy as sa

    from reminders.clock import SystemClock
    from reminders.delivery import Deliverer
    from reminders.http import LeanHTTPClient
    from reminders.metrics import Metrics
    from reminders.sweep import Sweeper

    from .conftest import SECRET

    now = dt.datetime.now(UTC)
    pg_store.bulk_create(_families(5, (now - dt.timedelta(days=70)).date()), now)
    real, calls = pg_store.complete, []

    def complete_after_two_failures(results, at):
        calls.append(at)
        if len(calls) <= 2:
            raise sa.exc.OperationalError("UPDATE reminders", {}, Exception("server closed the connection"))
        return real(results, at)

    monkeypatch.setattr(pg_store, "complete", complete_after_two_failures)
    session = LeanHTTPClient(limit=4)
    sweeper = Sweeper(pg_store, Deliverer(session, rasa.url, None, gateway.url + "/sms", SECRET), SystemClock(),
                      Metrics(), "w", lease=dt.timedelta(seconds=30), extend_horizons=False)
    try:
        assert await sweeper.sweep() == 5
    finally:
        await session.close()
    assert len(calls) == 3
    assert pg_store.counts_by_status()["sent"] == 5 and pg_store.counts_by_status()["claimed"] == 0
    assert len(gateway.requests) == 5 and not rasa.requests


def test_complete_writes_every_outcome_with_one_statement_each(pg_store):
    # PostgreSQL writes a batch's outcomes as UPDATE .. FROM unnest(arrays): check each kind of outcome
    now = dt.datetime.now(UTC)
    pg_store.bulk_create(_families(6, (now - dt.timedelta(days=70)).date()), now)
    rows = sorted(pg_store.claim_batch("w", now, dt.timedelta(seconds=30), 10), key=lambda r: r["id"])
    assert len(rows) == 6
    later = now + dt.timedelta(hours=1)
    outcomes = [dict(outcome="sent", escalate=True), dict(outcome="sent"),
                dict(outcome="retry", next_at=later, error="HTTP 503"), dict(outcome="failed", error="HTTP 400"),
                dict(outcome="defer", next_at=later), dict(outcome="cancel", error=None)]
    results = [{"id": r["id"], "token": r["claim_token"], **o} for r, o in zip(rows, outcomes)]
    results.append({"id": rows[0]["id"], "token": "stale-token", "outcome": "failed", "error": "late"})
    pg_store.complete(results, now)
    got = {r["id"]: r for r in pg_store.list_reminders(limit=1000)}
    sent, plain, retry, failed, defer, cancel = (got[r["id"]] for r in rows)
    assert sent["status"] == "sent" and sent["escalate_at"] and sent["attempts"] == 1 and not sent["last_error"]
    assert plain["status"] == "sent" and plain["escalate_at"] is None
    assert retry["status"] == "pending" and retry["attempts"] == 1 and retry["last_error"] == "HTTP 503"
    assert dt.datetime.fromisoformat(retry["next_attempt_at"]) == later       # stored as UTC, read back aware
    assert failed["status"] == "failed" and failed["last_error"] == "HTTP 400"
    assert defer["status"] == "pending" and defer["attempts"] == 0
    assert dt.datetime.fromisoformat(defer["next_attempt_at"]) == later
    assert cancel["status"] == "cancelled" and cancel["last_error"] is None
    assert all(r["claimed_by"] is None and r["lease_expires_at"] is None for r in (sent, retry, failed, defer, cancel))


def test_claim_reads_due_rows_from_an_ordered_index(pg_store, pg_url):
    # regression: the claim fetched and sorted the whole due backlog for every batch of rows
    import sqlalchemy as sa

    from reminders.store import DUE_INDEX

    now = dt.datetime.now(UTC)
    pg_store.bulk_create(_families(50, (now - dt.timedelta(days=70)).date()), now)
    claims = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "SKIP LOCKED" in statement:
            claims.append((statement, parameters))

    sa.event.listen(pg_store.engine, "before_cursor_execute", capture)
    try:
        assert len(pg_store.claim_batch("w", now, dt.timedelta(seconds=30), 10)) == 10
    finally:
        sa.event.remove(pg_store.engine, "before_cursor_execute", capture)
    raw = pg_store.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("SET enable_sort = off")     # a plan that can avoid sorting must avoid it
        cur.execute("EXPLAIN " + claims[0][0], claims[0][1])
        plan = "\n".join(r[0] for r in cur.fetchall())
    finally:
        raw.close()
    assert DUE_INDEX in plan and "Sort" not in plan, plan

    # databases of older versions get the index at the next start
    with pg_store.engine.begin() as conn:
        conn.exec_driver_sql(f"DROP INDEX {DUE_INDEX}")
    Store(pg_url).close()
    assert DUE_INDEX in {i["name"] for i in sa.inspect(pg_store.engine).get_indexes("reminders")}
