"""What the voice-like connectors (phone, voice gateway, SMS) share.

- run one message through the bot and collect its replies;
- read the conversation's `language` and `speech_rate` slots after it,
  when the connector runs inside a Rasa server (the agent is on the app);
- mark every message with `{"voice_mode": true, "channel": ...}` metadata so
  actions can answer in spoken form (e.g. the knowledge base's voice_answer).
"""
from __future__ import annotations

import logging
from asyncio import CancelledError
from typing import Any, Awaitable, Callable, Dict, List, Optional

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from sanic.request import Request

logger = logging.getLogger(__name__)

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]


async def ask_bot(
    on_new_message: OnNewMessage,
    text: str,
    sender: str,
    channel: str,
    metadata: Optional[Dict[str, Any]] = None,
) -> List[Dict[str, Any]]:
    """Run one message through the bot; its replies (never raises)."""
    collector = CollectingOutputChannel()
    meta = {"voice_mode": True, "channel": channel, **(metadata or {})}
    try:
        await on_new_message(UserMessage(text, collector, sender, input_channel=channel, metadata=meta))
    except CancelledError:
        logger.error("Message handling timed out for a %s caller", channel)
    except Exception:  # noqa: BLE001 - a caller must always hear something
        logger.exception("Message handling failed for a %s caller", channel)
    return collector.messages


def slots_reader(request: Request, sender: str) -> Optional[Callable[[], Awaitable[Dict[str, Any]]]]:
    """A coroutine factory reading language and speech_rate from the tracker, if Rasa runs us."""
    agent = getattr(getattr(request.app, "ctx", None), "agent", None)
    store = getattr(agent, "tracker_store", None)
    if store is None:
        return None

    async def read() -> Dict[str, Any]:
        tracker = await store.retrieve(sender)
        if tracker is None:
            return {}
        slots = {name: tracker.get_slot(name) for name in ("language", "speech_rate", "voice_mode")}
        slots["intent"] = (tracker.latest_message.intent or {}).get("name") if tracker.latest_message else None
        return slots

    return read
