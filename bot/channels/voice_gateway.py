"""A generic JSON voice gateway for Chinese telephony platforms and smart speakers.

The platform does the speech recognition and synthesis; it posts what it
recognised and gets back one short turn as plain text and as SSML.

Request: `POST /webhooks/voice_gateway/webhook`, header
`X-Signature: sha256=<hex HMAC-SHA256 of the raw body with VOICE_GATEWAY_SECRET>`::

    {"session_id": "call-123", "caller": "+8613812345678",   # caller optional
     "event": "start" | "message" | "no_input" | "end",      # default "message"
     "text": "宝宝打完一秒发烧了", "digits": "", "language": "zh"}  # language optional

Response 200::

    {"session_id": "call-123", "text": "...", "ssml": "<speak ...>...</speak>",
     "language": "zh-CN", "speech_rate": "normal" | "slow",
     "expect": ["speech", "dtmf"], "end_session": false, "has_more": false,
     "choices": [{"key": "1", "title": "好，转人工"}]}

401 for a missing or bad signature, 400/413 for malformed bodies.
"""
from __future__ import annotations

import json
import logging
import os
import re
from typing import Any, Dict, Optional, Text

from rasa.core.channels.channel import InputChannel
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.voice_common import OnNewMessage, ask_bot, slots_reader
from bot.channels.webhook import webhook_blueprint
from reminders.delivery import verify_signature
from reminders.phones import mask_phone
from bot.voice.dialog import Reply, VoiceDialog
from bot.voice.ssml import XML_LANG, build_ssml

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024
MAX_TEXT_CHARS = 500
_SESSION = re.compile(r"^[\w\-.:@+]{1,128}$")
EVENTS = ("start", "message", "no_input", "end")


def _error(status: int, code: str, message: str) -> HTTPResponse:
    return response.json({"error": {"code": code, "message": message}}, status=status)


def reply_json(session_id: str, reply: Reply) -> Dict[str, Any]:
    """The gateway's answer for one turn."""
    return {
        "session_id": session_id,
        "text": reply.text,
        "ssml": build_ssml(reply.text, reply.language, reply.speech_rate),
        "language": XML_LANG.get(reply.language, "zh-CN"),
        "speech_rate": reply.speech_rate,
        "expect": [] if reply.end else ["speech", "dtmf"],
        "end_session": reply.end,
        "has_more": reply.turn.has_more,
        "choices": [{"key": c.key, "title": c.title} for c in reply.choices],
    }


class VoiceGatewayInput(InputChannel):
    """Signed JSON in, plain text + SSML out."""

    def __init__(self, secret: Optional[str]) -> None:
        self.secret = secret
        self.dialog = VoiceDialog(medium="voice")
        if not secret:
            logger.warning("VOICE_GATEWAY_SECRET is not set: the voice_gateway webhook refuses every request (401).")

    @classmethod
    def name(cls) -> Text:
        return "voice_gateway"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "VoiceGatewayInput":
        credentials = credentials or {}
        return cls(os.environ.get("VOICE_GATEWAY_SECRET") or credentials.get("secret"))

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        webhook = webhook_blueprint(self)

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            raw = request.body or b""
            if len(raw) > MAX_BODY_BYTES:
                return _error(413, "body_too_large", f"body exceeds {MAX_BODY_BYTES} bytes")
            if not verify_signature(raw, request.headers.get("X-Signature"), self.secret):
                return _error(401, "invalid_signature", "missing or invalid X-Signature")
            try:
                body = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                return _error(400, "invalid_json", "body must be a JSON object")
            if not isinstance(body, dict):
                return _error(400, "invalid_json", "body must be a JSON object")
            session_id = body.get("session_id")
            if not isinstance(session_id, str) or not _SESSION.match(session_id):
                return _error(400, "invalid_session_id", "'session_id' must be 1-128 letters, digits or _-.:@+")
            event = body.get("event") or "message"
            if event not in EVENTS:
                return _error(400, "invalid_event", f"'event' must be one of {', '.join(EVENTS)}")
            text, digits = body.get("text") or "", body.get("digits") or ""
            if not isinstance(text, str) or not isinstance(digits, str):
                return _error(400, "invalid_text", "'text' and 'digits' must be strings")
            if len(text) > MAX_TEXT_CHARS or not re.fullmatch(r"[0-9*#]{0,20}", digits):
                return _error(400, "invalid_text", f"'text' at most {MAX_TEXT_CHARS} characters, 'digits' 0-9 * #")
            language = body.get("language") if body.get("language") in ("zh", "en") else "zh"
            caller = body.get("caller") if isinstance(body.get("caller"), str) else ""
            sender = caller if caller and _SESSION.match(caller) else session_id
            if event == "end":
                self.dialog.forget(sender)
                return response.json({"session_id": session_id, "end_session": True})
            if event == "start":
                logger.info("voice_gateway: session from %s", mask_phone(caller) or "an anonymous caller")
                return response.json(reply_json(session_id, self.dialog.greeting(sender, language)))
            if event == "no_input":
                text, digits = "", ""

            async def ask(message: str):
                return await ask_bot(on_new_message, message, sender, self.name(), {"session_id": session_id})

            reply = await self.dialog.respond(sender, text, digits, ask, slots_reader(request, sender))
            return response.json(reply_json(session_id, reply))

        return webhook
