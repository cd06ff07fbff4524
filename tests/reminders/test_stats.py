"""Optional child community and GET /stats (reminder counts, children overdue by community)."""
import datetime as dt
import sqlite3

import pytest

from reminders.store import NO_COMMUNITY, Store

from .conftest import AUTH, child_payload, create_child, store

pytestmark = pytest.mark.asyncio

# T0 is 2026-03-02 in Shanghai. Born 2026-02-20 with nothing recorded: BCG-1, HepB-1 and the
# newborn home visit are overdue (3 items). Born 2026-03-02: the birth doses are due today, not overdue.
OVERDUE_BIRTH, TODAY_BIRTH = "2026-02-20", "2026-03-02"


async def _stats(c):
    r = await c.get("/stats", headers=AUTH)
    body = await r.json()
    assert r.status == 200, body
    return body


async def _overdue_ids(c, child_id):
    items = (await (await c.get(f"/children/{child_id}/upcoming", headers=AUTH)).json())["items"]
    return sorted(i["item_id"] for i in items if i["status"] == "overdue")


async def test_overdue_counts_by_community(make_client):
    c = await make_client()
    a1 = await create_child(c, birth=OVERDUE_BIRTH, community="幸福社区")
    await create_child(c, birth=TODAY_BIRTH, community="幸福社区")
    b1 = await create_child(c, birth=OVERDUE_BIRTH, community="  Sunshine  ")
    await create_child(c, birth=TODAY_BIRTH)                     # no community
    assert await _overdue_ids(c, a1["id"]) == ["bcg-1", "hepb-1", "visit-newborn"]

    body = await _stats(c)
    assert body["overdue_by_community"] == {
        "幸福社区": {"children": 2, "overdue_children": 1, "overdue_items": 3},
        "Sunshine": {"children": 1, "overdue_children": 1, "overdue_items": 3},
        NO_COMMUNITY: {"children": 1, "overdue_children": 0, "overdue_items": 0},
    }
    assert body["reminders"] == store(c).counts_by_status() and body["reminders"]["pending"] > 0

    # Recording doses is reflected at once (same schedule computation as /upcoming).
    for item in ("bcg-1", "hepb-1"):
        r = await c.post(f"/children/{b1['id']}/doses", json={"item_id": item, "given_on": OVERDUE_BIRTH}, headers=AUTH)
        assert r.status == 201, await r.json()
    assert await _overdue_ids(c, b1["id"]) == ["visit-newborn"]
    assert (await _stats(c))["overdue_by_community"]["Sunshine"] == {
        "children": 1, "overdue_children": 1, "overdue_items": 1}

    # Bearer token like the rest of the API.
    assert (await c.get("/stats")).status == 401


async def test_community_round_trips_in_child_and_export(make_client):
    c = await make_client()
    child = await create_child(c, community=" 幸福社区 ")
    assert child["community"] == "幸福社区"
    got = await (await c.get(f"/children/{child['id']}", headers=AUTH)).json()
    assert got["community"] == "幸福社区"
    exp = await (await c.get(f"/families/{child['family_id']}/export", headers=AUTH)).json()
    assert [k["community"] for k in exp["children"]] == ["幸福社区"]
    # Optional: absent or empty is stored as null.
    for payload in (child_payload(), child_payload(community="")):
        other = await create_child(c, payload=payload)
        assert other["community"] is None


@pytest.mark.parametrize("value, code", [(123, "invalid_type"), (["幸福社区"], "invalid_type"),
                                         ({"name": "x"}, "invalid_type"), ("x" * 101, "too_long")])
async def test_bad_community_is_400_and_stores_nothing(make_client, value, code):
    c = await make_client()
    r = await c.post("/children", json=child_payload(community=value), headers=AUTH)
    body = await r.json()
    assert r.status == 400 and body["error"]["code"] == code, body
    assert "community" in body["error"]["message"]
    assert store(c).table_counts()["children"] == 0
    assert (await c.post("/children", json=child_payload(community="x" * 100), headers=AUTH)).status == 201


async def test_existing_database_gets_the_column(tmp_path):
    """A SQLite file from before the community column is migrated at startup, idempotently."""
    path = tmp_path / "old.db"
    Store(f"sqlite:///{path}").close()
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE children DROP COLUMN community")
    db.execute("INSERT INTO families (id, consent_by, consent_at, consent_version, created_at)"
               " VALUES ('f1', 'x', '2026-01-01 00:00:00.000000', 'v', '2026-01-01 00:00:00.000000')")
    db.execute("INSERT INTO children (id, family_id, nickname, birth_date, language, timezone, region, ics_token,"
               " created_at) VALUES ('c1', 'f1', 'n', '2026-02-20', 'zh', 'Asia/Shanghai', 'CN', 't',"
               " '2026-01-01 00:00:00.000000')")
    db.commit()
    assert "community" not in [r[1] for r in db.execute("PRAGMA table_info(children)")]
    db.close()
    for _ in range(2):
        s = Store(f"sqlite:///{path}")
        try:
            assert s.get_child("c1")["community"] is None
        finally:
            s.close()
    s = Store(f"sqlite:///{path}")
    try:
        got = s.overdue_by_community(dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.timezone.utc))
    finally:
        s.close()
    assert got == {NO_COMMUNITY: {"children": 1, "overdue_children": 1, "overdue_items": 3}}
