"""Configuration of the hotline service, from the environment."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent


def _flag(value: Optional[str], default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _names(value: Optional[str], default: Tuple[str, ...]) -> Tuple[str, ...]:
    if value is None:
        return default
    return tuple(v.strip() for v in value.split(",") if v.strip())


@dataclass(frozen=True)
class HotlineConfig:
    """Everything the service needs; `from_env()` reads it from variables."""

    db_path: str = str(ROOT / "var" / "hotline.db")
    api_token: str = ""
    public_url: str = "http://127.0.0.1:8003"
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_token: str = ""
    # Rasa's SQL tracker store (read-only) for questions the bot could not answer.
    rasa_tracker_db: str = ""
    reminders_url: str = ""
    reminders_token: str = ""
    sms_gateway_url: str = ""
    sms_secret: str = ""
    hotline_number: str = "12320"
    cookie_secure: bool = True
    session_hours: float = 8.0
    poll_seconds: float = 1.0
    # Channels whose users get staff replies by SMS through the gateway, and
    # voice channels whose callers get a call-back task instead.
    sms_channels: Tuple[str, ...] = ("sms",)
    voice_channels: Tuple[str, ...] = ("twilio_voice", "voice", "voice_gateway", "voicegateway")
    http_timeout: float = 10.0
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "HotlineConfig":
        env = os.environ if env is None else env
        var_dir = Path(env.get("VAR_DIR") or ROOT / "var")
        return cls(
            db_path=env.get("HOTLINE_DB") or str(var_dir / "hotline.db"),
            api_token=env.get("HOTLINE_API_TOKEN", ""),
            public_url=(env.get("HOTLINE_PUBLIC_URL") or f"http://127.0.0.1:{env.get('HOTLINE_PORT', '8003')}").rstrip("/"),
            rasa_url=(env.get("RASA_URL") or "http://127.0.0.1:5005").rstrip("/"),
            rasa_token=env.get("RASA_AUTH_TOKEN", ""),
            rasa_tracker_db=env.get("RASA_TRACKER_DB", ""),
            reminders_url=(env.get("REMINDERS_URL") or "").rstrip("/"),
            reminders_token=env.get("REMINDERS_API_TOKEN", ""),
            sms_gateway_url=env.get("SMS_GATEWAY_URL", ""),
            sms_secret=env.get("SMS_WEBHOOK_SECRET", ""),
            hotline_number=env.get("HOTLINE_NUMBER") or "12320",
            cookie_secure=_flag(env.get("HOTLINE_COOKIE_SECURE"), True),
            session_hours=float(env.get("HOTLINE_SESSION_HOURS") or 8.0),
            poll_seconds=float(env.get("HOTLINE_POLL_SECONDS") or 1.0),
            sms_channels=_names(env.get("HOTLINE_SMS_CHANNELS"), cls.sms_channels),
            voice_channels=_names(env.get("HOTLINE_VOICE_CHANNELS"), cls.voice_channels),
        )
