"""Emergencies always reach the knowledge-base action.

The knowledge base checks red flags by rule before any search, but only if
the message gets there. Whatever DIET predicted ("宝宝抽了" might look like
anything), a message that matches a red-flag rule is classified as
`ask_question` with full confidence, so `action_answer_question` gives the
urgent advice and hands over to the hotline.
"""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from knowledge_base.red_flags import check

URGENT_INTENT = "ask_question"


def override_intent(parse: Dict[str, Any], intent: str) -> Dict[str, Any]:
    """Return `parse`'s intent fields with `intent` first at confidence 1."""
    ranking = [r for r in parse.get("intent_ranking") or [] if r.get(INTENT_NAME_KEY) != intent]
    top = {INTENT_NAME_KEY: intent, PREDICTED_CONFIDENCE_KEY: 1.0}
    return {"intent": top, "intent_ranking": [top, *ranking]}


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class RedFlagIntent(GraphComponent):
    """Routes red-flag messages to the knowledge-base action."""

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "RedFlagIntent":
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT)
            if not text or check(text) is None:
                continue
            fields = override_intent(
                {"intent_ranking": message.get("intent_ranking")}, URGENT_INTENT
            )
            message.set(INTENT, fields["intent"], add_to_output=True)
            message.set("intent_ranking", fields["intent_ranking"], add_to_output=True)
        return messages
