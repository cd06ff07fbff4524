"""Detect the language of each user message (Chinese or English).

The `language` slot is filled from the `language` entity this component adds,
so every reply follows the user's language. Messages with no letters at all
(emoji, digits, "1") add nothing and the conversation keeps its language.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
# Short Latin replies that are the same in a Chinese conversation ("OK", "TD").
_NEUTRAL_WORDS = {"ok", "okay", "td", "hi", "sms"}

ENTITY_NAME = "language"


def detect_language(text: Optional[str]) -> Optional[str]:
    """Return "zh" if the text has Chinese characters, "en" if it has English
    words and no Chinese, or None when the text does not tell."""
    if not text:
        return None
    if _CJK.search(text):
        return "zh"
    words = [w.lower() for w in _LATIN_WORD.findall(text)]
    if words and not all(w in _NEUTRAL_WORDS for w in words):
        return "en"
    return None


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False
)
class LanguageDetector(GraphComponent):
    """Adds a `language` entity ("zh" or "en") to messages that show one."""

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "LanguageDetector":
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        """Add the language entity to each message in place."""
        for message in messages:
            language = detect_language(message.get(TEXT))
            if language is None:
                continue
            entity = {
                "entity": ENTITY_NAME,
                "value": language,
                "start": 0,
                "end": len(message.get(TEXT) or ""),
                "extractor": type(self).__name__,
            }
            message.set(ENTITIES, [*message.get(ENTITIES, []), entity], add_to_output=True)
        return messages
