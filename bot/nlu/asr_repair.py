"""Repair speech-recognition homophone slips in health terms, by pinyin.

Recognisers write what they hear: 一秒 for 疫苗, 黄胆 for 黄疸, 马腮风 for
麻腮风. Where a stretch of the text has exactly the toneless pinyin of a
term of our domain but other characters, the term is put back. Only terms
whose pinyin is not shared by an everyday word are listed (体检 ~ 提前,
儿保 ~ 二宝, 补钙 ~ 不该 and 脐带 ~ 期待 are left out on purpose).

The voice connectors apply this to recognised speech before the bot sees
it. As the first step of the NLU pipeline (:class:`HomophoneRepair`) it
repairs every message, typed or spoken, so the intent classifier and the
knowledge-base action (which reads the parsed text) see the right term;
the original text stays in the parse data as ``asr_original_text``.
The pinyin features (bot.nlu.pinyin) cover the slips this list does not.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Dict, List, Text, Tuple

from pypinyin import Style, lazy_pinyin
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

DOMAIN_TERMS = (
    "疫苗", "黄疸", "麻腮风", "百白破", "卡介苗", "脊灰", "手足口", "湿疹", "辅食", "囟门", "佝偻病",
    "胆红素", "鹅口疮", "水痘", "疱疹", "痱子", "腹泻", "便秘", "肺炎", "惊厥", "抽搐", "退订", "订阅",
    "转人工", "海姆立克", "纽扣电池", "维生素", "母乳", "吐奶", "奶粉", "发烧", "退烧药", "流感",
    "乙脑", "流脑", "百日咳", "轮状病毒", "肠套叠", "尿布疹", "热性惊厥", "蓝光", "早产儿",
)
# Stretches never rewritten (a real "一秒钟" stays).
_KEEP = re.compile(r"一秒钟|几秒|每秒")
_CJK = re.compile(r"[\u3400-\u9fff]")


def syllables(text: str) -> List[str]:
    """Toneless pinyin, one syllable per Chinese character (other characters as they are)."""
    return [lazy_pinyin(ch, style=Style.NORMAL)[0] if _CJK.match(ch) else ch.lower() for ch in text]


@lru_cache(maxsize=1)
def _lexicon() -> Tuple[Tuple[Tuple[str, ...], str], ...]:
    entries = [(tuple(syllables(term)), term) for term in DOMAIN_TERMS]
    return tuple(sorted(entries, key=lambda e: -len(e[0])))


def repair_homophones(text: str) -> str:
    """Put domain terms back where the text has their sound but other characters.

    >>> repair_homophones("打完一秒发烧了")
    '打完疫苗发烧了'
    """
    if not text or not _CJK.search(text):
        return text
    keep = [m.span() for m in _KEEP.finditer(text)]
    sounds = syllables(text)
    chars = list(text)
    i = 0
    while i < len(chars):
        replaced = False
        for pinyin, term in _lexicon():
            n = len(pinyin)
            if tuple(sounds[i:i + n]) != pinyin:
                continue
            stretch = "".join(chars[i:i + n])
            if stretch == term or any(a < i + n and i < b for a, b in keep):
                continue
            if not all(_CJK.match(c) for c in stretch):
                continue
            chars[i:i + n] = list(term)
            i += n
            replaced = True
            break
        if not replaced:
            i += 1
    return "".join(chars)


ORIGINAL_TEXT = "asr_original_text"


# Registered as a featurizer only so that Rasa also runs it on the training data
# (before the tokenizer); it adds no features.
@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class HomophoneRepair(GraphComponent):
    """Rewrites homophone slips of domain terms in the message text (first in the pipeline)."""

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "HomophoneRepair":
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        """Repair each message's text in place; keep the original when it changed."""
        for message in messages:
            text = message.get(TEXT)
            if not isinstance(text, str) or not text:
                continue
            repaired = repair_homophones(text)
            if repaired != text:
                message.set(ORIGINAL_TEXT, text, add_to_output=True)
                message.set(TEXT, repaired)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process(training_data.training_examples)
        return training_data
