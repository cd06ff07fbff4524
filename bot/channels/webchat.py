"""Local web chat: a page at `/webhooks/webchat/` and a push-capable channel.

Replies to the user's own messages come back in the webhook response, like
REST. Messages the bot sends on its own (reminders via trigger_intent with
`output_channel=webchat`, hotline replies) go to a persistent outbox that
the page polls at `/webhooks/webchat/outbox`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.outbox import Outbox
from bot.channels.rest import ValidatedRestInput

PAGE = Path(__file__).parent / "static" / "webchat.html"
DEFAULT_OUTBOX = "var/webchat_outbox.db"


class WebChatOutput(OutputChannel):
    """Stores pushed messages in the outbox for the page to fetch."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    @classmethod
    def name(cls) -> Text:
        return "webchat"

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        # Keep the whole message (text, buttons, custom) as the page renders it.
        self.outbox.put(recipient_id, {k: v for k, v in message.items() if v is not None})


class WebChatInput(ValidatedRestInput):
    """The web chat page's channel."""

    def __init__(self, outbox_path: str) -> None:
        self.outbox = Outbox(outbox_path)

    @classmethod
    def name(cls) -> Text:
        return "webchat"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "WebChatInput":
        credentials = credentials or {}
        path = os.environ.get("WEBCHAT_OUTBOX") or credentials.get("outbox") or DEFAULT_OUTBOX
        return cls(path)

    def get_output_channel(self) -> Optional[OutputChannel]:
        return WebChatOutput(self.outbox)

    def add_routes(
        self, blueprint: Blueprint, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> None:
        page = PAGE.read_text(encoding="utf-8")

        @blueprint.route("/chat", methods=["GET"])
        async def chat_page(request: Request) -> HTTPResponse:
            return response.html(page)

        @blueprint.route("/outbox", methods=["GET"])
        async def outbox(request: Request) -> HTTPResponse:
            sender = request.args.get("sender", "")
            try:
                after = int(request.args.get("after", "0"))
            except ValueError:
                return response.json(
                    {"error": {"code": "invalid_after", "message": "'after' must be an integer"}},
                    status=400,
                )
            if not sender:
                return response.json(
                    {"error": {"code": "invalid_sender", "message": "'sender' is required"}},
                    status=400,
                )
            return response.json(
                {"messages": self.outbox.after(sender, after), "last_id": self.outbox.last_id(sender)}
            )
