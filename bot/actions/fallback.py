"""Our action_default_fallback: say so in the user's language, then forget
the message so the conversation is not stuck on it."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.language import current_language

FALLBACK_MESSAGES = {
    "zh": "抱歉，我不太确定该怎么帮您。您可以换个说法，或者说“转人工”找热线工作人员。",
    "en": "Sorry, I'm not sure how to help with that. Could you rephrase, or say \"human\" to reach a hotline worker?",
}


class ActionDefaultFallback(Action):
    """Replaces Rasa's default fallback (which needs an utter_default)."""

    def name(self) -> Text:
        return "action_default_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        dispatcher.utter_message(text=FALLBACK_MESSAGES[current_language(tracker)])
        return [UserUtteranceReverted()]
