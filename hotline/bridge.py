"""The hotline's edges: Rasa's HTTP API, the SMS gateway, the reminders
service and Rasa's tracker database. Pure helpers first, then I/O."""
from __future__ import annotations

import json
import logging
import re
import sqlite3
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple
from urllib.parse import quote

import aiohttp

from hotline.config import HotlineConfig
from hotline.security import mask_phone, mask_phones_in_text, sign_body
from hotline.store import normalize_question

log = logging.getLogger(__name__)

BACK_MESSAGES = {
    "zh": "热线工作人员已经处理完毕，育儿小助手回来了。还有什么问题，随时问我。",
    "en": "The hotline worker has finished. Your parenting assistant is back: ask me anything.",
}
STAFF_PREFIX = {"zh": "【热线工作人员】", "en": "[Hotline worker] "}


# Appended after the resume: the paused turn ended without an action_listen,
# and without one the next user message would not match any rule.
RESUME_EVENTS = [{"event": "resume"}]
AFTER_RESUME_EVENTS = [{"event": "action", "name": "action_listen"}]


def back_message(language: str) -> str:
    """What the bot says when a ticket is resolved, in the user's language."""
    return BACK_MESSAGES["en" if language == "en" else "zh"]


def staff_text(language: str, text: str) -> str:
    """A staff reply as the user sees it, marked as coming from a person."""
    return STAFF_PREFIX["en" if language == "en" else "zh"] + text


def user_messages_after(events: Iterable[Dict[str, Any]], after: float) -> List[Dict[str, Any]]:
    """User messages of a tracker with a timestamp later than `after`."""
    return [
        {"at": float(e.get("timestamp") or 0), "text": e.get("text") or ""}
        for e in events
        if e.get("event") == "user" and float(e.get("timestamp") or 0) > after
    ]


def transcript(events: Iterable[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """A readable transcript from tracker events: who, when, what; phone
    numbers in the text masked; pauses and resumes marked."""
    lines: List[Dict[str, Any]] = []
    for e in events:
        kind = e.get("event")
        at = float(e.get("timestamp") or 0)
        if kind == "user":
            intent = ((e.get("parse_data") or {}).get("intent") or {}).get("name")
            lines.append({"at": at, "who": "user", "text": mask_phones_in_text(e.get("text") or ""), "intent": intent})
        elif kind == "bot":
            lines.append({"at": at, "who": "bot", "text": mask_phones_in_text(e.get("text") or "")})
        elif kind in ("pause", "resume"):
            lines.append({"at": at, "who": "system", "text": "paused" if kind == "pause" else "resumed"})
    return lines


def group_questions(rows: Iterable[Dict[str, Any]], limit: int = 50) -> List[Dict[str, Any]]:
    """Group unanswered questions by their normalised text, most asked first."""
    groups: Dict[str, Dict[str, Any]] = {}
    senders: Dict[str, set] = defaultdict(set)
    for row in rows:
        text = (row.get("text") or "").strip()
        key = normalize_question(text)
        if not key or key.startswith("/"):
            continue
        group = groups.setdefault(key, {"question": mask_phones_in_text(text), "count": 0, "languages": set(), "last_at": 0.0})
        group["count"] += 1
        if row.get("language"):
            group["languages"].add(row["language"])
        group["last_at"] = max(group["last_at"], float(row.get("at") or 0))
        if row.get("sender_id"):
            senders[key].add(row["sender_id"])
    result = []
    for key, group in groups.items():
        result.append({**group, "languages": sorted(group["languages"]), "people": len(senders[key])})
    result.sort(key=lambda g: (-g["count"], -g["last_at"]))
    return result[:limit]


UNANSWERED_INTENTS = ("out_of_scope", "nlu_fallback")
UNANSWERED_DECISIONS = ("out_of_scope",)


def unanswered_from_events(rows: Iterable[Tuple[str, str, float, Optional[str], str]]) -> List[Dict[str, Any]]:
    """Questions the bot could not answer, from Rasa tracker-store rows
    `(sender_id, type_name, timestamp, intent_name, data)` in event order:
    user messages classified out_of_scope / nlu_fallback, and user messages
    the knowledge-base action declined (its bot message carries
    `decision: out_of_scope` in the metadata)."""
    found: List[Dict[str, Any]] = []
    last_user: Dict[str, Dict[str, Any]] = {}
    for sender_id, type_name, timestamp, intent_name, data in rows:
        try:
            event = json.loads(data)
        except (TypeError, ValueError):
            continue
        if type_name == "user":
            text = event.get("text") or ""
            if text.startswith("/"):
                continue
            language = None
            for entity in (event.get("parse_data") or {}).get("entities") or []:
                if entity.get("entity") == "language":
                    language = entity.get("value")
            item = {"sender_id": sender_id, "at": timestamp, "text": text, "language": language}
            last_user[sender_id] = {**item, "counted": False}
            if intent_name in UNANSWERED_INTENTS:
                found.append(item)
                last_user[sender_id]["counted"] = True
        elif type_name == "bot":
            decision = (event.get("metadata") or {}).get("decision")
            user = last_user.get(sender_id)
            if decision in UNANSWERED_DECISIONS and user and not user["counted"]:
                found.append({k: user[k] for k in ("sender_id", "at", "text", "language")})
                user["counted"] = True
    return found


def tracker_db_unanswered(path: str, since: float = 0, limit: int = 20000) -> List[Dict[str, Any]]:
    """Unanswered questions read read-only from Rasa's SQL tracker store
    (SQLite) since a time; empty if the store is not there."""
    if not path or not Path(path).exists():
        return []
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2.0)
        try:
            rows = db.execute(
                "SELECT sender_id, type_name, timestamp, intent_name, data FROM"
                " (SELECT * FROM events WHERE type_name IN ('user', 'bot') AND timestamp >= ?"
                "  ORDER BY id DESC LIMIT ?) ORDER BY id",
                (since, limit),
            ).fetchall()
        finally:
            db.close()
    except sqlite3.Error as error:
        log.warning("cannot read the tracker store %s: %s", path, error)
        return []
    return unanswered_from_events(rows)


def parse_prometheus(text: str) -> Dict[str, float]:
    """`name{label="v"} 3` lines -> {"name{label=\"v\"}": 3.0}."""
    values = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^(\S+)\s+([-+0-9.eE]+)$", line.strip())
        if m:
            values[m.group(1)] = float(m.group(2))
    return values


class DeliveryError(RuntimeError):
    """A reply or resume could not be handed to Rasa or the SMS gateway."""


def overdue_rows(data: Any) -> List[Dict[str, Any]]:
    """The reminders service's ``overdue_by_community`` (``{community: {children,
    overdue_children, overdue_items}}``; a bare number is read as overdue children) as table
    rows, most overdue children first."""
    if not isinstance(data, dict):
        return []
    rows = []
    for community, v in data.items():
        if isinstance(v, dict):
            row = {k: int(v.get(k) or 0) for k in ("children", "overdue_children", "overdue_items")}
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            row = {"children": None, "overdue_children": int(v), "overdue_items": None}
        else:
            continue
        rows.append({"community": str(community), **row})
    rows.sort(key=lambda r: (-r["overdue_children"], -(r["overdue_items"] or 0), r["community"]))
    return rows


class Bridge:
    """HTTP calls to Rasa, the SMS gateway and the reminders service."""

    def __init__(self, config: HotlineConfig, session: aiohttp.ClientSession) -> None:
        self.config = config
        self.session = session

    # ----------------------------------------------------------------- Rasa
    def _conversation_url(self, sender_id: str, suffix: str) -> str:
        # Rasa (Sanic) does not percent-decode the conversation id: keep "+"
        # of phone-number senders (SMS, voice) as it is, or "%2B..." becomes
        # a different conversation.
        return f"{self.config.rasa_url}/conversations/{quote(sender_id, safe='+@:')}/{suffix}"

    def _params(self, **extra: str) -> Dict[str, str]:
        params = {k: v for k, v in extra.items() if v}
        if self.config.rasa_token:
            params["token"] = self.config.rasa_token
        return params

    async def tracker(self, sender_id: str) -> Dict[str, Any]:
        """`GET /conversations/{id}/tracker` (all events)."""
        async with self.session.get(
            self._conversation_url(sender_id, "tracker"), params=self._params(include_events="ALL"),
            timeout=aiohttp.ClientTimeout(total=self.config.http_timeout),
        ) as response:
            if response.status != 200:
                raise DeliveryError(f"Rasa tracker answered {response.status}")
            return await response.json()

    async def append_events(self, sender_id: str, events: List[Dict[str, Any]],
                            output_channel: Optional[str] = None) -> None:
        """`POST /conversations/{id}/tracker/events`; with an output channel,
        `execute_side_effects=true` so bot messages are sent on it."""
        params = self._params()
        if output_channel:
            params.update({"execute_side_effects": "true", "output_channel": output_channel})
        async with self.session.post(
            self._conversation_url(sender_id, "tracker/events"), params=params, json=events,
            timeout=aiohttp.ClientTimeout(total=self.config.http_timeout),
        ) as response:
            if response.status != 200:
                body = (await response.text())[:300]
                raise DeliveryError(f"Rasa answered {response.status}: {body}")

    # ------------------------------------------------------------------ SMS
    async def send_sms(self, phone: str, text: str, key: Optional[str] = None) -> None:
        """POST a signed message to the SMS gateway (the reminders service's
        contract: JSON body, X-Signature HMAC-SHA256, Idempotency-Key)."""
        if not self.config.sms_gateway_url:
            raise DeliveryError("SMS is not configured (SMS_GATEWAY_URL)")
        key = key or f"hotline-{uuid.uuid4()}"
        body = json.dumps({"to": phone, "text": text, "idempotency_key": key, "source": "hotline"},
                          ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        if self.config.sms_secret:
            headers["X-Signature"] = sign_body(body, self.config.sms_secret)
        try:
            async with self.session.post(
                self.config.sms_gateway_url, data=body, headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.config.http_timeout),
            ) as response:
                if response.status >= 300:
                    raise DeliveryError(f"SMS gateway answered {response.status}")
        except aiohttp.ClientError as error:
            raise DeliveryError(f"SMS gateway unreachable: {error}") from error
        log.info("hotline SMS sent to %s", mask_phone(phone))

    # ------------------------------------------------------------- routing
    def route(self, channel: str) -> str:
        """How a ticket's channel gets staff messages: chat | sms | voice."""
        if channel in self.config.sms_channels:
            return "sms"
        if channel in self.config.voice_channels:
            return "voice"
        return "chat"

    async def deliver(self, ticket: Dict[str, Any], text: str, extra_events: Optional[List[Dict[str, Any]]] = None,
                      key: Optional[str] = None, then: Optional[List[Dict[str, Any]]] = None) -> str:
        """Send `text` to the ticket's user on the channel they came from and
        record it in the conversation. Returns how it went out:
        `chat:<channel>`, `sms` or `voice` (the caller needs a call-back)."""
        route = self.route(ticket["channel"])
        events = (list(extra_events or []) + [{"event": "bot", "text": text, "metadata": {"hotline": True}}]
                  + list(then or []))
        if route == "chat":
            # Rasa sends the bot event on the conversation's channel.
            await self.append_events(ticket["sender_id"], events, output_channel=ticket["channel"])
            return f"chat:{ticket['channel']}"
        if route == "sms":
            phone = ticket.get("phone") or ticket["sender_id"]
            await self.send_sms(phone, text, key)
            await self.append_events(ticket["sender_id"], events)
            return "sms"
        # Voice: the call is over; record it, and staff call back.
        await self.append_events(ticket["sender_id"], events)
        return "voice"

    # ------------------------------------------------------------ reminders
    async def reminders_overview(self) -> Dict[str, Any]:
        """Reminder delivery counts and children overdue by community from the
        reminders service; `{"available": False, "reason": ...}` if it is not
        reachable or does not offer them."""
        base = self.config.reminders_url
        if not base:
            return {"available": False, "reason": "REMINDERS_URL is not set"}
        headers = {"Authorization": f"Bearer {self.config.reminders_token}"} if self.config.reminders_token else {}
        timeout = aiohttp.ClientTimeout(total=3)
        result: Dict[str, Any] = {"available": False}
        try:
            async with self.session.get(f"{base}/stats", headers=headers, timeout=timeout) as response:
                if response.status == 200:
                    data = await response.json()
                    return {"available": True, "source": "/stats", "reminders": data.get("reminders") or {},
                            "overdue_by_community": overdue_rows(data.get("overdue_by_community"))}
            async with self.session.get(f"{base}/metrics", headers=headers, timeout=timeout) as response:
                if response.status != 200:
                    return {"available": False, "reason": f"reminders /metrics answered {response.status}"}
                metrics = parse_prometheus(await response.text())
        except (aiohttp.ClientError, ValueError, OSError) as error:
            return {"available": False, "reason": f"reminders service unreachable ({type(error).__name__})"}
        by_status = {}
        for key, value in metrics.items():
            m = re.match(r'reminders_by_status\{status="(\w+)"\}', key)
            if m:
                by_status[m.group(1)] = int(value)
        result.update({
            "available": True,
            "source": "/metrics",
            "reminders": {
                "sent": by_status.get("sent", 0),
                "acknowledged": by_status.get("acknowledged", by_status.get("acked", 0)),
                "failed": by_status.get("failed", 0),
                "by_status": by_status,
            },
            "overdue_by_community": None,
            "note": "children overdue by community need the reminders service's /stats endpoint",
        })
        return result
