"""A persistent outbox for messages pushed to web chat users.

Reminders and hotline replies arrive while the page is not waiting for an
answer; they are stored here (SQLite, survives restarts) until the page
fetches them.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Dict, List


class Outbox:
    """Messages per recipient, numbered in arrival order."""

    def __init__(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outbox ("
            " id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " recipient TEXT NOT NULL, message TEXT NOT NULL, created_at REAL NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS outbox_recipient ON outbox(recipient, id)")
        self._lock = threading.Lock()

    def put(self, recipient: str, message: Dict[str, Any]) -> int:
        """Store a message for a recipient; returns its id."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO outbox (recipient, message, created_at) VALUES (?, ?, ?)",
                (recipient, json.dumps(message, ensure_ascii=False), time.time()),
            )
            return int(cursor.lastrowid)

    def after(self, recipient: str, after_id: int, limit: int = 50) -> List[Dict[str, Any]]:
        """Messages for a recipient with an id above `after_id`, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, message FROM outbox WHERE recipient = ? AND id > ? ORDER BY id LIMIT ?",
                (recipient, after_id, limit),
            ).fetchall()
        return [{"id": row[0], **json.loads(row[1])} for row in rows]

    def last_id(self, recipient: str) -> int:
        """The id of a recipient's newest message, 0 if none."""
        with self._lock:
            row = self._db.execute(
                "SELECT MAX(id) FROM outbox WHERE recipient = ?", (recipient,)
            ).fetchone()
        return int(row[0] or 0)
