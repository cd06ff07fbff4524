"""The hotline's SQLite store: staff users, sessions, tickets, messages,
notes, call-back tasks, audit log and unanswered questions.

Plain sqlite3, one connection per Store guarded by a lock (calls are short).
Several Store objects (or processes) may share one file: WAL mode, and every
state change that could race (claiming, resolving) is one conditional UPDATE.
"""
from __future__ import annotations

import json
import re
import sqlite3
import statistics
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

from hotline.security import hash_password, new_token, token_digest

ROLES = ("worker", "supervisor")
URGENCY_RANK = {"emergency": 0, "urgent": 1, "high": 2, "normal": 3}
TRIGGERS = ("request", "urgent", "low_confidence", "out_of_scope_insist")
ACTIVE = ("open", "claimed")

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  username TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('worker', 'supervisor')),
  display_name TEXT NOT NULL,
  active INTEGER NOT NULL DEFAULT 1,
  created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
  token_hash TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id),
  csrf_token TEXT NOT NULL,
  created_at REAL NOT NULL,
  expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tickets (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  sender_id TEXT NOT NULL,
  channel TEXT NOT NULL,
  language TEXT NOT NULL,
  urgency TEXT NOT NULL,
  urgency_rank INTEGER NOT NULL,
  trigger TEXT NOT NULL,
  child_age_months REAL,
  phone TEXT,
  summary TEXT NOT NULL DEFAULT '[]',
  status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'claimed', 'resolved')),
  created_at REAL NOT NULL,
  claimed_by INTEGER REFERENCES users(id),
  claimed_at REAL,
  resolved_by INTEGER REFERENCES users(id),
  resolved_at REAL,
  seen_until REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tickets_queue ON tickets(status, urgency_rank, created_at);
CREATE INDEX IF NOT EXISTS tickets_sender ON tickets(sender_id, status);
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ticket_id INTEGER NOT NULL REFERENCES tickets(id),
  kind TEXT NOT NULL CHECK (kind IN ('user', 'staff', 'system')),
  text TEXT NOT NULL,
  at REAL NOT NULL,
  user_id INTEGER REFERENCES users(id),
  delivery TEXT
);
CREATE INDEX IF NOT EXISTS messages_ticket ON messages(ticket_id, id);
CREATE TABLE IF NOT EXISTS notes (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ticket_id INTEGER NOT NULL REFERENCES tickets(id),
  user_id INTEGER NOT NULL REFERENCES users(id),
  text TEXT NOT NULL,
  at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS callbacks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ticket_id INTEGER NOT NULL REFERENCES tickets(id),
  phone TEXT,
  text TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done')),
  created_by INTEGER REFERENCES users(id),
  created_at REAL NOT NULL,
  done_by INTEGER REFERENCES users(id),
  done_at REAL
);
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at REAL NOT NULL,
  user_id INTEGER,
  username TEXT NOT NULL,
  action TEXT NOT NULL,
  ticket_id INTEGER,
  sender_id TEXT,
  detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS audit_ticket ON audit(ticket_id, id);
CREATE TABLE IF NOT EXISTS unanswered (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at REAL NOT NULL,
  sender_id TEXT,
  language TEXT,
  text TEXT NOT NULL,
  source TEXT NOT NULL DEFAULT 'api'
);
"""


class Conflict(Exception):
    """A state change that lost a race or is not allowed in the current state."""


def _row(cursor: sqlite3.Cursor, row: Tuple[Any, ...]) -> Dict[str, Any]:
    return {col[0]: value for col, value in zip(cursor.description, row)}


def normalize_question(text: str) -> str:
    """Key used to group unanswered questions: lower case, no punctuation or spaces."""
    text = text.lower().strip()
    return re.sub(r"[\s\W_]+", "", text, flags=re.UNICODE)


class Store:
    """All persistent state of the hotline service."""

    def __init__(self, path: str) -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10.0)
        self._db.row_factory = _row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _one(self, sql: str, args: Iterable[Any] = ()) -> Optional[Dict[str, Any]]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchone()

    def _all(self, sql: str, args: Iterable[Any] = ()) -> List[Dict[str, Any]]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()

    def _exec(self, sql: str, args: Iterable[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, tuple(args))

    # ------------------------------------------------------------------ users
    def create_user(self, username: str, password: str, role: str, display_name: Optional[str] = None) -> int:
        """Add a staff member; raises ValueError on a bad role or a taken name."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        username = username.strip()
        if not re.fullmatch(r"[A-Za-z0-9_.@-]{2,64}", username):
            raise ValueError("username: 2-64 letters, digits or _.@-")
        if len(password) < 10:
            raise ValueError("password must be at least 10 characters")
        try:
            cursor = self._exec(
                "INSERT INTO users (username, password_hash, role, display_name, created_at) VALUES (?, ?, ?, ?, ?)",
                (username, hash_password(password), role, display_name or username, time.time()),
            )
        except sqlite3.IntegrityError:
            raise ValueError(f"user {username!r} exists") from None
        return int(cursor.lastrowid)

    def set_password(self, username: str, password: str) -> None:
        if len(password) < 10:
            raise ValueError("password must be at least 10 characters")
        cursor = self._exec(
            "UPDATE users SET password_hash = ? WHERE username = ?", (hash_password(password), username)
        )
        if cursor.rowcount != 1:
            raise ValueError(f"no user {username!r}")

    def user_by_name(self, username: str) -> Optional[Dict[str, Any]]:
        return self._one("SELECT * FROM users WHERE username = ? AND active = 1", (username,))

    def user(self, user_id: int) -> Optional[Dict[str, Any]]:
        return self._one("SELECT id, username, role, display_name FROM users WHERE id = ?", (user_id,))

    def users(self) -> List[Dict[str, Any]]:
        return self._all("SELECT id, username, role, display_name, active FROM users ORDER BY id")

    # --------------------------------------------------------------- sessions
    def create_session(self, user_id: int, ttl_seconds: float, now: Optional[float] = None) -> Tuple[str, str]:
        """A new server-side session; returns (cookie token, CSRF token)."""
        now = time.time() if now is None else now
        token, csrf = new_token(), new_token()
        self._exec("DELETE FROM sessions WHERE expires_at < ?", (now,))
        self._exec(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            (token_digest(token), user_id, csrf, now, now + ttl_seconds),
        )
        return token, csrf

    def session(self, token: Optional[str], now: Optional[float] = None) -> Optional[Dict[str, Any]]:
        """The live session's user (id, username, role, display_name, csrf_token)."""
        if not token:
            return None
        now = time.time() if now is None else now
        return self._one(
            "SELECT u.id, u.username, u.role, u.display_name, s.csrf_token, s.expires_at"
            " FROM sessions s JOIN users u ON u.id = s.user_id"
            " WHERE s.token_hash = ? AND s.expires_at > ? AND u.active = 1",
            (token_digest(token), now),
        )

    def delete_session(self, token: str) -> None:
        self._exec("DELETE FROM sessions WHERE token_hash = ?", (token_digest(token),))

    # ---------------------------------------------------------------- tickets
    def open_ticket(self, data: Dict[str, Any], now: Optional[float] = None) -> Tuple[Dict[str, Any], bool]:
        """Open a ticket for a conversation, or return its open one.

        Returns (ticket, created). A second handoff of a conversation that is
        still waiting raises the existing ticket's urgency if needed.
        """
        now = time.time() if now is None else now
        urgency = data.get("urgency") or "normal"
        rank = URGENCY_RANK.get(urgency, URGENCY_RANK["normal"])
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                existing = self._db.execute(
                    "SELECT id, urgency_rank FROM tickets WHERE sender_id = ? AND status IN ('open', 'claimed')"
                    " ORDER BY id DESC LIMIT 1",
                    (data["sender_id"],),
                ).fetchone()
                if existing:
                    if rank < existing["urgency_rank"]:
                        self._db.execute(
                            "UPDATE tickets SET urgency = ?, urgency_rank = ? WHERE id = ?",
                            (urgency, rank, existing["id"]),
                        )
                    ticket_id, created = existing["id"], False
                else:
                    cursor = self._db.execute(
                        "INSERT INTO tickets (sender_id, channel, language, urgency, urgency_rank, trigger,"
                        " child_age_months, phone, summary, created_at, seen_until)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            data["sender_id"], data.get("channel") or "unknown", data.get("language") or "zh",
                            urgency, rank, data.get("trigger") or "request", data.get("child_age_months"),
                            data.get("phone"), json.dumps(data.get("summary") or [], ensure_ascii=False),
                            now, float(data.get("paused_at") or now),
                        ),
                    )
                    ticket_id, created = int(cursor.lastrowid), True
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return self.ticket(ticket_id), created  # type: ignore[return-value]

    def ticket(self, ticket_id: int) -> Optional[Dict[str, Any]]:
        row = self._one(
            "SELECT t.*, c.username AS claimed_by_name, r.username AS resolved_by_name FROM tickets t"
            " LEFT JOIN users c ON c.id = t.claimed_by LEFT JOIN users r ON r.id = t.resolved_by"
            " WHERE t.id = ?",
            (ticket_id,),
        )
        if row:
            row["summary"] = json.loads(row["summary"] or "[]")
        return row

    def queue(self) -> List[Dict[str, Any]]:
        """Open tickets by urgency then waiting time, then the claimed ones."""
        return self._all(
            "SELECT t.id, t.sender_id, t.channel, t.language, t.urgency, t.urgency_rank, t.trigger,"
            " t.child_age_months, t.status, t.created_at, t.claimed_at, t.claimed_by, u.username AS claimed_by_name,"
            " (SELECT COUNT(*) FROM messages m WHERE m.ticket_id = t.id AND m.kind = 'user') AS user_messages"
            " FROM tickets t LEFT JOIN users u ON u.id = t.claimed_by"
            " WHERE t.status IN ('open', 'claimed')"
            " ORDER BY t.status = 'claimed', t.urgency_rank, t.created_at, t.id"
        )

    def active_tickets(self) -> List[Dict[str, Any]]:
        return self._all(
            "SELECT id, sender_id, seen_until FROM tickets WHERE status IN ('open', 'claimed') ORDER BY id"
        )

    def claim(self, ticket_id: int, user_id: int, now: Optional[float] = None) -> bool:
        """Claim an open ticket. One conditional UPDATE: of two concurrent
        claims exactly one changes the row; the other gets False."""
        now = time.time() if now is None else now
        cursor = self._exec(
            "UPDATE tickets SET status = 'claimed', claimed_by = ?, claimed_at = ?"
            " WHERE id = ? AND status = 'open'",
            (user_id, now, ticket_id),
        )
        return cursor.rowcount == 1

    def release(self, ticket_id: int, user_id: int) -> bool:
        """Give a claimed ticket back to the queue (only its holder)."""
        cursor = self._exec(
            "UPDATE tickets SET status = 'open', claimed_by = NULL, claimed_at = NULL"
            " WHERE id = ? AND status = 'claimed' AND claimed_by = ?",
            (ticket_id, user_id),
        )
        return cursor.rowcount == 1

    def resolve(self, ticket_id: int, user_id: int, now: Optional[float] = None) -> bool:
        """Mark an open or claimed ticket resolved; False if it already was."""
        now = time.time() if now is None else now
        cursor = self._exec(
            "UPDATE tickets SET status = 'resolved', resolved_by = ?, resolved_at = ?,"
            " claimed_by = COALESCE(claimed_by, ?), claimed_at = COALESCE(claimed_at, ?)"
            " WHERE id = ? AND status IN ('open', 'claimed')",
            (user_id, now, user_id, now, ticket_id),
        )
        return cursor.rowcount == 1

    def unresolve(self, ticket_id: int, claimed_by: Optional[int], claimed_at: Optional[float]) -> None:
        """Undo resolve() when the conversation could not be resumed."""
        self._exec(
            "UPDATE tickets SET status = CASE WHEN ? IS NULL THEN 'open' ELSE 'claimed' END,"
            " claimed_by = ?, claimed_at = ?, resolved_by = NULL, resolved_at = NULL WHERE id = ?",
            (claimed_by, claimed_by, claimed_at, ticket_id),
        )

    def advance_seen(self, ticket_id: int, seen_until: float) -> None:
        self._exec("UPDATE tickets SET seen_until = MAX(seen_until, ?) WHERE id = ?", (seen_until, ticket_id))

    def expected_wait_minutes(self, ticket_id: int, now: Optional[float] = None) -> int:
        """Rough wait estimate: the median time-to-claim of the last 20 claimed
        tickets (5 min if none) plus 3 min per open ticket ahead in the queue."""
        now = time.time() if now is None else now
        ticket = self._one("SELECT urgency_rank, created_at FROM tickets WHERE id = ?", (ticket_id,))
        if ticket is None:
            return 5
        waits = [
            r["wait"] for r in self._all(
                "SELECT claimed_at - created_at AS wait FROM tickets WHERE claimed_at IS NOT NULL"
                " ORDER BY claimed_at DESC LIMIT 20"
            )
        ]
        base = statistics.median(waits) / 60.0 if waits else 5.0
        ahead = self._one(
            "SELECT COUNT(*) AS n FROM tickets WHERE status = 'open' AND id != ? AND"
            " (urgency_rank < ? OR (urgency_rank = ? AND created_at <= ?))",
            (ticket_id, ticket["urgency_rank"], ticket["urgency_rank"], ticket["created_at"]),
        )["n"]
        return int(min(120, max(1, round(base + 3 * ahead))))

    # ------------------------------------------------- messages, notes, calls
    def add_message(self, ticket_id: int, kind: str, text: str, at: Optional[float] = None,
                    user_id: Optional[int] = None, delivery: Optional[str] = None) -> int:
        cursor = self._exec(
            "INSERT INTO messages (ticket_id, kind, text, at, user_id, delivery) VALUES (?, ?, ?, ?, ?, ?)",
            (ticket_id, kind, text, time.time() if at is None else at, user_id, delivery),
        )
        return int(cursor.lastrowid)

    def messages(self, ticket_id: int, after_id: int = 0) -> List[Dict[str, Any]]:
        return self._all(
            "SELECT m.id, m.kind, m.text, m.at, m.delivery, u.username FROM messages m"
            " LEFT JOIN users u ON u.id = m.user_id WHERE m.ticket_id = ? AND m.id > ? ORDER BY m.id",
            (ticket_id, after_id),
        )

    def add_note(self, ticket_id: int, user_id: int, text: str, now: Optional[float] = None) -> int:
        cursor = self._exec(
            "INSERT INTO notes (ticket_id, user_id, text, at) VALUES (?, ?, ?, ?)",
            (ticket_id, user_id, text, time.time() if now is None else now),
        )
        return int(cursor.lastrowid)

    def notes(self, ticket_id: int) -> List[Dict[str, Any]]:
        return self._all(
            "SELECT n.id, n.text, n.at, u.username FROM notes n JOIN users u ON u.id = n.user_id"
            " WHERE n.ticket_id = ? ORDER BY n.id",
            (ticket_id,),
        )

    def add_callback(self, ticket_id: int, phone: Optional[str], text: str, user_id: int,
                     now: Optional[float] = None) -> int:
        cursor = self._exec(
            "INSERT INTO callbacks (ticket_id, phone, text, created_by, created_at) VALUES (?, ?, ?, ?, ?)",
            (ticket_id, phone, text, user_id, time.time() if now is None else now),
        )
        return int(cursor.lastrowid)

    def callbacks(self, ticket_id: Optional[int] = None, pending_only: bool = False) -> List[Dict[str, Any]]:
        sql = "SELECT * FROM callbacks WHERE 1=1"
        args: List[Any] = []
        if ticket_id is not None:
            sql += " AND ticket_id = ?"
            args.append(ticket_id)
        if pending_only:
            sql += " AND status = 'pending'"
        return self._all(sql + " ORDER BY id", args)

    def complete_callback(self, callback_id: int, ticket_id: int, user_id: int, now: Optional[float] = None) -> bool:
        cursor = self._exec(
            "UPDATE callbacks SET status = 'done', done_by = ?, done_at = ?"
            " WHERE id = ? AND ticket_id = ? AND status = 'pending'",
            (user_id, time.time() if now is None else now, callback_id, ticket_id),
        )
        return cursor.rowcount == 1

    # ------------------------------------------------------------------ audit
    def audit(self, user: Optional[Dict[str, Any]], action: str, ticket: Optional[Dict[str, Any]] = None,
              detail: str = "", now: Optional[float] = None) -> None:
        """Record who did or saw what, when, about which family (sender)."""
        self._exec(
            "INSERT INTO audit (at, user_id, username, action, ticket_id, sender_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                time.time() if now is None else now,
                user["id"] if user else None,
                user["username"] if user else "-",
                action,
                ticket["id"] if ticket else None,
                ticket["sender_id"] if ticket else None,
                detail,
            ),
        )

    def audit_entries(self, limit: int = 200, ticket_id: Optional[int] = None) -> List[Dict[str, Any]]:
        if ticket_id is None:
            return self._all("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
        return self._all("SELECT * FROM audit WHERE ticket_id = ? ORDER BY id DESC LIMIT ?", (ticket_id, limit))

    # ------------------------------------------------------------- dashboard
    def add_unanswered(self, text: str, sender_id: Optional[str], language: Optional[str],
                       now: Optional[float] = None, source: str = "api") -> int:
        cursor = self._exec(
            "INSERT INTO unanswered (at, sender_id, language, text, source) VALUES (?, ?, ?, ?, ?)",
            (time.time() if now is None else now, sender_id, language, text, source),
        )
        return int(cursor.lastrowid)

    def unanswered(self, since: float = 0) -> List[Dict[str, Any]]:
        return self._all("SELECT at, sender_id, language, text FROM unanswered WHERE at >= ?", (since,))

    def ticket_stats(self, now: Optional[float] = None, since: float = 0) -> Dict[str, Any]:
        """Counts by status, trigger and urgency, and waiting times in seconds."""
        now = time.time() if now is None else now
        by_status = {s: 0 for s in ("open", "claimed", "resolved")}
        for r in self._all("SELECT status, COUNT(*) AS n FROM tickets WHERE created_at >= ? GROUP BY status", (since,)):
            by_status[r["status"]] = r["n"]
        by_trigger = {r["trigger"]: r["n"] for r in self._all(
            "SELECT trigger, COUNT(*) AS n FROM tickets WHERE created_at >= ? GROUP BY trigger", (since,))}
        by_urgency = {r["urgency"]: r["n"] for r in self._all(
            "SELECT urgency, COUNT(*) AS n FROM tickets WHERE created_at >= ? GROUP BY urgency", (since,))}
        waits = sorted(r["w"] for r in self._all(
            "SELECT claimed_at - created_at AS w FROM tickets WHERE claimed_at IS NOT NULL AND created_at >= ?", (since,)))
        open_waits = sorted(now - r["created_at"] for r in self._all(
            "SELECT created_at FROM tickets WHERE status = 'open'"))
        handling = sorted(r["h"] for r in self._all(
            "SELECT resolved_at - created_at AS h FROM tickets WHERE resolved_at IS NOT NULL AND created_at >= ?", (since,)))

        def pct(values: List[float], q: float) -> Optional[float]:
            if not values:
                return None
            return round(values[min(len(values) - 1, int(q * len(values)))], 1)

        return {
            "by_status": by_status,
            "by_trigger": by_trigger,
            "by_urgency": by_urgency,
            "wait_to_claim_seconds": {"n": len(waits), "median": pct(waits, 0.5), "p90": pct(waits, 0.9)},
            "time_to_resolve_seconds": {"n": len(handling), "median": pct(handling, 0.5), "p90": pct(handling, 0.9)},
            "open_now": {"n": len(open_waits), "longest_wait_seconds": round(open_waits[-1], 1) if open_waits else None},
        }
