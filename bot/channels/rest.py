"""The REST webhook (`/webhooks/rest/webhook`) with input checks.

Replaces Rasa's `rest` channel under the same name and URL: malformed bodies
get a clean 4xx, empty and over-long messages a polite answer, everything
else goes to the bot and its replies come back in the response.
"""
from __future__ import annotations

import logging
from asyncio import CancelledError
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.validation import ChatRequest, ChatRequestError, immediate_reply, parse_chat_request
from bot.channels.webhook import webhook_blueprint

logger = logging.getLogger(__name__)


class ValidatedRestInput(InputChannel):
    """Rasa's REST channel, with checked input."""

    @classmethod
    def name(cls) -> Text:
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "ValidatedRestInput":
        return cls()

    async def handle_message(
        self,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        chat: ChatRequest,
    ) -> List[Dict[str, Any]]:
        """Run one message through the bot and collect its replies."""
        reply = immediate_reply(chat.message)
        if reply is not None:
            return [{"recipient_id": chat.sender, "text": reply}]
        collector = CollectingOutputChannel()
        try:
            await on_new_message(
                UserMessage(
                    chat.message,
                    collector,
                    chat.sender,
                    input_channel=self.name(),
                    metadata=chat.metadata,
                )
            )
        except CancelledError:
            logger.error("Message handling timed out for sender %s", chat.sender)
        except Exception:  # noqa: BLE001 - never 500 the user; Rasa logs the cause
            logger.exception("Message handling failed for sender %s", chat.sender)
        return collector.messages

    def add_routes(self, blueprint: Blueprint, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> None:
        """Extra routes of subclasses (the web chat page)."""

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = webhook_blueprint(self)

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                chat = parse_chat_request(request.body)
            except ChatRequestError as error:
                return response.json(error.as_json(), status=error.status)
            return response.json(await self.handle_message(on_new_message, chat))

        self.add_routes(webhook, on_new_message)
        return webhook
