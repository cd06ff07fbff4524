"""Conversation controls: repeat, speak slower, and pushed reminders."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.language import current_language

NOTHING_TO_REPEAT = {
    "zh": "我还没说什么呢。您想问点啥？",
    "en": "I haven't said anything yet. How can I help?",
}

# Keys of a bot event's "data" that utter_message accepts again.
_REPLAYABLE = ("buttons", "image", "attachment", "custom", "elements", "quick_replies")


def previous_bot_turn(events: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The bot messages of the turn before the latest user message.

    Walks back from the latest user message to the user message before it and
    returns the bot events in between, in order.
    """
    user_positions = [i for i, e in enumerate(events) if e.get("event") == "user"]
    if not user_positions:
        return []
    end = user_positions[-1]
    start = user_positions[-2] if len(user_positions) >= 2 else -1
    return [e for e in events[start + 1 : end] if e.get("event") == "bot"]


def replay(dispatcher: CollectingDispatcher, bot_events: List[Dict[str, Any]]) -> None:
    """Send the given bot events again, text and buttons alike."""
    for event in bot_events:
        data = event.get("data") or {}
        kwargs = {key: data[key] for key in _REPLAYABLE if data.get(key)}
        dispatcher.utter_message(text=event.get("text"), **kwargs)


class ActionRepeat(Action):
    """Say the last reply again (再说一遍 / 没听清 / repeat)."""

    def name(self) -> Text:
        return "action_repeat"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        last = previous_bot_turn(tracker.events)
        if last:
            replay(dispatcher, last)
        else:
            dispatcher.utter_message(text=NOTHING_TO_REPEAT[current_language(tracker)])
        return []


class ActionSlower(Action):
    """Speak slower from now on and say the last reply again (the rule has
    already said utter_speaking_slower)."""

    def name(self) -> Text:
        return "action_slower"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        replay(dispatcher, previous_bot_turn(tracker.events))
        return [SlotSet("speech_rate", "slow")]


def _entity(parse_data: Dict[Text, Any], name: Text) -> Any:
    return next((e.get("value") for e in parse_data.get("entities") or [] if e.get("entity") == name), None)


def reminder_already_delivered(events: List[Dict[Text, Any]], reminder_id: Any) -> bool:
    """True when an earlier push in this conversation carried the same reminder id.

    The reminders service delivers at least once: a worker that dies after the push but
    before marking it sent pushes again when its lease expires. Chat has no gateway to drop
    the repeat by its idempotency key, so the conversation does.
    """
    if reminder_id in (None, ""):
        return False
    pushes = [e for e in events if e.get("event") == "user"
              and (e.get("parse_data") or {}).get("intent", {}).get("name") == "EXTERNAL_reminder"]
    # The last push is the one being delivered now.
    return any(str(_entity(e["parse_data"], "reminder_id")) == str(reminder_id) for e in pushes[:-1])


class ActionDeliverReminder(Action):
    """Say a reminder the reminders service pushed via trigger_intent (once per reminder id)."""

    def name(self) -> Text:
        return "action_deliver_reminder"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        text = next(tracker.get_latest_entity_values("reminder_text"), None)
        reminder_id = next(tracker.get_latest_entity_values("reminder_id"), None)
        if text and not reminder_already_delivered(tracker.events, reminder_id):
            dispatcher.utter_message(text=text)
        return []

