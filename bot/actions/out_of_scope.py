"""Declining questions outside childcare, and handing over when the user insists."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.language import current_language

DECLINE = {
    "zh": "抱歉，这个我帮不上忙。我只懂育儿问题、疫苗和体检提醒、育儿活动。如果您一定要问，可以再说一次，或者说“转人工”，我请热线工作人员来回答。",
    "en": "Sorry, I can only help with childcare questions, vaccination and check-up reminders, and parenting activities. If you really need an answer, ask again or say \"human\" and a hotline worker will take it.",
}


def insists_after_decline(events: List[Dict[str, Any]], action_name: str) -> bool:
    """True when the turn before the latest user message was also declined
    by `action_name` (the user asks an out-of-scope question again)."""
    user_positions = [i for i, e in enumerate(events) if e.get("event") == "user"]
    if len(user_positions) < 2:
        return False
    previous_turn = events[user_positions[-2] + 1 : user_positions[-1]]
    return any(e.get("event") == "action" and e.get("name") == action_name for e in previous_turn)


class ActionOutOfScope(Action):
    """Decline politely; the second time in a row, hand over to the hotline."""

    def name(self) -> Text:
        return "action_out_of_scope"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        if insists_after_decline(tracker.events, self.name()):
            return [FollowupAction("action_handoff")]
        dispatcher.utter_message(text=DECLINE[current_language(tracker)])
        return []
