from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.tokenizer import MixedJiebaTokenizer


def _tokenizer(tmp_path):
    return MixedJiebaTokenizer.create(
        {**MixedJiebaTokenizer.get_default_config()},
        LocalModelStorage(tmp_path),
        Resource("tokenizer"),
        ExecutionContext(graph_schema=None, model_id="t"),  # type: ignore[arg-type]
    )


def test_mixed_text_has_no_blank_tokens(tmp_path):
    tokens = _tokenizer(tmp_path).tokenize(Message({TEXT: "明天提醒我 call mom"}), TEXT)
    texts = [t.text for t in tokens]
    assert all(t.strip() for t in texts), texts
    assert "call" in texts and "mom" in texts
    assert "提醒" in texts


def test_token_offsets_still_point_into_the_text(tmp_path):
    text = "宝宝 fever 了 怎么办"
    for token in _tokenizer(tmp_path).tokenize(Message({TEXT: text}), TEXT):
        assert text[token.start : token.end] == token.text
