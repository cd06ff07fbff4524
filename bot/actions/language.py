"""Which language to answer in, and the switch-language action."""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.language import detect_language

LANGUAGES = ("zh", "en")
_WANTS_EN = re.compile(r"英语|英文|english|eng\b", re.IGNORECASE)
_WANTS_ZH = re.compile(r"中文|汉语|普通话|国语|华语|chinese|mandarin|putonghua", re.IGNORECASE)


def current_language(tracker: Tracker) -> str:
    """The conversation's language slot, "zh" unless it says "en"."""
    return "en" if tracker.get_slot("language") == "en" else "zh"


def requested_language(text: Optional[str], current: str) -> str:
    """The language a switch request asks for; the other one if it names none."""
    text = text or ""
    wants_en, wants_zh = bool(_WANTS_EN.search(text)), bool(_WANTS_ZH.search(text))
    if wants_en and not wants_zh:
        return "en"
    if wants_zh and not wants_en:
        return "zh"
    # "switch to Chinese, not English": take the one named first in Chinese order.
    if wants_en and wants_zh:
        en_at = _WANTS_EN.search(text).start()  # type: ignore[union-attr]
        zh_at = _WANTS_ZH.search(text).start()  # type: ignore[union-attr]
        return "en" if en_at < zh_at else "zh"
    return "zh" if current == "en" else "en"


class ActionSwitchLanguage(Action):
    """Set the language the user asked for; the rule then confirms in it."""

    def name(self) -> Text:
        return "action_switch_language"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        # The slot already holds the language the request was written in, so a
        # bare "换种语言" written in Chinese switches to English.
        text = tracker.latest_message.get("text")
        return [SlotSet("language", requested_language(text, current_language(tracker)))]


class ActionDetectLanguage(Action):
    """Fills the language slot from each user message (a custom slot mapping,
    run by Rasa's action_extract_slots at the start of every turn)."""

    def name(self) -> Text:
        return "action_detect_language"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        language = detect_language(tracker.latest_message.get("text"))
        return [SlotSet("language", language)] if language else []
