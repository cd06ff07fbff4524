"""Injectable clocks: every time is time-zone aware (UTC)."""
from __future__ import annotations

import datetime as dt
import threading

UTC = dt.timezone.utc


class SystemClock:
    """The real clock."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)


class FakeClock:
    """A clock tests move by hand (``advance``/``set``); thread-safe."""

    def __init__(self, start: dt.datetime):
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            return self._now

    def advance(self, **kwargs) -> dt.datetime:
        with self._lock:
            self._now += dt.timedelta(**kwargs)
            return self._now

    def set(self, when: dt.datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("naive datetime")
        with self._lock:
            self._now = when.astimezone(UTC)
