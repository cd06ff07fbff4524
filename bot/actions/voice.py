"""Voice mode from the channel: action_voice_mode fills the `voice_mode` slot.

Run by `action_extract_slots` after every user message once the slot's
mapping names it (bot/domain/core.yml)::

    voice_mode:
      type: bool
      mappings:
        - type: custom
          action: action_voice_mode

The voice connectors (twilio_voice, voice_gateway, sms) send
`{"voice_mode": true}` as message metadata; the web chat page sends
`{"voice_mode": true|false}` from its elder-friendly switch. A message
without the key leaves the slot as it is.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

VOICE_CHANNELS = ("twilio_voice", "voice_gateway", "sms")


def voice_mode_from(metadata: Optional[Dict[str, Any]], input_channel: Optional[str]) -> Optional[bool]:
    """True/False when the message says so (metadata or a voice channel), else None."""
    if isinstance(metadata, dict) and isinstance(metadata.get("voice_mode"), bool):
        return metadata["voice_mode"]
    if input_channel in VOICE_CHANNELS:
        return True
    return None


class ActionVoiceMode(Action):
    """Set voice_mode from the latest message's metadata or channel."""

    def name(self) -> Text:
        return "action_voice_mode"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        latest = tracker.latest_message or {}
        wanted = voice_mode_from(latest.get("metadata"), tracker.get_latest_input_channel())
        if wanted is None or wanted == bool(tracker.get_slot("voice_mode")):
            return []
        return [SlotSet("voice_mode", wanted)]
