from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.red_flags import RedFlagIntent, override_intent


def _classified(text, intent="greet"):
    message = Message({TEXT: text})
    message.set("intent", {"name": intent, "confidence": 0.9}, add_to_output=True)
    message.set("intent_ranking", [{"name": intent, "confidence": 0.9}], add_to_output=True)
    return message


def test_emergency_is_routed_to_the_knowledge_base_action():
    component = RedFlagIntent()
    [message] = component.process([_classified("宝宝抽搐了 口吐白沫", "out_of_scope")])
    assert message.get("intent") == {"name": "ask_question", "confidence": 1.0}
    assert message.get("intent_ranking")[0]["name"] == "ask_question"


def test_other_messages_keep_their_intent():
    component = RedFlagIntent()
    [message] = component.process([_classified("你好")])
    assert message.get("intent")["name"] == "greet"
    [message] = component.process([_classified("怎么预防孩子溺水", "ask_question")])
    assert message.get("intent")["confidence"] == 0.9


def test_override_keeps_the_rest_of_the_ranking():
    parse = {"intent_ranking": [{"name": "greet", "confidence": 0.7}, {"name": "ask_question", "confidence": 0.2}]}
    fields = override_intent(parse, "ask_question")
    assert [r["name"] for r in fields["intent_ranking"]] == ["ask_question", "greet"]
