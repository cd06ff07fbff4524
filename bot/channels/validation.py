"""Checks on chat webhook requests, shared by every text connector.

Rasa's own REST channel answers a JSON array or a non-JSON body with a 500
and runs the bot on any text, however long. These pure functions decide
what a request may carry before it reaches the bot.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from bot.language import detect_language

MAX_BODY_BYTES = 64 * 1024
MAX_MESSAGE_CHARS = 2000
MAX_SENDER_CHARS = 128
_SENDER = re.compile(r"^[\w\-.:@+]+$")


@dataclass(frozen=True)
class ChatRequest:
    """A well-formed chat message for the bot."""

    sender: str
    message: str
    metadata: Dict[str, Any] = field(default_factory=dict)


class ChatRequestError(ValueError):
    """A request the webhook refuses, with the HTTP status to answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def as_json(self) -> Dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


def parse_chat_request(raw: Optional[bytes]) -> ChatRequest:
    """Parse a webhook body `{"sender": str, "message": str, "metadata"?: obj}`.

    Raises ChatRequestError (413 for an oversized body, 400 otherwise).
    """
    if raw is not None and len(raw) > MAX_BODY_BYTES:
        raise ChatRequestError(413, "body_too_large", f"body exceeds {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw or b"")
    except (ValueError, UnicodeDecodeError):
        raise ChatRequestError(400, "invalid_json", "body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ChatRequestError(400, "invalid_json", "body must be a JSON object")
    sender = body.get("sender")
    if not isinstance(sender, str) or not sender.strip():
        raise ChatRequestError(400, "invalid_sender", "'sender' must be a non-empty string")
    if len(sender) > MAX_SENDER_CHARS or not _SENDER.match(sender):
        raise ChatRequestError(
            400,
            "invalid_sender",
            f"'sender' must be at most {MAX_SENDER_CHARS} letters, digits or _-.:@+",
        )
    message = body.get("message", "")
    if message is None:
        message = ""
    if not isinstance(message, str):
        raise ChatRequestError(400, "invalid_message", "'message' must be a string")
    if message.lstrip().startswith("/EXTERNAL_"):
        # External intents are for our services (via the token-protected API), not users.
        raise ChatRequestError(400, "reserved_intent", "external intents cannot be sent to a webhook")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ChatRequestError(400, "invalid_metadata", "'metadata' must be an object")
    return ChatRequest(sender=sender, message=message, metadata=metadata)


# An empty message shows no language, so it is answered in both.
_EMPTY = (
    "您好像没有输入内容。请直接说出您的问题，比如“宝宝发烧怎么办”。\n"
    "Your message seems to be empty. Please type your question, e.g. \"my baby has a fever\"."
)
_TOO_LONG = {
    "zh": f"您的消息太长了（超过{MAX_MESSAGE_CHARS}字），我看不过来。请用一两句话说说最想问的问题。",
    "en": f"Your message is too long for me (over {MAX_MESSAGE_CHARS} characters). Please ask your main question in a sentence or two.",
}


def immediate_reply(message: str) -> Optional[str]:
    """A polite answer for a message the bot should not process, else None.

    Empty (or whitespace-only) messages get a bilingual prompt; over-long ones
    an answer in the message's own language (Chinese when it shows none).
    """
    if not message.strip():
        return _EMPTY
    if len(message) > MAX_MESSAGE_CHARS:
        language = detect_language(message[:500]) or "zh"
        return _TOO_LONG[language]
    return None
