"""Pinyin features, so speech-recognition homophone slips keep their meaning.

A recogniser writes what it hears: 一秒 for 疫苗, 黄胆 for 黄疸, 马腮风 for
麻腮风. Word and character features of the slip share nothing with the
right word, but the sound is the same. This featurizer is Rasa's
CountVectorsFeaturizer over the *toneless pinyin* of each token instead of
its characters: 疫苗 and 一秒 both become "yi miao" and give the same
syllable unigrams and bigrams (sequence features per token, sentence
features over the whole message). With ``fuzzy`` (default) the initials and
finals that many southern and older speakers merge are merged too
(zh/z, ch/c, sh/s, n/l, -ang/-an, -eng/-en, -ing/-in).

Pipeline (after the tokenizer, next to the other featurizers)::

    - name: bot.nlu.pinyin.PinyinFeaturizer
      min_ngram: 1
      max_ngram: 2
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Dict, List, Text

from pypinyin import Style, lazy_pinyin
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

_CJK = re.compile(r"[\u3400-\u9fff]")
_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"))
_FINALS = (("ang", "an"), ("eng", "en"), ("ing", "in"))


def fuzzy_syllable(syllable: str) -> str:
    """Merge the sounds often confused in recognition and dialect: shi -> si, ning -> lin."""
    for long, short in _INITIALS:
        if syllable.startswith(long):
            syllable = short + syllable[len(long):]
            break
    else:
        if syllable.startswith("n") and len(syllable) > 1 and syllable != "ng":
            syllable = "l" + syllable[1:]
    for long, short in _FINALS:
        if syllable.endswith(long):
            syllable = syllable[: -len(long)] + short
            break
    return syllable


@lru_cache(maxsize=20000)
def to_pinyin(text: str, fuzzy: bool = True) -> str:
    """Toneless pinyin syllables separated by spaces; non-Chinese text kept (lowercased).

    >>> to_pinyin("打一秒")
    'da yi miao'
    """
    out: List[str] = []
    for piece in lazy_pinyin(text, style=Style.NORMAL, errors="default"):
        piece = piece.strip().lower()
        if not piece:
            continue
        if piece.isascii() and piece.isalpha() and fuzzy:
            out.append(fuzzy_syllable(piece) if _is_syllable_chunk(text, piece) else piece)
        else:
            out.append(piece)
    return " ".join(out)


def _is_syllable_chunk(text: str, piece: str) -> bool:
    # pypinyin keeps Latin words as they are; only syllables of Chinese characters are merged.
    return bool(_CJK.search(text)) and piece not in text.lower()


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class PinyinFeaturizer(CountVectorsFeaturizer):
    """Bag of pinyin syllables (and syllable n-grams) of the message text."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            **CountVectorsFeaturizer.get_default_config(),
            "analyzer": "word",
            "min_ngram": 1,
            "max_ngram": 2,
            "fuzzy": True,
        }

    @staticmethod
    def _attributes_for(analyzer: Text) -> List[Text]:
        # Only the user's text: intents and actions keep Rasa's own featurizers.
        return [TEXT]

    def _get_message_tokens_by_attribute(self, message: Message, attribute: Text) -> List[Text]:
        tokens = super()._get_message_tokens_by_attribute(message, attribute)
        if attribute != TEXT:
            return tokens
        fuzzy = bool(self._config.get("fuzzy", True))
        return [to_pinyin(token, fuzzy) for token in tokens]
