"""Lexical scoring matches jieba words and pinyin (ASR slips), and normalises scores."""
from __future__ import annotations

from knowledge_base.lexical import BM25, fuzzy_syllable, stem, tokenize

DOCS = [
    "打完疫苗发烧了怎么办 疫苗反应",  # 0
    "新生儿黄疸多久能退 黄疸值多少算高",  # 1
    "辅食几个月开始加 第一口吃什么",  # 2
    "麻腮风疫苗什么时候打",  # 3
    "how much formula should a newborn drink",  # 4
]


def best(index: BM25, query: str) -> int:
    scores = index.normalised_scores(query)
    return max(scores, key=scores.get)


def test_speech_slip_yimiao_finds_vaccine():
    index = BM25.from_texts(DOCS)
    assert "p:yimiao" in tokenize("打完一秒发烧了") and "p:yimiao" in tokenize("疫苗")
    assert best(index, "打完一秒发烧了咋整") == 0


def test_homophone_huangdan_finds_jaundice():
    index = BM25.from_texts(DOCS)
    assert best(index, "孩子黄胆咋还不退") == 1
    assert index.normalised_scores("孩子黄胆咋还不退").get(1, 0) > 0.1


def test_mashifeng_slip():
    index = BM25.from_texts(DOCS)
    assert best(index, "马腮风啥时候打") == 3


def test_english_stems():
    assert stem("drinks") == "drink" and stem("feeding") == "feed"
    index = BM25.from_texts(DOCS)
    assert best(index, "How much formula do newborns drink?") == 4


def test_scores_are_normalised_and_unknown_words_lower_them():
    index = BM25.from_texts(DOCS)
    scores = index.normalised_scores("黄疸")
    assert 0 < scores[1] <= 1.0
    diluted = index.normalised_scores("黄疸 股票 基金 汇率")
    assert diluted[1] < scores[1]
    assert index.normalised_scores("今天股票涨了没") == {} or max(index.normalised_scores("今天股票涨了没").values()) < 0.2


def test_fuzzy_pinyin_folds_accents():
    assert fuzzy_syllable("zhong") == "zon" and fuzzy_syllable("liu") == "niu" and fuzzy_syllable("shi") == "si"
