"""The pinyin featurizer: slips that sound alike get the same features."""
from __future__ import annotations

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.pinyin import PinyinFeaturizer, fuzzy_syllable, to_pinyin
from bot.nlu.tokenizer import MixedJiebaTokenizer
from bot.voice.homophones import repair_homophones


@pytest.mark.parametrize(
    "slip, right",
    [("一秒", "疫苗"), ("黄胆", "黄疸"), ("马腮风", "麻腮风"), ("付食", "辅食"), ("退定", "退订")],
)
def test_slips_and_terms_sound_the_same(slip, right):
    assert to_pinyin(slip) == to_pinyin(right)


def test_fuzzy_merges_confusable_sounds_only_for_chinese():
    assert fuzzy_syllable("shi") == "si" and fuzzy_syllable("neng") == "len" and fuzzy_syllable("huang") == "huan"
    assert to_pinyin("MMR疫苗") == "mmr yi miao"
    assert to_pinyin("是", fuzzy=False) == "shi" and to_pinyin("是") == "si"


@pytest.fixture
def components(tmp_path):
    storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(node_name="pinyin", graph_schema=None)  # type: ignore[arg-type]
    tokenizer = MixedJiebaTokenizer.create(
        {**MixedJiebaTokenizer.get_default_config()}, storage, Resource("tok"), context
    )
    featurizer = PinyinFeaturizer.create(
        {**PinyinFeaturizer.get_default_config()}, storage, Resource("pinyin"), context
    )
    return tokenizer, featurizer


def sentence_vector(featurizer, tokenizer, text):
    message = Message(data={TEXT: text})
    tokenizer.process([message])
    featurizer.process([message])
    seq, sentence = message.get_sparse_features(TEXT)
    return seq.features, sentence.features.toarray()[0]


def test_featurizer_gives_slip_and_typed_question_the_same_sentence_features(components):
    tokenizer, featurizer = components
    examples = [Message(data={TEXT: t, "intent": "ask_question"})
                for t in ["打完疫苗发烧了咋办", "黄疸多久能退", "麻腮风打完起疹子", "辅食几个月加"]]
    examples += [Message(data={TEXT: t, "intent": "greet"}) for t in ["你好", "在吗", "hello there"]]
    data = TrainingData(examples)
    tokenizer.process_training_data(data)
    featurizer.train(data)
    featurizer.process_training_data(data)

    _, typed = sentence_vector(featurizer, tokenizer, "宝宝打完疫苗发烧")
    _, slipped = sentence_vector(featurizer, tokenizer, "宝宝打完一秒发烧")
    assert typed.sum() > 0 and np.array_equal(typed, slipped)
    seq, _ = sentence_vector(featurizer, tokenizer, "孙子黄胆不退")
    message = Message(data={TEXT: "孙子黄胆不退"})
    tokenizer.process([message])
    # One row per token, so it lines up with the other featurizers' sequence features.
    assert seq.shape[0] == len(message.get("text_tokens"))
    # Only the text is featurized: intent labels keep Rasa's own featurizers.
    assert list(featurizer.vectorizers) == [TEXT]


def test_repair_keeps_everyday_words():
    assert repair_homophones("等一秒钟再说") == "等一秒钟再说"
    assert repair_homophones("提前提醒我二宝体检") == "提前提醒我二宝体检"
    assert repair_homophones("宝宝打完一秒发烧") == "宝宝打完疫苗发烧"
    assert repair_homophones("hello") == "hello"


def test_homophone_set_is_large_and_unseen_in_training_data():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    lines = [l for l in (root / "tests/voice/homophones.tsv").read_text(encoding="utf-8").splitlines()
             if l.strip() and not l.startswith("#")]
    header, rows = lines[0].split("\t"), [l.split("\t") for l in lines[1:]]
    assert header == ["spoken", "typed", "intent", "topic"]
    assert len(rows) >= 40 and all(len(r) == 4 and r[0] != r[1] for r in rows)
    seen = ""
    for pattern in ("bot/data/**/*.yml", "knowledge_base/guidance/*.yaml", "knowledge_base/eval/*", "tests/nlu/*"):
        for path in root.glob(pattern):
            seen += path.read_text(encoding="utf-8")
    assert [r[0] for r in rows if r[0] in seen] == []


def test_repair_component_rewrites_text_and_keeps_the_original():
    from bot.nlu.asr_repair import ORIGINAL_TEXT, HomophoneRepair

    slipped, clean = Message(data={TEXT: "俺孙子黄胆一直不退"}), Message(data={TEXT: "宝宝发烧了"})
    HomophoneRepair().process([slipped, clean])
    parsed = slipped.as_dict(only_output_properties=True)
    assert parsed[TEXT] == "俺孙子黄疸一直不退" and parsed[ORIGINAL_TEXT] == "俺孙子黄胆一直不退"
    assert clean.as_dict(only_output_properties=True) == {TEXT: "宝宝发烧了"}
    data = TrainingData([Message(data={TEXT: "马腮风打完起疹子", "intent": "ask_question"})])
    HomophoneRepair().process_training_data(data)
    assert data.training_examples[0].get(TEXT) == "麻腮风打完起疹子"
