"""Jieba tokenizer that copes with mixed Chinese/English text.

Rasa's JiebaTokenizer keeps the whitespace that jieba emits between Latin
words ("提醒我 call mom" -> [提醒, 我, ' ', call, ' ', mom]; RasaHQ/rasa#7910).
Those empty tokens add noise features and break entity alignment, so we drop
them.
"""
from __future__ import annotations

from typing import List, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.shared.nlu.training_data.message import Message


def drop_blank_tokens(tokens: List[Token]) -> List[Token]:
    """Return the tokens whose text is not only whitespace."""
    return [token for token in tokens if token.text.strip()]


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=True
)
class MixedJiebaTokenizer(JiebaTokenizer):
    """JiebaTokenizer without the whitespace tokens of mixed-language text."""

    def tokenize(self, message: Message, attribute: Text) -> List[Token]:
        """Tokenize with jieba and drop blank tokens."""
        return drop_blank_tokens(super().tokenize(message, attribute))
