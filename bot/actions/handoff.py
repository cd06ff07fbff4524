"""Handing a conversation to the hotline."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.language import current_language

HANDOFF_MESSAGES = {
    "zh": "好的，正在为您联系热线工作人员，请稍候。如果是紧急情况，请立即拨打120。热线电话：{hotline}。",
    "en": "OK, I'm connecting you to a hotline worker, please wait. In an emergency, call 120 (in China) or your local emergency number now. Hotline: {hotline}.",
}


def hotline_number() -> str:
    """The hotline phone number shown to users (HOTLINE_NUMBER, default 12320)."""
    return os.environ.get("HOTLINE_NUMBER", "12320")


class ActionHandoff(Action):
    """Tell the user a hotline worker will take over."""

    def name(self) -> Text:
        return "action_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        message = HANDOFF_MESSAGES[current_language(tracker)]
        dispatcher.utter_message(text=message.format(hotline=hotline_number()))
        return []
