"""Outbound delivery: chat through Rasa's trigger_intent, SMS through a signed HTTP webhook.

Outcome classification: 2xx -> ``sent``; 4xx other than 429 -> ``failed`` (permanent);
5xx, 429, timeouts and connection errors -> ``retry`` (the sweep applies exponential backoff
with jitter up to ``MAX_ATTEMPTS`` and then marks the row failed).
"""
from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import logging
from typing import Mapping, Optional
from urllib.parse import quote

import aiohttp

from .http import HttpError, LeanHTTPClient
from .phones import mask_phone

log = logging.getLogger("reminders.delivery")

EXTERNAL_INTENT = "EXTERNAL_reminder"


def sign(body: bytes, secret: str) -> str:
    """``X-Signature`` header value: ``sha256=<hex HMAC-SHA256 of the raw body>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: Optional[str], secret: Optional[str]) -> bool:
    """Constant-time check of an ``X-Signature: sha256=<hex>`` header against *body*."""
    if not header or not secret:
        return False
    expected = sign(body, secret)
    return hmac.compare_digest(expected.encode(), header.strip().encode())


@dataclasses.dataclass(frozen=True)
class DeliveryResult:
    outcome: str                 # sent | retry | failed
    status: Optional[int] = None
    error: Optional[str] = None


def classify_status(status: int) -> str:
    if 200 <= status < 300:
        return "sent"
    if status == 429 or status >= 500:
        return "retry"
    return "failed"


class Deliverer:
    """Sends one reminder row; never raises for transport problems."""

    def __init__(self, session, rasa_url: str, rasa_token: Optional[str],
                 sms_url: Optional[str], sms_secret: Optional[str], timeout: float = 10.0):
        """*session*: a :class:`LeanHTTPClient` (default in the service) or an ``aiohttp.ClientSession``."""
        self.session = session
        self.timeout_s = timeout
        self.rasa_url = rasa_url.rstrip("/")
        self.rasa_token = rasa_token
        self.sms_url = sms_url
        self.sms_secret = sms_secret
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def deliver(self, row: Mapping) -> DeliveryResult:
        """Deliver a claimed row (joined with the caregiver's current contact details)."""
        if row["channel"] == "chat":
            if not row.get("chat_sender_id"):
                return DeliveryResult("failed", None, "no_chat_sender")
            return await self.send_chat(row["chat_sender_id"], row.get("chat_channel") or "latest",
                                        row["body"], str(row["id"]), row["idempotency_key"])
        if row["channel"] == "sms":
            if not row.get("phone"):
                return DeliveryResult("failed", None, "no_phone")
            return await self.send_sms(row["phone"], row["body"], str(row["id"]), row["idempotency_key"],
                                       int(row.get("attempts") or 0) + 1)
        return DeliveryResult("failed", None, f"unknown_channel:{row['channel']}")

    async def _post(self, url: str, body: bytes, headers: Mapping[str, str], what: str) -> DeliveryResult:
        if isinstance(self.session, LeanHTTPClient):
            try:
                status, data = await self.session.post(url, body, headers, self.timeout_s)
            except asyncio.TimeoutError:
                return DeliveryResult("retry", None, f"{what} timeout")
            except (OSError, HttpError, ValueError) as e:
                return DeliveryResult("retry", None, f"{what} {type(e).__name__}: {e}"[:300])
            outcome = classify_status(status)
            err = None if outcome == "sent" else f"HTTP {status}: {data[:200].decode('utf-8', 'replace')}"
            return DeliveryResult(outcome, status, err)
        try:
            async with self.session.post(url, data=body, headers=headers, timeout=self.timeout) as resp:
                text = await resp.text()
                outcome = classify_status(resp.status)
                err = None if outcome == "sent" else f"HTTP {resp.status}: {text[:200]}"
                return DeliveryResult(outcome, resp.status, err)
        except asyncio.TimeoutError:
            return DeliveryResult("retry", None, f"{what} timeout")
        except aiohttp.ClientError as e:
            return DeliveryResult("retry", None, f"{what} {type(e).__name__}: {e}"[:300])

    async def send_chat(self, sender_id: str, output_channel: str, text: str, reminder_id: str,
                        key: str) -> DeliveryResult:
        """``POST {RASA_URL}/conversations/{sender_id}/trigger_intent?output_channel=..&token=..``."""
        # Rasa does not decode %2B in conversation ids: keep + @ : as they are (ids from
        # the SMS and voice channels are phone numbers such as +8613812345678).
        url = f"{self.rasa_url}/conversations/{quote(sender_id, safe='+@:')}/trigger_intent?output_channel={quote(output_channel, safe='')}"
        if self.rasa_token:
            url += f"&token={quote(self.rasa_token, safe='')}"
        body = json.dumps({"name": EXTERNAL_INTENT,
                           "entities": {"reminder_text": text, "reminder_id": reminder_id}},
                          ensure_ascii=False).encode("utf-8")
        return await self._post(url, body, {"Content-Type": "application/json", "Idempotency-Key": key}, "rasa")

    async def send_sms(self, phone: str, text: str, reminder_id: str, key: str, attempt: int = 1) -> DeliveryResult:
        """POST the signed JSON message to ``SMS_GATEWAY_URL`` (same Idempotency-Key on re-sends)."""
        if not self.sms_url:
            return DeliveryResult("failed", None, "sms_disabled")
        body = json.dumps({"to": phone, "text": text, "reminder_id": reminder_id, "idempotency_key": key,
                           "attempt": attempt}, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        if self.sms_secret:
            headers["X-Signature"] = sign(body, self.sms_secret)
        res = await self._post(self.sms_url, body, headers, "sms")
        if res.outcome != "sent":
            log.info("sms to %s not sent (%s)", mask_phone(phone), res.error)
        return res
