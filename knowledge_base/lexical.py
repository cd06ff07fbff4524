"""Lexical scoring: BM25 over jieba words and toneless pinyin.

Chinese text becomes words (jieba), each word's toneless pinyin, and pinyin
syllable unigrams and bigrams, so speech-recognition slips that sound alike
still match (一秒 -> yimiao = 疫苗, 黄胆 -> huangdan = 黄疸, 马腮风 = 麻腮风).
Pinyin is "fuzzy" (zh/z, ch/c, sh/s, -ng/-n, l/n) to absorb accents.
English text becomes lower-cased, lightly stemmed words.

Scores are normalised to [0, 1]: the BM25 score divided by the best score the
query could reach (every query term matched with saturated frequency), so
they are comparable across queries and usable for out-of-scope decisions.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Sequence

CJK_RE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
ZH_STOP = set("的 了 吗 呢 啊 吧 呀 嘛 么 哦 噢 哈 啦 喽 嘞 哇 和 与 及 或 是 在 有 我 你 他 她 它 我们 咱 俺 这 那 这个 那个 一个 个 也 都 就 还 又 很 太 吗 么 呗 咧".split())
EN_STOP = set("""a an the and or but if of to in on at for with from by as is are was were be been being am do does did
doing have has had having i me my we our you your he him his she her it its they them their this that these those
what which who whom how when where why can could should would will shall may might must there here so than too very
just about into over under up down out off again then once any some all each other such no not only own same s t
don't isn't aren't wasn't weren't i'm it's what's how's baby baby's child child's kid kids""".split())
FUZZY_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"))


def has_cjk(text: str) -> bool:
    return bool(CJK_RE.search(text))


def fuzzy_syllable(syllable: str) -> str:
    """Fold pinyin distinctions that accents and ASR blur (zh/z, -ng/-n, l/n ...)."""
    s = syllable
    for a, b in FUZZY_INITIALS:
        if s.startswith(a):
            s = b + s[len(a):]
            break
    if s.startswith("l"):
        s = "n" + s[1:]
    if s.endswith("ng") and len(s) > 2:
        s = s[:-1]
    return s


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(60)
    jieba.initialize()
    return jieba


@lru_cache(maxsize=50000)
def _pinyin(word: str) -> tuple[str, ...]:
    from pypinyin import Style, lazy_pinyin

    return tuple(fuzzy_syllable(p) for p in lazy_pinyin(word, style=Style.NORMAL, errors="ignore") if p.isalpha())


def stem(word: str) -> str:
    """Very small English stemmer (plural, -ing, -ed) good enough for matching."""
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: len(word) - len(suffix)] + repl
    return word


def tokenize(text: str) -> list[str]:
    """Lexical terms of ``text`` (Chinese words + pinyin, English stems), prefixed by kind."""
    text = text.lower()
    terms: list[str] = []
    if has_cjk(text):
        syllables: list[str] = []
        for word in _jieba().lcut(text):
            word = word.strip()
            if not word:
                continue
            if CJK_RE.search(word):
                py = _pinyin(word)
                syllables.extend(py)
                if word in ZH_STOP:
                    continue
                terms.append("w:" + word)
                if len(py) > 1:
                    terms.append("p:" + "".join(py))
            else:
                for w in WORD_RE.findall(word):
                    if w not in EN_STOP:
                        terms.append("e:" + stem(w))
        terms.extend("s:" + s for s in syllables)
        terms.extend("b:" + a + "_" + b for a, b in zip(syllables, syllables[1:]))
    else:
        words = [w for w in WORD_RE.findall(text)]
        stems = [stem(w) for w in words if w not in EN_STOP]
        terms.extend("e:" + s for s in stems)
        terms.extend("eb:" + a + "_" + b for a, b in zip(stems, stems[1:]))
    return terms


# Weight of each kind of term: whole words count more than single syllables.
KIND_WEIGHT = {"w": 1.0, "p": 1.0, "b": 0.7, "s": 0.25, "e": 1.0, "eb": 0.6}


def _kind(term: str) -> str:
    return term.split(":", 1)[0]


@dataclass
class BM25:
    """BM25 over pre-tokenised documents, with query-normalised scores."""

    k1: float = 1.2
    b: float = 0.5
    docs: list[Counter] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    df: Counter = field(default_factory=Counter)
    postings: dict = field(default_factory=dict)
    avgdl: float = 1.0
    max_idf: float = 1.0

    @classmethod
    def from_texts(cls, texts: Sequence[str], **kw) -> "BM25":
        return cls.from_terms([tokenize(t) for t in texts], **kw)

    @classmethod
    def from_terms(cls, term_lists: Sequence[Iterable[str]], **kw) -> "BM25":
        index = cls(**kw)
        for i, terms in enumerate(term_lists):
            counts = Counter(terms)
            index.docs.append(counts)
            index.lengths.append(sum(counts.values()))
            for term in counts:
                index.df[term] += 1
                index.postings.setdefault(term, []).append(i)
        index.avgdl = (sum(index.lengths) / len(index.lengths)) if index.lengths else 1.0
        n = max(len(index.docs), 1)
        index.max_idf = math.log(1 + (n - 0.5) / 1.5)
        return index

    def idf(self, term: str) -> float:
        """Robertson idf (never negative); terms never seen get the idf of a very rare term."""
        df = self.df.get(term, 0)
        if df == 0:
            return self.max_idf
        n = len(self.docs)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))

    def scores(self, query_terms: Sequence[str]) -> tuple[dict[int, float], float]:
        """(raw BM25 score per matching doc, best reachable score for this query)."""
        counts = Counter(query_terms)
        out: dict[int, float] = {}
        ceiling = 0.0
        for term, qtf in counts.items():
            weight = KIND_WEIGHT.get(_kind(term), 1.0) * self.idf(term) * (1 + math.log(qtf))
            ceiling += weight * (self.k1 + 1)
            for i in self.postings.get(term, ()):
                tf = self.docs[i][term]
                norm = self.k1 * (1 - self.b + self.b * self.lengths[i] / self.avgdl)
                out[i] = out.get(i, 0.0) + weight * tf * (self.k1 + 1) / (tf + norm)
        return out, ceiling

    def normalised_scores(self, query: str | Sequence[str]) -> dict[int, float]:
        """Scores in [0, 1] relative to the query's best reachable score."""
        terms = tokenize(query) if isinstance(query, str) else list(query)
        raw, ceiling = self.scores(terms)
        if ceiling <= 0:
            return {}
        return {i: min(1.0, s / ceiling) for i, s in raw.items()}
