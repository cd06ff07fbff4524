"""SMS as a text channel for feature phones.

Same signed webhook contract as the reminders service (reminders/delivery.py,
`/sms/inbound`):

- inbound: the SMS gateway POSTs `{"from": "+8613812345678", "text": "...",
  "message_id": "...", "received_at": "..."}` to `/webhooks/sms/webhook` with
  `X-Signature: sha256=<hex HMAC-SHA256 of the raw body with SMS_WEBHOOK_SECRET>`;
  we answer 202 at once (401 bad signature, 400 malformed);
- outbound: the answer, one short SMS (at most 70 Chinese characters; a long
  answer ends with "回复1看下一条"), is POSTed as signed JSON
  `{"to", "text", "idempotency_key", "reply_to", "attempt"}` to SMS_GATEWAY_URL
  with headers `Idempotency-Key` and `X-Signature`; 5xx/429/timeouts are
  retried with the same key, other 4xx are given up.

A gateway re-posting the same message_id is answered once.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import time
from collections import OrderedDict
from typing import Any, Dict, Optional, Text

import aiohttp
from rasa.core.channels.channel import InputChannel, OutputChannel
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.voice_common import OnNewMessage, ask_bot, slots_reader
from bot.channels.webhook import webhook_blueprint
from bot.language import detect_language
from bot.voice.dialog import SMS_MAX_EN_WORDS, SMS_MAX_ZH_CHARS, VoiceDialog
from bot.voice.speakable import render_turns
# The signed SMS webhook contract is the reminders service's; one implementation.
from reminders.delivery import classify_status, sign, verify_signature
from reminders.phones import mask_phone

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024
MAX_TEXT_CHARS = 1000
_PHONE = re.compile(r"^\+?\d{5,20}$")
RETRY_DELAYS = (1.0, 4.0, 15.0)


def sms_parts(text: str, language: Optional[str] = None) -> list:
    """A pushed message as short SMS texts (no "reply 1" prompts: every part is sent)."""
    language = language or detect_language(text) or "zh"
    limit = SMS_MAX_ZH_CHARS if language == "zh" else SMS_MAX_EN_WORDS
    return [t.body for t in render_turns([text], language, "", "", limit) if t.body]


class SmsOutput(OutputChannel):
    """Messages the bot sends on its own (trigger_intent with output_channel=sms, hotline replies)."""

    def __init__(self, channel: "SmsInput") -> None:
        self.channel = channel

    @classmethod
    def name(cls) -> Text:
        return "sms"

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        digest = hashlib.sha256(f"{recipient_id}:{text}:{time.time_ns()}".encode()).hexdigest()[:24]
        for number, part in enumerate(sms_parts(text), start=1):
            await self.channel.send_sms(recipient_id, part, f"sms-push:{digest}:{number}", "")


class SmsInput(InputChannel):
    """Questions by SMS, short answers by SMS."""

    def __init__(self, secret: Optional[str], gateway_url: Optional[str], timeout: float = 10.0,
                 retry_delays: tuple = RETRY_DELAYS) -> None:
        self.secret = secret
        self.gateway_url = gateway_url
        self.timeout = timeout
        self.retry_delays = retry_delays
        self.dialog = VoiceDialog(medium="sms")
        self._seen: "OrderedDict[str, None]" = OrderedDict()
        self._tasks: set = set()
        if not secret:
            logger.warning("SMS_WEBHOOK_SECRET is not set: the sms webhook refuses every request (401).")
        if not gateway_url:
            logger.warning("SMS_GATEWAY_URL is not set: SMS answers are not sent.")

    @classmethod
    def name(cls) -> Text:
        return "sms"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "SmsInput":
        credentials = credentials or {}
        return cls(
            os.environ.get("SMS_WEBHOOK_SECRET") or credentials.get("secret"),
            os.environ.get("SMS_GATEWAY_URL") or credentials.get("gateway_url"),
        )

    def get_output_channel(self) -> Optional[OutputChannel]:
        return SmsOutput(self)

    def _first_time(self, message_id: str) -> bool:
        if message_id in self._seen:
            return False
        self._seen[message_id] = None
        while len(self._seen) > 10000:
            self._seen.popitem(last=False)
        return True

    async def send_sms(self, to: str, text: str, key: str, reply_to: str) -> str:
        """POST one signed SMS to the gateway, retrying transient failures; the outcome."""
        if not self.gateway_url:
            return "disabled"
        outcome = "retry"
        for attempt, delay in enumerate((0.0, *self.retry_delays), start=1):
            if delay:
                await asyncio.sleep(delay)
            body = json.dumps({"to": to, "text": text, "idempotency_key": key, "reply_to": reply_to,
                               "attempt": attempt}, ensure_ascii=False).encode("utf-8")
            headers = {"Content-Type": "application/json", "Idempotency-Key": key}
            if self.secret:
                headers["X-Signature"] = sign(body, self.secret)
            try:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session:
                    async with session.post(self.gateway_url, data=body, headers=headers) as resp:
                        outcome = classify_status(resp.status)
            except (aiohttp.ClientError, asyncio.TimeoutError):
                outcome = "retry"
            if outcome != "retry":
                break
        if outcome != "sent":
            logger.warning("sms: answer to %s not sent (%s)", mask_phone(to), outcome)
        return outcome

    async def _answer(self, on_new_message: OnNewMessage, request: Request, phone: str, text: str,
                      message_id: str) -> None:
        async def ask(message: str):
            return await ask_bot(on_new_message, message, phone, self.name(), {"message_id": message_id})

        reply = await self.dialog.respond(phone, text, "", ask, slots_reader(request, phone))
        key = hashlib.sha256(f"sms-reply:{message_id}".encode()).hexdigest()[:32]
        await self.send_sms(phone, reply.text, key, message_id)

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        webhook = webhook_blueprint(self)

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            raw = request.body or b""
            if len(raw) > MAX_BODY_BYTES:
                return response.json({"error": {"code": "body_too_large", "message": "request body too large"}},
                                     status=413)
            if not verify_signature(raw, request.headers.get("X-Signature"), self.secret):
                return response.json({"error": {"code": "invalid_signature",
                                                "message": "missing or invalid X-Signature"}}, status=401)
            try:
                body = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                body = None
            if not isinstance(body, dict):
                return response.json({"error": {"code": "invalid_json", "message": "body must be a JSON object"}},
                                     status=400)
            phone, text = body.get("from"), body.get("text")
            if not isinstance(phone, str) or not _PHONE.match(phone.strip()):
                return response.json({"error": {"code": "invalid_phone", "message": "'from' must be a phone number"}},
                                     status=400)
            if not isinstance(text, str) or len(text) > MAX_TEXT_CHARS:
                return response.json({"error": {"code": "invalid_text",
                                                "message": f"'text' must be a string of at most {MAX_TEXT_CHARS}"}},
                                     status=400)
            phone = phone.strip()
            message_id = str(body.get("message_id") or hashlib.sha256(raw).hexdigest()[:24])
            if not self._first_time(message_id):
                return response.json({"status": "duplicate"}, status=200)
            logger.info("sms: message from %s", mask_phone(phone))
            task = asyncio.get_running_loop().create_task(
                self._answer(on_new_message, request, phone, text.strip(), message_id)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return response.json({"status": "accepted"}, status=202)

        return webhook
