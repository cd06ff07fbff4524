"""Configuration from environment variables (see README.md for the table)."""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
from typing import Mapping, Optional, Tuple


def _dur(s: str) -> dt.timedelta:
    """``"24h"``, ``"90m"``, ``"30s"``, ``"1d"`` or plain seconds -> timedelta."""
    s = s.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if s and s[-1] in units:
        return dt.timedelta(seconds=float(s[:-1]) * units[s[-1]])
    return dt.timedelta(seconds=float(s))


@dataclasses.dataclass
class Config:
    database_url: str = "sqlite:///var/reminders.db"
    api_token: Optional[str] = None
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_auth_token: Optional[str] = None
    sms_gateway_url: Optional[str] = None
    sms_webhook_secret: Optional[str] = None
    host: str = "127.0.0.1"
    port: int = 8002
    worker_id: Optional[str] = None
    sweep_interval: float = 5.0
    sweep_misfire_grace: int = 30
    batch_size: int = 200
    concurrency: int = 50
    lease: dt.timedelta = dt.timedelta(seconds=120)
    max_attempts: int = 6
    backoff_base: float = 30.0
    backoff_cap: float = 3600.0
    http_timeout: float = 10.0
    escalate_after: dt.timedelta = dt.timedelta(hours=24)
    send_time: dt.time = dt.time(9, 0)
    quiet_start: dt.time = dt.time(21, 0)
    quiet_end: dt.time = dt.time(8, 0)
    activity_offsets: Tuple[dt.timedelta, ...] = (dt.timedelta(days=1), dt.timedelta(hours=1))
    default_timezone: str = "Asia/Shanghai"
    public_url: str = "http://127.0.0.1:8002"
    sweep_enabled: bool = True
    confirm_window: dt.timedelta = dt.timedelta(hours=24)
    plan_horizon_days: int = 120
    http_client: str = "lean"

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None, **overrides) -> "Config":
        e = os.environ if env is None else env
        c = cls()
        g = e.get
        if g("DATABASE_URL"):
            c.database_url = g("DATABASE_URL")
        c.api_token = g("REMINDERS_API_TOKEN") or None
        c.rasa_url = g("RASA_URL", c.rasa_url).rstrip("/")
        c.rasa_auth_token = g("RASA_AUTH_TOKEN") or None
        c.sms_gateway_url = g("SMS_GATEWAY_URL") or None
        c.sms_webhook_secret = g("SMS_WEBHOOK_SECRET") or None
        c.host = g("REMINDERS_HOST", c.host)
        c.port = int(g("REMINDERS_PORT", c.port))
        c.worker_id = g("REMINDERS_WORKER_ID") or None
        c.sweep_interval = float(g("SWEEP_INTERVAL", c.sweep_interval))
        c.sweep_misfire_grace = int(g("SWEEP_MISFIRE_GRACE", c.sweep_misfire_grace))
        c.batch_size = int(g("SWEEP_BATCH_SIZE", c.batch_size))
        c.concurrency = int(g("DELIVERY_CONCURRENCY", c.concurrency))
        if g("CLAIM_LEASE"):
            c.lease = _dur(g("CLAIM_LEASE"))
        c.max_attempts = int(g("MAX_ATTEMPTS", c.max_attempts))
        c.backoff_base = float(g("RETRY_BACKOFF_BASE", c.backoff_base))
        c.backoff_cap = float(g("RETRY_BACKOFF_CAP", c.backoff_cap))
        c.http_timeout = float(g("DELIVERY_TIMEOUT", c.http_timeout))
        if g("ESCALATE_AFTER"):
            c.escalate_after = _dur(g("ESCALATE_AFTER"))
        from .planner import parse_hhmm
        if g("REMINDER_SEND_TIME"):
            c.send_time = parse_hhmm(g("REMINDER_SEND_TIME"))
        if g("QUIET_HOURS"):
            a, b = g("QUIET_HOURS").split("-")
            c.quiet_start, c.quiet_end = parse_hhmm(a), parse_hhmm(b)
        if g("ACTIVITY_REMIND_BEFORE"):
            c.activity_offsets = tuple(_dur(x) for x in g("ACTIVITY_REMIND_BEFORE").split(",") if x.strip())
        c.default_timezone = g("DEFAULT_TIMEZONE", c.default_timezone)
        c.public_url = g("REMINDERS_PUBLIC_URL", f"http://{c.host}:{c.port}").rstrip("/")
        c.plan_horizon_days = int(g("PLAN_HORIZON_DAYS", c.plan_horizon_days))
        c.http_client = g("DELIVERY_HTTP_CLIENT", c.http_client).lower()
        if c.http_client not in ("lean", "aiohttp"):
            raise ValueError("DELIVERY_HTTP_CLIENT must be 'lean' or 'aiohttp'")
        c.sweep_enabled = g("SWEEP_ENABLED", "1").lower() not in ("0", "false", "no")
        for k, v in overrides.items():
            setattr(c, k, v)
        return c
