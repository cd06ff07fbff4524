"""Storage (SQLAlchemy 1.4 Core): SQLite file by default, PostgreSQL via ``DATABASE_URL``.

All datetimes are stored as UTC and returned time-zone aware; naive datetimes are rejected.
Methods are synchronous (call them through :meth:`Store.run` from async code); on SQLite
every transaction is ``BEGIN IMMEDIATE`` (one writer at a time, also across processes).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import json
import os
import secrets
import uuid
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import sqlalchemy as sa
from sqlalchemy import event

from . import planner
from .planner import CaregiverInfo, PlannedReminder
from .schedule import OVERDUE, ComputedItem, compute_schedule, load_schedule

UTC = dt.timezone.utc

# reminder statuses
PENDING, CLAIMED, SENT, FAILED, ACKNOWLEDGED, CANCELLED = (
    "pending", "claimed", "sent", "failed", "acknowledged", "cancelled")
STATUSES = (PENDING, CLAIMED, SENT, FAILED, ACKNOWLEDGED, CANCELLED)

# key of children without a community in the overdue-by-community stats
NO_COMMUNITY = "未填写/unknown"


class UTCDateTime(sa.types.TypeDecorator):
    """Aware datetimes in, aware (UTC) datetimes out; stored as naive UTC."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused (use aware datetimes)")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


metadata = sa.MetaData()

families = sa.Table(
    "families", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("consent_by", sa.String(200), nullable=False),
    sa.Column("consent_at", UTCDateTime, nullable=False),
    sa.Column("consent_version", sa.String(50), nullable=False),
    sa.Column("consent_channel", sa.String(50)),
    sa.Column("created_at", UTCDateTime, nullable=False),
)
children = sa.Table(
    "children", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("family_id", sa.String(32), sa.ForeignKey("families.id"), nullable=False, index=True),
    sa.Column("nickname", sa.String(100), nullable=False),
    sa.Column("birth_date", sa.Date, nullable=False),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("region", sa.String(8), nullable=False),
    sa.Column("community", sa.String(100)),                        # optional, for overdue-by-community stats
    sa.Column("ics_token", sa.String(64), nullable=False),
    sa.Column("planned_until", sa.Date, index=True),              # reminder rows exist up to this local date
    sa.Column("created_at", UTCDateTime, nullable=False),
)
caregivers = sa.Table(
    "caregivers", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("family_id", sa.String(32), sa.ForeignKey("families.id"), nullable=False, index=True),
    sa.Column("name", sa.String(100)),
    sa.Column("role", sa.String(50), nullable=False),
    sa.Column("escalation_order", sa.Integer, nullable=False),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("chat_sender_id", sa.String(200), index=True),
    sa.Column("chat_channel", sa.String(100)),
    sa.Column("phone", sa.String(20), index=True),
    sa.Column("preferred_channel", sa.String(10)),
    sa.Column("quiet_start", sa.String(5), nullable=False),
    sa.Column("quiet_end", sa.String(5), nullable=False),
    sa.Column("opted_out", sa.Boolean, nullable=False, default=False),
    sa.Column("opted_out_at", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
)
doses = sa.Table(
    "doses", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("child_id", sa.String(32), sa.ForeignKey("children.id"), nullable=False, index=True),
    sa.Column("item_id", sa.String(50), nullable=False),
    sa.Column("given_on", sa.Date, nullable=False),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("child_id", "item_id", name="uq_dose_child_item"),
)
activities = sa.Table(
    "activities", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("place", sa.String(200), nullable=False),
    sa.Column("starts_at", UTCDateTime, nullable=False, index=True),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("capacity", sa.Integer, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
)
bookings = sa.Table(
    "bookings", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("activity_id", sa.String(32), sa.ForeignKey("activities.id"), nullable=False, index=True),
    sa.Column("caregiver_id", sa.String(32), sa.ForeignKey("caregivers.id"), nullable=False, index=True),
    sa.Column("child_id", sa.String(32), sa.ForeignKey("children.id")),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("activity_id", "caregiver_id", name="uq_booking"),
)
reminders = sa.Table(
    "reminders", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(20), nullable=False),            # schedule | escalation | activity | reply
    sa.Column("child_id", sa.String(32), index=True),
    sa.Column("caregiver_id", sa.String(32), nullable=False, index=True),
    sa.Column("activity_id", sa.String(32)),
    sa.Column("channel", sa.String(10), nullable=False),          # chat | sms
    sa.Column("group_key", sa.String(120), index=True),
    sa.Column("local_date", sa.Date),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("items_json", sa.Text),                             # JSON [[item_id, due_iso], ...]
    sa.Column("due_at", UTCDateTime, nullable=False, index=True),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),    # when the row is next looked at
    sa.Column("status", sa.String(15), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("claimed_by", sa.String(100)),
    sa.Column("claim_token", sa.String(40)),
    sa.Column("lease_expires_at", UTCDateTime),
    sa.Column("idempotency_key", sa.String(160), nullable=False, unique=True),
    sa.Column("last_error", sa.Text),
    sa.Column("sent_at", UTCDateTime),
    sa.Column("escalate_at", UTCDateTime),                        # unacknowledged vaccination reminder: check then
    sa.Column("acked_at", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_reminders_status_next", "status", "next_attempt_at"),
    # partial: most rows never need an escalation check
    sa.Index("ix_reminders_escalate_at", "escalate_at", sqlite_where=sa.text("escalate_at IS NOT NULL"),
             postgresql_where=sa.text("escalate_at IS NOT NULL")),
)
confirmations = sa.Table(
    "pending_confirmations", metadata,
    sa.Column("caregiver_id", sa.String(32), primary_key=True),
    sa.Column("child_id", sa.String(32), nullable=False),
    sa.Column("items_json", sa.Text, nullable=False),             # JSON [item_id, ...]
    sa.Column("expires_at", UTCDateTime, nullable=False),
)


def new_id() -> str:
    return uuid.uuid4().hex


def _sqlite_dt(v: dt.datetime) -> str:
    """The exact text SQLAlchemy's SQLite DATETIME stores (naive UTC, microseconds always present)."""
    return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


_REMINDER_COLS = ("kind", "child_id", "caregiver_id", "activity_id", "channel", "group_key", "local_date", "body",
                  "items_json", "due_at", "next_attempt_at", "status", "attempts", "idempotency_key", "created_at",
                  "updated_at")
_REMINDER_INSERT = (f"INSERT INTO reminders ({', '.join(_REMINDER_COLS)}) "
                    f"VALUES ({', '.join('?' * len(_REMINDER_COLS))})")


def _reminder_tuple(p: PlannedReminder, now_s: str) -> tuple:
    due = _sqlite_dt(p.due_at)
    return (p.kind, p.child_id, p.caregiver_id, p.activity_id, p.channel, p.group_key,
            p.local_date.isoformat() if p.local_date else None, p.body, json.dumps(p.items), due, due, PENDING, 0,
            p.idempotency_key, now_s, now_s)


def is_transient(exc: BaseException) -> bool:
    """True for a database error worth retrying later: the server is unreachable or restarting, the
    connection was dropped, or (SQLite) the file is locked. Not for constraint or SQL errors."""
    return isinstance(exc, sa.exc.OperationalError) or (
        isinstance(exc, sa.exc.DBAPIError) and bool(exc.connection_invalidated))


# PostgreSQL: the due rows in claim order. ``claim_batch`` reads the first unlocked rows of this index;
# with ``ix_reminders_status_next`` alone, ``status IN (pending, claimed)`` spans two ranges of that
# index, so every claim fetched and sorted the whole due backlog (O(backlog) per batch).
DUE_INDEX = "ix_reminders_due"
DUE_INDEX_DDL = (f"CREATE INDEX IF NOT EXISTS {DUE_INDEX} ON reminders (next_attempt_at) "
                 f"WHERE status IN ('{PENDING}', '{CLAIMED}')")

# the per-row values each delivery outcome writes besides the row id and claim token
_OUTCOME_FIELDS: Dict[str, Tuple[str, ...]] = {
    "sent": (), "sent_esc": (), "retry": ("nxt", "err"), "failed": ("err",), "defer": ("nxt",), "cancel": ("err",)}
_OUTCOME_TYPES = {"rid": sa.Integer, "tok": sa.String, "nxt": UTCDateTime, "err": sa.Text}


def _pg_unnest(fields: Sequence[str]):
    """``unnest(CAST(:rid AS INTEGER[]), ...) AS outcomes(rid, ...)``: one array parameter per field (the
    statement text does not depend on the batch size, so SQLAlchemy compiles it once)."""
    from sqlalchemy.dialects.postgresql import ARRAY
    arrays = [sa.cast(sa.bindparam(f, type_=ARRAY(_OUTCOME_TYPES[f])), ARRAY(_OUTCOME_TYPES[f])) for f in fields]
    return sa.func.unnest(*arrays).table_valued(*fields).render_derived(name="outcomes").c


class NotFound(Exception):
    """An id that does not exist."""


class Conflict(Exception):
    """A request that conflicts with the stored state (e.g. activity full)."""


def _cg_info(r: Mapping) -> CaregiverInfo:
    return CaregiverInfo(
        id=r["id"], order=r["escalation_order"], language=r["language"],
        quiet_start=planner.parse_hhmm(r["quiet_start"]), quiet_end=planner.parse_hhmm(r["quiet_end"]),
        opted_out=bool(r["opted_out"]), chat_sender_id=r["chat_sender_id"], chat_channel=r["chat_channel"],
        phone=r["phone"], preferred_channel=r["preferred_channel"])


def _iso(v):
    if isinstance(v, (dt.datetime, dt.date)):
        return v.isoformat()
    return v


def row_dict(r) -> Dict[str, Any]:
    """A result row as a JSON-ready dict."""
    return {k: _iso(v) for k, v in dict(r._mapping).items()}


def prepare_bulk(families_data: Sequence[Mapping], now: dt.datetime, send_time: dt.time, horizon_days: int,
                 sqlite: bool = True) -> Dict[str, list]:
    """Pure and picklable: ids, rows and planned reminder rows for NEW consented families."""
    horizon = dt.timedelta(days=horizon_days)
    fam_rows, child_rows, cg_rows, rem_rows = [], [], [], []
    now_s = _sqlite_dt(now)
    for f in families_data:
        fid, cid = new_id(), new_id()
        ch = f["child"]
        fam_rows.append(dict(id=fid, consent_by=f["consent"]["by"], consent_at=now,
                             consent_version=f["consent"]["text_version"], consent_channel="import",
                             created_at=now))
        today = now.astimezone(planner.zone(ch["timezone"])).date()
        child_rows.append(dict(id=cid, family_id=fid, nickname=ch["nickname"], birth_date=ch["birth_date"],
                               language=ch["language"], timezone=ch["timezone"], region=ch["region"],
                               community=ch.get("community"),
                               ics_token=secrets.token_urlsafe(24), planned_until=today + horizon,
                               created_at=now))
        infos = []
        for i, c in enumerate(f["caregivers"]):
            row = dict(id=new_id(), family_id=fid, name=c.get("name"), role=c.get("role", "parent"),
                       escalation_order=i, language=c.get("language") or ch["language"],
                       timezone=ch["timezone"], chat_sender_id=c.get("chat_sender_id"),
                       chat_channel=c.get("chat_channel"), phone=c.get("phone"),
                       preferred_channel=c.get("preferred_channel"), quiet_start=c["quiet_start"],
                       quiet_end=c["quiet_end"], opted_out=False, opted_out_at=None, created_at=now)
            cg_rows.append(row)
            infos.append(_cg_info(row))
        sched = load_schedule(ch["region"])
        computed = compute_schedule(ch["birth_date"], sched, {}, today)
        planned = planner.plan_child(cid, ch["nickname"], ch["timezone"], ch["birth_date"], computed, infos,
                                     sched, now, send_time, until=today + horizon)
        if sqlite:
            rem_rows.extend(_reminder_tuple(p, now_s) for p in planned)
        else:
            rem_rows.extend(Store._row(p, now) for p in planned)
    return {"families": fam_rows, "children": child_rows, "caregivers": cg_rows, "reminders": rem_rows}


class Store:
    """Data access for the reminders service."""

    def __init__(self, database_url: str, send_time: dt.time = dt.time(9, 0),
                 escalate_after: dt.timedelta = dt.timedelta(hours=24),
                 activity_offsets: Sequence[dt.timedelta] = (dt.timedelta(days=1), dt.timedelta(hours=1)),
                 plan_horizon_days: int = 120):
        self.url = database_url
        self.horizon = dt.timedelta(days=plan_horizon_days)
        self.is_sqlite = database_url.startswith("sqlite")
        self.send_time = send_time
        self.escalate_after = escalate_after
        self.activity_offsets = tuple(activity_offsets)
        kw: Dict[str, Any] = {"future": True}
        if self.is_sqlite:
            path = database_url.split("///", 1)[-1]
            if path and path != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            kw["connect_args"] = {"check_same_thread": False, "timeout": 30}
            # SQLAlchemy 1.4 uses NullPool for SQLite files: every transaction would reopen the file
            # and every close would checkpoint the WAL. Keep connections open instead.
            if path in ("", ":memory:"):
                kw["poolclass"] = sa.pool.StaticPool      # one shared in-memory database
            else:
                kw["poolclass"] = sa.pool.QueuePool
                kw["pool_size"] = 4
        else:
            # A pooled connection dies with the server (restart, failover, idle kill): test it on
            # checkout (one round trip) so a restarted PostgreSQL costs no failed transaction.
            kw["pool_pre_ping"] = True
        self.engine = sa.create_engine(database_url, **kw)
        if self.is_sqlite:
            @event.listens_for(self.engine, "connect")
            def _connect(dbapi_conn, _rec):  # pragma: no cover - trivial
                dbapi_conn.isolation_level = None
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA cache_size=-65536")
                cur.execute("PRAGMA wal_autocheckpoint=10000")
                cur.close()

            @event.listens_for(self.engine, "begin")
            def _begin(conn):  # pragma: no cover - trivial
                conn.exec_driver_sql("BEGIN IMMEDIATE")
        metadata.create_all(self.engine)
        self._migrate()
        workers = 1 if self.is_sqlite else 8
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="db")

    def _migrate(self) -> None:
        """Idempotent additions to databases created by older versions (``create_all`` adds
        missing tables, never missing columns or indexes of existing tables)."""
        def columns() -> set:
            return {c["name"] for c in sa.inspect(self.engine).get_columns("children")}

        def indexes() -> set:
            return {i["name"] for i in sa.inspect(self.engine).get_indexes("reminders")}

        if "community" not in columns():
            self._apply_once("ALTER TABLE children ADD COLUMN community VARCHAR(100)", lambda: "community" in columns())
        if not self.is_sqlite and DUE_INDEX not in indexes():
            # Created here rather than in ``metadata``: SQLite would not use it (its planner cannot match
            # bound parameters to a partial index) and would only pay for maintaining it. A plain CREATE
            # INDEX blocks writes to the table while it builds, once, at the first start after an upgrade.
            self._apply_once(DUE_INDEX_DDL, lambda: DUE_INDEX in indexes())

    def _apply_once(self, ddl: str, done: Callable[[], bool]) -> None:
        """Run *ddl* unless another worker starting at the same moment did (*done* tells)."""
        try:
            with self.engine.begin() as conn:
                conn.exec_driver_sql(ddl)
        except sa.exc.DBAPIError:
            if not done():
                raise

    async def run(self, fn, *args, **kwargs):
        """Run a blocking store method in the DB thread (one thread on SQLite)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.engine.dispose()

    # ------------------------------------------------------------------ families / children
    def create_family(self, consent: Mapping, child: Mapping, cgs: Sequence[Mapping], now: dt.datetime,
                      doses_given: Sequence[Tuple[str, dt.date]] = ()) -> Dict[str, Any]:
        """Store a consented family with one child and its caregivers, then plan reminders.

        Inputs must be validated already (see ``api``). Returns ``{family_id, child_id, caregiver_ids}``.
        """
        fid, cid = new_id(), new_id()
        with self.engine.begin() as conn:
            conn.execute(families.insert().values(
                id=fid, consent_by=consent["by"], consent_at=now, consent_version=consent["text_version"],
                consent_channel=consent.get("channel"), created_at=now))
            conn.execute(children.insert().values(
                id=cid, family_id=fid, nickname=child["nickname"], birth_date=child["birth_date"],
                language=child["language"], timezone=child["timezone"], region=child["region"],
                community=child.get("community"), ics_token=secrets.token_urlsafe(24), created_at=now))
            cg_ids = [self._insert_caregiver(conn, fid, c, child, order=i, now=now) for i, c in enumerate(cgs)]
            for item_id, given_on in doses_given:
                conn.execute(doses.insert().values(child_id=cid, item_id=item_id, given_on=given_on,
                                                   source="api", recorded_at=now))
            self._replan(conn, cid, now)
        return {"family_id": fid, "child_id": cid, "caregiver_ids": cg_ids}

    def _insert_caregiver(self, conn, fid: str, c: Mapping, child: Mapping, order: int, now: dt.datetime) -> str:
        gid = new_id()
        conn.execute(caregivers.insert().values(
            id=gid, family_id=fid, name=c.get("name"), role=c.get("role", "parent"),
            escalation_order=c.get("order", order), language=c.get("language") or child["language"],
            timezone=c.get("timezone") or child["timezone"],
            chat_sender_id=c.get("chat_sender_id"), chat_channel=c.get("chat_channel"),
            phone=c.get("phone"), preferred_channel=c.get("preferred_channel"),
            quiet_start=c["quiet_start"], quiet_end=c["quiet_end"], opted_out=False, created_at=now))
        return gid

    def add_caregiver(self, child_id: str, c: Mapping, now: dt.datetime) -> str:
        with self.engine.begin() as conn:
            ch = self._child(conn, child_id)
            n = conn.execute(sa.select(sa.func.max(caregivers.c.escalation_order))
                             .where(caregivers.c.family_id == ch["family_id"])).scalar()
            gid = self._insert_caregiver(conn, ch["family_id"], c, ch, order=(n + 1 if n is not None else 0), now=now)
            for kid in self._family_child_ids(conn, ch["family_id"]):
                self._replan(conn, kid, now)
        return gid

    def _child(self, conn, child_id: str) -> Mapping:
        r = conn.execute(sa.select(children).where(children.c.id == child_id)).first()
        if r is None:
            raise NotFound(f"child {child_id}")
        return r._mapping

    def _family_child_ids(self, conn, fid: str) -> List[str]:
        return [r[0] for r in conn.execute(sa.select(children.c.id).where(children.c.family_id == fid))]

    def get_child(self, child_id: str) -> Dict[str, Any]:
        with self.engine.connect() as conn:
            ch = dict(self._child(conn, child_id))
            cgs = [row_dict(r) for r in conn.execute(
                sa.select(caregivers).where(caregivers.c.family_id == ch["family_id"])
                .order_by(caregivers.c.escalation_order))]
            fam = conn.execute(sa.select(families).where(families.c.id == ch["family_id"])).first()
        out = {k: _iso(v) for k, v in ch.items()}
        out["caregivers"] = cgs
        out["consent"] = {"by": fam.consent_by, "at": fam.consent_at.isoformat(), "text_version": fam.consent_version}
        return out

    def child_schedule(self, child_id: str, now: dt.datetime) -> Tuple[Dict[str, Any], List[ComputedItem]]:
        """The child row and its computed schedule as of *now* (in the child's time zone)."""
        with self.engine.connect() as conn:
            ch = dict(self._child(conn, child_id))
            given = self._given(conn, child_id)
        sched = load_schedule(ch["region"])
        today = now.astimezone(planner.zone(ch["timezone"])).date()
        return ch, compute_schedule(ch["birth_date"], sched, given, today)

    def _given(self, conn, child_id: str) -> Dict[str, dt.date]:
        return {r.item_id: r.given_on for r in conn.execute(
            sa.select(doses.c.item_id, doses.c.given_on).where(doses.c.child_id == child_id))}

    def list_doses(self, child_id: str) -> List[Dict[str, Any]]:
        with self.engine.connect() as conn:
            self._child(conn, child_id)
            return [row_dict(r) for r in conn.execute(
                sa.select(doses).where(doses.c.child_id == child_id).order_by(doses.c.given_on))]

    def record_dose(self, child_id: str, item_id: str, given_on: dt.date, source: str,
                    now: dt.datetime) -> Dict[str, Any]:
        """Record (or correct the date of) a dose, acknowledge reminders about it, replan."""
        with self.engine.begin() as conn:
            self._child(conn, child_id)
            existing = conn.execute(sa.select(doses.c.id).where(
                (doses.c.child_id == child_id) & (doses.c.item_id == item_id))).first()
            if existing:
                conn.execute(doses.update().where(doses.c.id == existing.id).values(
                    given_on=given_on, source=source, recorded_at=now))
                created = False
            else:
                conn.execute(doses.insert().values(child_id=child_id, item_id=item_id, given_on=given_on,
                                                   source=source, recorded_at=now))
                created = True
            # a dose given acknowledges the sent reminders that mentioned it
            for r in conn.execute(sa.select(reminders.c.id, reminders.c.items_json, reminders.c.group_key).where(
                    (reminders.c.child_id == child_id) & (reminders.c.status == SENT))).fetchall():
                if r.items_json and any(i[0] == item_id for i in json.loads(r.items_json)):
                    self._ack_groups(conn, [r.group_key], now)
            self._replan(conn, child_id, now)
        return {"child_id": child_id, "item_id": item_id, "given_on": given_on.isoformat(), "created": created}

    # ------------------------------------------------------------------ planning
    def _caregiver_infos(self, conn, fid: str) -> List[CaregiverInfo]:
        return [_cg_info(r._mapping) for r in conn.execute(
            sa.select(caregivers).where(caregivers.c.family_id == fid))]

    def _replan(self, conn, child_id: str, now: dt.datetime) -> Dict[str, int]:
        """Recompute a child's schedule reminder rows (idempotent; never duplicates)."""
        ch = self._child(conn, child_id)
        sched = load_schedule(ch["region"])
        tz = ch["timezone"]
        today = now.astimezone(planner.zone(tz)).date()
        computed = compute_schedule(ch["birth_date"], sched, self._given(conn, child_id), today)
        existing = conn.execute(sa.select(
            reminders.c.id, reminders.c.idempotency_key, reminders.c.status, reminders.c.items_json,
            reminders.c.body, reminders.c.due_at, reminders.c.attempts, reminders.c.caregiver_id).where(
            (reminders.c.child_id == child_id) & (reminders.c.kind == "schedule"))).fetchall()
        already = set()
        for r in existing:
            if r.status in (CLAIMED, SENT, ACKNOWLEDGED) and r.items_json:
                already.update((i, d) for i, d in json.loads(r.items_json))
        cg_infos = self._caregiver_infos(conn, ch["family_id"])
        until = today + self.horizon
        planned = planner.plan_child(child_id, ch["nickname"], tz, ch["birth_date"], computed, cg_infos,
                                     sched, now, self.send_time, already, until)
        conn.execute(children.update().where(children.c.id == child_id).values(planned_until=until))
        by_key = {r.idempotency_key: r for r in existing}
        new_rows, stats = [], {"inserted": 0, "updated": 0, "cancelled": 0}
        keys = set()
        for p in planned:
            keys.add(p.idempotency_key)
            r = by_key.get(p.idempotency_key)
            items_json = json.dumps(p.items)
            if r is None:
                new_rows.append(self._row(p, now))
            elif r.status == PENDING and (r.items_json != items_json or r.body != p.body or r.due_at != p.due_at):
                vals = dict(items_json=items_json, body=p.body, due_at=p.due_at, updated_at=now)
                if r.attempts == 0:
                    vals["next_attempt_at"] = p.due_at
                conn.execute(reminders.update().where(reminders.c.id == r.id).values(**vals))
                stats["updated"] += 1
            elif r.status == CANCELLED:
                conn.execute(reminders.update().where(reminders.c.id == r.id).values(
                    status=PENDING, items_json=items_json, body=p.body, due_at=p.due_at, next_attempt_at=p.due_at,
                    attempts=0, last_error=None, updated_at=now))
                stats["updated"] += 1
        stale = [r.id for r in existing if r.status == PENDING and r.idempotency_key not in keys]
        if stale:
            conn.execute(reminders.update().where(reminders.c.id.in_(stale)).values(
                status=CANCELLED, last_error="replanned", updated_at=now))
            stats["cancelled"] = len(stale)
        if new_rows:
            conn.execute(reminders.insert(), new_rows)
            stats["inserted"] = len(new_rows)
        return stats

    @staticmethod
    def _row(p: PlannedReminder, now: dt.datetime) -> Dict[str, Any]:
        return dict(kind=p.kind, child_id=p.child_id, caregiver_id=p.caregiver_id, activity_id=p.activity_id,
                    channel=p.channel, group_key=p.group_key, local_date=p.local_date, body=p.body,
                    items_json=json.dumps(p.items), due_at=p.due_at, next_attempt_at=p.due_at, status=PENDING,
                    attempts=0, idempotency_key=p.idempotency_key, created_at=now, updated_at=now,
                    claimed_by=None, claim_token=None, lease_expires_at=None, last_error=None,
                    sent_at=None, acked_at=None, escalate_at=None)

    def replan_child(self, child_id: str, now: dt.datetime) -> Dict[str, int]:
        with self.engine.begin() as conn:
            return self._replan(conn, child_id, now)

    def bulk_create(self, families_data: Sequence[Mapping], now: dt.datetime) -> int:
        """Fast path for many NEW families (benchmark/import): batched inserts, same planner.

        Each entry: ``{consent, child, caregivers}`` already validated. Returns reminder rows inserted.
        The pure part (:func:`prepare_bulk`) can run in worker processes; see ``bench/reminders_bench.py``.
        """
        return self.insert_prepared(prepare_bulk(families_data, now, self.send_time, self.horizon.days,
                                                 self.is_sqlite))

    def insert_prepared(self, prepared: Mapping[str, list]) -> int:
        """Insert the output of :func:`prepare_bulk` in one transaction; returns reminder rows."""
        rem_rows = prepared["reminders"]
        with self.engine.begin() as conn:
            for table, rows in ((families, prepared["families"]), (children, prepared["children"]),
                                (caregivers, prepared["caregivers"])):
                if rows:
                    self._fast_insert(conn, table, rows)
            if rem_rows and self.is_sqlite:
                conn.exec_driver_sql(_REMINDER_INSERT, rem_rows)
            elif rem_rows:
                conn.execute(reminders.insert(), rem_rows)
        return len(rem_rows)

    def _fast_insert(self, conn, table: sa.Table, rows: List[Dict[str, Any]]) -> None:
        """executemany; on SQLite straight through the DB-API with values converted exactly as the
        column types would (UTC ``YYYY-MM-DD HH:MM:SS.ffffff`` strings, ISO dates, 0/1)."""
        if not self.is_sqlite:
            conn.execute(table.insert(), rows)
            return
        cols = [c for c in table.columns if c.name in rows[0]]
        conv = []
        for c in cols:
            if isinstance(c.type, UTCDateTime):
                conv.append(lambda v: None if v is None else v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"))
            elif isinstance(c.type, sa.Date):
                conv.append(lambda v: None if v is None else v.isoformat())
            elif isinstance(c.type, sa.Boolean):
                conv.append(lambda v: None if v is None else int(bool(v)))
            else:
                conv.append(None)
        names = [c.name for c in cols]
        sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        params = [tuple(v if f is None else f(v) for f, v in zip(conv, (r[n] for n in names))) for r in rows]
        conn.exec_driver_sql(sql, params)

    def extend_horizons(self, now: dt.datetime, limit: int = 200) -> int:
        """Replan children whose planned horizon ends within half a horizon (idempotent).

        Called by the sweep job; returns the number of children replanned.
        """
        edge = now.date() + self.horizon / 2
        with self.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(sa.select(children.c.id).where(
                children.c.planned_until < edge).order_by(children.c.planned_until).limit(limit))]
        for k in range(0, len(ids), 50):
            with self.engine.begin() as conn:
                for cid in ids[k:k + 50]:
                    self._replan(conn, cid, now)
        return len(ids)

    # ------------------------------------------------------------------ sweep: claim / complete
    def claim_batch(self, worker: str, now: dt.datetime, lease: dt.timedelta, limit: int) -> List[Dict[str, Any]]:
        """Atomically claim up to *limit* due rows (pending, or claimed with an expired lease).

        PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` so several workers share the table; it reads
        the first unlocked rows of the partial index ``DUE_INDEX`` (cost independent of the backlog).
        SQLite: one atomic ``UPDATE ... WHERE id IN (SELECT ... LIMIT n)`` under BEGIN IMMEDIATE.
        The claim moves ``next_attempt_at`` to the lease expiry, so a dead worker's rows are
        claimed again once the lease has run out. Returns rows joined with caregiver contacts.
        """
        token = uuid.uuid4().hex
        expires = now + lease
        with self.engine.begin() as conn:
            due = (sa.select(reminders.c.id)
                   .where(reminders.c.status.in_((PENDING, CLAIMED)) & (reminders.c.next_attempt_at <= now))
                   .order_by(reminders.c.next_attempt_at).limit(limit))
            if not self.is_sqlite:
                due = due.with_for_update(skip_locked=True)
                ids = [r[0] for r in conn.execute(due)]
                if not ids:
                    return []
                conn.execute(reminders.update().where(reminders.c.id.in_(ids)).values(
                    status=CLAIMED, claimed_by=worker, claim_token=token, lease_expires_at=expires,
                    next_attempt_at=expires, updated_at=now))
            else:
                # one atomic statement; RETURNING (SQLite >= 3.35) gives the claimed ids
                fmt = "%Y-%m-%d %H:%M:%S.%f"
                ids = [r[0] for r in conn.exec_driver_sql(
                    "UPDATE reminders SET status=?, claimed_by=?, claim_token=?, lease_expires_at=?, "
                    "next_attempt_at=?, updated_at=? WHERE id IN (SELECT id FROM reminders "
                    "WHERE status IN (?, ?) AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?) RETURNING id",
                    (CLAIMED, worker, token, expires.astimezone(UTC).strftime(fmt), expires.astimezone(UTC).strftime(fmt),
                     now.astimezone(UTC).strftime(fmt), PENDING, CLAIMED, now.astimezone(UTC).strftime(fmt),
                     limit)).fetchall()]
                if not ids:
                    return []
            j = reminders.join(caregivers, caregivers.c.id == reminders.c.caregiver_id)
            rows = conn.execute(sa.select(
                reminders.c.id, reminders.c.kind, reminders.c.child_id, reminders.c.caregiver_id,
                reminders.c.channel, reminders.c.group_key, reminders.c.body, reminders.c.items_json,
                reminders.c.attempts, reminders.c.idempotency_key, reminders.c.claim_token,
                reminders.c.activity_id, reminders.c.due_at,
                caregivers.c.chat_sender_id, caregivers.c.chat_channel, caregivers.c.phone,
                caregivers.c.opted_out, caregivers.c.quiet_start, caregivers.c.quiet_end,
                caregivers.c.timezone, caregivers.c.escalation_order, caregivers.c.language,
                caregivers.c.family_id).select_from(j).where(reminders.c.id.in_(ids))).fetchall()
            out = [dict(r._mapping) for r in rows]
            esc_groups = {r["group_key"] for r in out if r["kind"] == "escalation"}
            if esc_groups:
                acked = {r[0] for r in conn.execute(sa.select(reminders.c.group_key).where(
                    reminders.c.group_key.in_(esc_groups) & (reminders.c.status == ACKNOWLEDGED)))}
                for r in out:
                    r["group_acked"] = r["group_key"] in acked
        return out

    def complete(self, results: Sequence[Mapping], now: dt.datetime) -> None:
        """Apply delivery outcomes in one transaction (one statement per outcome).

        Each result: ``{id, token, outcome: sent|retry|failed|defer|cancel, error?, next_at?, escalate?}``.
        Only rows still holding the same claim token are updated. A sent schedule/escalation row gets
        ``escalate_at = now + ESCALATE_AFTER``; :meth:`escalate_due` handles it then unless acknowledged.
        SQLite: one executemany per outcome (in-process, cheap). PostgreSQL: one ``UPDATE .. FROM
        unnest(<arrays>)`` per outcome; an executemany would cost the server one parsed and planned UPDATE
        per row (and a VALUES list a fresh SQL compilation per batch).
        """
        if not results:
            return
        groups: Dict[str, List[Dict[str, Any]]] = {}
        for res in results:
            o = res["outcome"]
            if o not in ("sent", "retry", "failed", "defer", "cancel"):
                raise ValueError(o)
            params = {"rid": res["id"], "tok": res["token"]}
            if "nxt" in _OUTCOME_FIELDS[o]:
                params["nxt"] = res["next_at"]
            if "err" in _OUTCOME_FIELDS[o]:
                params["err"] = res.get("error")
            if o == "sent" and res.get("escalate"):
                o = "sent_esc"
            groups.setdefault(o, []).append(params)
        with self.engine.begin() as conn:
            for o, params in groups.items():
                fields = ("rid", "tok") + _OUTCOME_FIELDS[o]
                if self.is_sqlite:
                    conn.execute(self._outcome_update(o, {f: sa.bindparam(f) for f in fields}, now), params)
                else:
                    arrays = {f: [p[f] for p in params] for f in fields}
                    conn.execute(self._outcome_update(o, _pg_unnest(fields), now), arrays)

    def _outcome_update(self, outcome: str, src: Mapping[str, Any], now: dt.datetime):
        """The UPDATE for one outcome; *src* gives ``rid``, ``tok`` (and ``nxt``/``err``) as bind parameters
        (executemany) or as columns of the unnested arrays (one statement for the whole batch)."""
        cond = (reminders.c.id == src["rid"]) & (reminders.c.claim_token == src["tok"])
        clear = dict(claimed_by=None, lease_expires_at=None, updated_at=now)
        sent = dict(status=SENT, sent_at=now, attempts=reminders.c.attempts + 1, last_error=None, **clear)
        if outcome == "sent":
            values = sent
        elif outcome == "sent_esc":
            values = dict(escalate_at=now + self.escalate_after, **sent)
        elif outcome == "retry":
            values = dict(status=PENDING, attempts=reminders.c.attempts + 1, next_attempt_at=src["nxt"],
                          last_error=src["err"], **clear)
        elif outcome == "failed":
            values = dict(status=FAILED, attempts=reminders.c.attempts + 1, last_error=src["err"], **clear)
        elif outcome == "defer":
            values = dict(status=PENDING, next_attempt_at=src["nxt"], **clear)
        else:
            values = dict(status=CANCELLED, last_error=src["err"], **clear)
        return reminders.update().where(cond).values(**values)

    def escalate_due(self, now: dt.datetime, limit: int = 500) -> int:
        """Vaccination reminders sent ESCALATE_AFTER ago and still unacknowledged: queue the same
        reminder for the next caregiver in escalation order (due now, moved out of their quiet hours).
        Returns the number of escalation rows created."""
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(
                reminders.c.id, reminders.c.status, reminders.c.child_id, reminders.c.caregiver_id,
                reminders.c.items_json, reminders.c.group_key, reminders.c.local_date).where(
                reminders.c.escalate_at <= now).order_by(reminders.c.escalate_at).limit(limit)).fetchall()
            if not rows:
                return 0
            conn.execute(reminders.update().where(reminders.c.id.in_([r.id for r in rows])).values(escalate_at=None))
            rows = [r for r in rows if r.status == SENT and r.child_id and r.items_json]
            kid_ids = list({r.child_id for r in rows})
            kids = {ch.id: ch for ch in conn.execute(sa.select(children).where(children.c.id.in_(kid_ids)))} if kid_ids else {}
            fam_ids = list({ch.family_id for ch in kids.values()})
            fam_cgs: Dict[str, List[CaregiverInfo]] = {}
            if fam_ids:
                for c in conn.execute(sa.select(caregivers).where(caregivers.c.family_id.in_(fam_ids))):
                    fam_cgs.setdefault(c.family_id, []).append(_cg_info(c._mapping))
            new_rows = []
            for r in rows:
                ch = kids.get(r.child_id)
                if ch is None:
                    continue
                cgs = fam_cgs.get(ch.family_id, [])
                cur = next((c for c in cgs if c.id == r.caregiver_id), None)
                nxt = planner.next_caregiver(cgs, cur.order) if cur is not None else None
                if nxt is None:
                    continue
                sched = load_schedule(ch.region)
                vacc = [(i, d) for i, d in json.loads(r.items_json) if i in sched.by_id and sched.by_id[i].kind == "vaccine"]
                if not vacc:
                    continue
                today = now.astimezone(planner.zone(ch.timezone)).date()
                comp = [ComputedItem(sched.by_id[i], "due", dt.date.fromisoformat(d)) for i, d in vacc]
                body = planner.render_message(ch.nickname, nxt.language, r.local_date or today, today, comp, sched,
                                              nxt.channel(), escalation=True)
                due = planner.next_allowed(now, ch.timezone, nxt.quiet_start, nxt.quiet_end)
                p = PlannedReminder(kind="escalation", child_id=r.child_id, caregiver_id=nxt.id, channel=nxt.channel(),
                                    local_date=r.local_date, due_at=due, body=body, items=tuple(map(tuple, vacc)),
                                    idempotency_key=f"esc:{r.group_key}:{nxt.id}", group_key=r.group_key)
                new_rows.append(self._row(p, now))
            return self._insert_ignore(conn, new_rows)

    def _insert_ignore(self, conn, rows: List[Dict[str, Any]]) -> int:
        if not rows:
            return 0
        if self.is_sqlite:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        stmt = dialect_insert(reminders).on_conflict_do_nothing(index_elements=["idempotency_key"])
        return conn.execute(stmt, rows).rowcount

    def add_reply(self, caregiver_id: str, channel: str, body: str, key: str, now: dt.datetime) -> None:
        """Queue a direct reply (confirmation question, opt-out confirmation) due now.

        Replies answer a message the caregiver has just sent, so they are exempt from quiet
        hours and from the opted-out flag (the opt-out confirmation must reach them).
        """
        p = PlannedReminder(kind="reply", child_id=None, caregiver_id=caregiver_id, channel=channel,
                            local_date=None, due_at=now, body=body, items=(), idempotency_key=key,
                            group_key=None)
        with self.engine.begin() as conn:
            self._insert_ignore(conn, [self._row(p, now)])

    # ------------------------------------------------------------------ acknowledgements / opt-out
    def _ack_groups(self, conn, groups: Iterable[str], now: dt.datetime) -> int:
        groups = [g for g in set(groups) if g]
        if not groups:
            return 0
        n = conn.execute(reminders.update().where(
            reminders.c.group_key.in_(groups) & (reminders.c.status == SENT)).values(
            status=ACKNOWLEDGED, acked_at=now, escalate_at=None, updated_at=now)).rowcount
        conn.execute(reminders.update().where(
            reminders.c.group_key.in_(groups) & (reminders.c.kind == "escalation")
            & (reminders.c.status == PENDING)).values(status=CANCELLED, last_error="acknowledged", updated_at=now))
        return n

    def acknowledge(self, caregiver_id: str, now: dt.datetime, within: dt.timedelta = dt.timedelta(days=7)) -> int:
        """Acknowledge the reminders recently sent to a caregiver (and cancel pending escalations)."""
        with self.engine.begin() as conn:
            groups = [r[0] for r in conn.execute(sa.select(reminders.c.group_key).where(
                (reminders.c.caregiver_id == caregiver_id) & (reminders.c.status == SENT)
                & (reminders.c.kind != "reply") & (reminders.c.sent_at >= now - within)))]
            return self._ack_groups(conn, groups, now)

    def last_vaccine_reminder(self, caregiver_id: str, now: dt.datetime,
                              within: dt.timedelta = dt.timedelta(days=30)) -> Optional[Dict[str, Any]]:
        """The most recent sent/acknowledged schedule reminder with vaccine items for a caregiver."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(reminders.c.id, reminders.c.child_id, reminders.c.items_json).where(
                (reminders.c.caregiver_id == caregiver_id) & reminders.c.status.in_((SENT, ACKNOWLEDGED))
                & reminders.c.kind.in_(("schedule", "escalation")) & (reminders.c.sent_at >= now - within))
                .order_by(reminders.c.sent_at.desc(), reminders.c.id.desc()).limit(5)).fetchall()
            for r in rows:
                ch = conn.execute(sa.select(children.c.region).where(children.c.id == r.child_id)).first()
                if ch is None:
                    continue
                sched = load_schedule(ch.region)
                vacc = [i for i, _ in json.loads(r.items_json or "[]") if i in sched.by_id and sched.by_id[i].kind == "vaccine"]
                given = self._given(conn, r.child_id)
                vacc = [i for i in vacc if i not in given]
                if vacc:
                    return {"reminder_id": r.id, "child_id": r.child_id, "items": vacc}
        return None

    def set_confirmation(self, caregiver_id: str, child_id: str, items: Sequence[str], expires: dt.datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(confirmations.delete().where(confirmations.c.caregiver_id == caregiver_id))
            conn.execute(confirmations.insert().values(caregiver_id=caregiver_id, child_id=child_id,
                                                       items_json=json.dumps(list(items)), expires_at=expires))

    def pop_confirmation(self, caregiver_id: str, now: dt.datetime) -> Optional[Dict[str, Any]]:
        with self.engine.begin() as conn:
            r = conn.execute(sa.select(confirmations).where(confirmations.c.caregiver_id == caregiver_id)).first()
            if r is None:
                return None
            conn.execute(confirmations.delete().where(confirmations.c.caregiver_id == caregiver_id))
            if r.expires_at < now:
                return None
            return {"child_id": r.child_id, "items": json.loads(r.items_json)}

    def opt_out(self, caregiver_id: str, now: dt.datetime) -> Dict[str, Any]:
        """Stop everything for a caregiver at once: flag, cancel pending rows, replan the family."""
        with self.engine.begin() as conn:
            cg = conn.execute(sa.select(caregivers).where(caregivers.c.id == caregiver_id)).first()
            if cg is None:
                raise NotFound(f"caregiver {caregiver_id}")
            conn.execute(caregivers.update().where(caregivers.c.id == caregiver_id).values(
                opted_out=True, opted_out_at=now))
            n = conn.execute(reminders.update().where(
                (reminders.c.caregiver_id == caregiver_id) & reminders.c.status.in_((PENDING,))
                & (reminders.c.kind != "reply")).values(
                status=CANCELLED, last_error="opted_out", updated_at=now)).rowcount
            conn.execute(confirmations.delete().where(confirmations.c.caregiver_id == caregiver_id))
            for kid in self._family_child_ids(conn, cg.family_id):
                self._replan(conn, kid, now)
        return {"caregiver_id": caregiver_id, "cancelled": n, "opted_out": True}

    def caregivers_by(self, *, phone: Optional[str] = None, sender_id: Optional[str] = None) -> List[Dict[str, Any]]:
        with self.engine.connect() as conn:
            q = sa.select(caregivers)
            q = q.where(caregivers.c.phone == phone) if phone else q.where(caregivers.c.chat_sender_id == sender_id)
            return [dict(r._mapping) for r in conn.execute(q)]

    def get_caregiver(self, caregiver_id: str) -> Dict[str, Any]:
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(caregivers).where(caregivers.c.id == caregiver_id)).first()
            if r is None:
                raise NotFound(f"caregiver {caregiver_id}")
            return dict(r._mapping)

    def family_children(self, family_id: str) -> List[Dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                sa.select(children).where(children.c.family_id == family_id).order_by(children.c.created_at))]

    # ------------------------------------------------------------------ activities / bookings
    def create_activity(self, data: Mapping, now: dt.datetime) -> Dict[str, Any]:
        aid = new_id()
        with self.engine.begin() as conn:
            conn.execute(activities.insert().values(id=aid, created_at=now, **data))
            return row_dict(conn.execute(sa.select(activities).where(activities.c.id == aid)).first())

    def list_activities(self, now: dt.datetime, include_past: bool = False) -> List[Dict[str, Any]]:
        with self.engine.connect() as conn:
            counts = dict(conn.execute(sa.select(bookings.c.activity_id, sa.func.count())
                                       .group_by(bookings.c.activity_id)).fetchall())
            q = sa.select(activities).order_by(activities.c.starts_at)
            if not include_past:
                q = q.where(activities.c.starts_at >= now)
            out = []
            for r in conn.execute(q):
                d = row_dict(r)
                d["booked"] = counts.get(r.id, 0)
                d["remaining"] = r.capacity - d["booked"]
                out.append(d)
            return out

    def book(self, activity_id: str, caregiver_id: str, child_id: Optional[str], now: dt.datetime) -> Dict[str, Any]:
        """Book an activity (capacity enforced atomically) and plan its reminders."""
        with self.engine.begin() as conn:
            q = sa.select(activities).where(activities.c.id == activity_id)
            if not self.is_sqlite:
                q = q.with_for_update()
            act = conn.execute(q).first()
            if act is None:
                raise NotFound(f"activity {activity_id}")
            cg = conn.execute(sa.select(caregivers).where(caregivers.c.id == caregiver_id)).first()
            if cg is None:
                raise NotFound(f"caregiver {caregiver_id}")
            if child_id is not None:
                ch = conn.execute(sa.select(children.c.family_id).where(children.c.id == child_id)).first()
                if ch is None or ch.family_id != cg.family_id:
                    raise NotFound(f"child {child_id}")
            if act.starts_at <= now:
                raise Conflict("activity_started")
            dup = conn.execute(sa.select(bookings.c.id).where(
                (bookings.c.activity_id == activity_id) & (bookings.c.caregiver_id == caregiver_id))).first()
            if dup:
                raise Conflict("already_booked")
            n = conn.execute(sa.select(sa.func.count()).select_from(bookings)
                             .where(bookings.c.activity_id == activity_id)).scalar()
            if n >= act.capacity:
                raise Conflict("activity_full")
            bid = new_id()
            conn.execute(bookings.insert().values(id=bid, activity_id=activity_id, caregiver_id=caregiver_id,
                                                  child_id=child_id, created_at=now))
            planned = planner.plan_activity(bid, activity_id, act.title, act.place, act.starts_at,
                                            _cg_info(cg._mapping), cg.timezone, now, self.activity_offsets, child_id)
            self._insert_ignore(conn, [self._row(p, now) for p in planned])
        return {"id": bid, "activity_id": activity_id, "caregiver_id": caregiver_id, "child_id": child_id,
                "reminders": [p.due_at.isoformat() for p in planned]}

    # ------------------------------------------------------------------ listing / metrics
    def list_reminders(self, *, child_id: Optional[str] = None, status: Optional[str] = None,
                       limit: int = 100) -> List[Dict[str, Any]]:
        with self.engine.connect() as conn:
            q = sa.select(reminders)
            if child_id:
                self._child(conn, child_id)
                q = q.where(reminders.c.child_id == child_id)
            if status:
                q = q.where(reminders.c.status == status)
            q = q.order_by(reminders.c.due_at, reminders.c.id).limit(limit)
            out = []
            for r in conn.execute(q):
                d = row_dict(r)
                d["items"] = json.loads(d.pop("items_json") or "[]")
                d.pop("claim_token", None)
                out.append(d)
            return out

    def counts_by_status(self) -> Dict[str, int]:
        with self.engine.connect() as conn:
            got = dict(conn.execute(sa.select(reminders.c.status, sa.func.count()).group_by(reminders.c.status)).fetchall())
        return {s: int(got.get(s, 0)) for s in STATUSES}

    def overdue_by_community(self, now: dt.datetime) -> Dict[str, Dict[str, int]]:
        """Per community (``NO_COMMUNITY`` when unset): children, children with at least one
        overdue item, and overdue items, as of *now* in each child's time zone.

        The schedule of every child is computed with :func:`schedule.compute_schedule` (the same
        pure function as ``child_schedule``); children and doses are read in two queries, so
        this is about as costly as computing the schedules (about 0.15 s per thousand children,
        measured on the CN schedule; it runs in the DB thread, so keep it for dashboards, not
        for every request).
        """
        with self.engine.connect() as conn:
            kids = conn.execute(sa.select(children.c.id, children.c.birth_date, children.c.timezone,
                                          children.c.region, children.c.community)).fetchall()
            given: Dict[str, Dict[str, dt.date]] = {}
            for r in conn.execute(sa.select(doses.c.child_id, doses.c.item_id, doses.c.given_on)):
                given.setdefault(r.child_id, {})[r.item_id] = r.given_on
        out: Dict[str, Dict[str, int]] = {}
        today_by_tz: Dict[str, dt.date] = {}
        for k in kids:
            today = today_by_tz.get(k.timezone)
            if today is None:
                today = today_by_tz[k.timezone] = now.astimezone(planner.zone(k.timezone)).date()
            computed = compute_schedule(k.birth_date, load_schedule(k.region), given.get(k.id, {}), today)
            n = sum(1 for c in computed if c.status == OVERDUE)
            row = out.setdefault(k.community or NO_COMMUNITY, {"children": 0, "overdue_children": 0, "overdue_items": 0})
            row["children"] += 1
            row["overdue_children"] += 1 if n else 0
            row["overdue_items"] += n
        return out

    def ping(self) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.text("SELECT 1")).scalar() == 1

    # ------------------------------------------------------------------ privacy: export / delete
    def export_family(self, family_id: str) -> Dict[str, Any]:
        """Everything stored about a family, as JSON-ready dicts."""
        with self.engine.connect() as conn:
            fam = conn.execute(sa.select(families).where(families.c.id == family_id)).first()
            if fam is None:
                raise NotFound(f"family {family_id}")
            kids = [row_dict(r) for r in conn.execute(sa.select(children).where(children.c.family_id == family_id))]
            cgs = [row_dict(r) for r in conn.execute(sa.select(caregivers).where(caregivers.c.family_id == family_id))]
            kid_ids = [k["id"] for k in kids]
            cg_ids = [c["id"] for c in cgs]
            ds = [row_dict(r) for r in conn.execute(sa.select(doses).where(doses.c.child_id.in_(kid_ids)))]
            bk = [row_dict(r) for r in conn.execute(sa.select(bookings).where(bookings.c.caregiver_id.in_(cg_ids)))]
            rem = [row_dict(r) for r in conn.execute(sa.select(reminders).where(
                reminders.c.child_id.in_(kid_ids) | reminders.c.caregiver_id.in_(cg_ids)).order_by(reminders.c.id))]
            for r in rem:
                r.pop("claim_token", None)
        return {"family": row_dict(fam), "children": kids, "caregivers": cgs, "doses": ds,
                "bookings": bk, "reminders": rem}

    def delete_family(self, family_id: str) -> Dict[str, int]:
        """Hard-delete every row of a family."""
        with self.engine.begin() as conn:
            if conn.execute(sa.select(families.c.id).where(families.c.id == family_id)).first() is None:
                raise NotFound(f"family {family_id}")
            kid_ids = self._family_child_ids(conn, family_id)
            cg_ids = [r[0] for r in conn.execute(sa.select(caregivers.c.id).where(caregivers.c.family_id == family_id))]
            counts = {}
            counts["reminders"] = conn.execute(reminders.delete().where(
                reminders.c.child_id.in_(kid_ids) | reminders.c.caregiver_id.in_(cg_ids))).rowcount
            conn.execute(confirmations.delete().where(confirmations.c.caregiver_id.in_(cg_ids)))
            counts["bookings"] = conn.execute(bookings.delete().where(
                bookings.c.caregiver_id.in_(cg_ids) | bookings.c.child_id.in_(kid_ids))).rowcount
            counts["doses"] = conn.execute(doses.delete().where(doses.c.child_id.in_(kid_ids))).rowcount
            counts["caregivers"] = conn.execute(caregivers.delete().where(caregivers.c.family_id == family_id)).rowcount
            counts["children"] = conn.execute(children.delete().where(children.c.family_id == family_id)).rowcount
            counts["families"] = conn.execute(families.delete().where(families.c.id == family_id)).rowcount
        return counts

    def table_counts(self) -> Dict[str, int]:
        with self.engine.connect() as conn:
            return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
                    for t in metadata.sorted_tables}
