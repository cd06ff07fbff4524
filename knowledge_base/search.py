"""Hybrid search and the per-query decision.

``Searcher.search(query, language, top_k)`` returns one of four decisions:

* ``urgent``: a red flag fired (rules in :mod:`knowledge_base.red_flags`, checked
  before any search); carries what to do now and ``handoff: true``;
* ``answer``: the best topic is clear;
* ``clarify``: the two best topics are too close: ask which one was meant;
* ``out_of_scope``: nothing in the guidance fits well enough: decline.

Ranking is per topic. Each entry gets a dense score (best cosine between the
query and its title/question variants, or its answer passages less a small
penalty) and a lexical score (BM25 over jieba words + pinyin, normalised to
[0, 1]); the hybrid score is a weighted sum of the calibrated dense score and
the lexical score. The weights and thresholds live in ``calibration.yaml``
(tuned on the dev set by ``python -m knowledge_base.tune``).

CLI: ``python -m knowledge_base search "宝宝发烧怎么办"``.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import yaml

from knowledge_base import PACKAGE_DIR, red_flags
from knowledge_base.entries import Entry, format_sources
from knowledge_base.lexical import has_cjk

MODES = ("hybrid", "dense", "lexical")
DECISIONS = ("urgent", "answer", "clarify", "out_of_scope")
CALIBRATION_FILE = PACKAGE_DIR / "calibration.yaml"


@dataclass(frozen=True)
class ModeThresholds:
    out_of_scope: float  # best topic score below this -> out_of_scope
    clarify_margin: float  # top two topics closer than this -> clarify


@dataclass(frozen=True)
class SearchConfig:
    mode: str = "hybrid"
    dense_weight: float = 0.6  # hybrid = w * dense_norm + (1 - w) * lexical
    dense_lo: float = 0.80  # cosine mapped to 0 ...
    dense_hi: float = 0.97  # ... and to 1
    answer_penalty: float = 0.02  # answer passages count slightly less than question variants
    candidates: int = 256  # dense neighbours looked at
    thresholds: dict = field(default_factory=lambda: {
        "hybrid": ModeThresholds(0.45, 0.02),
        "dense": ModeThresholds(0.45, 0.01),
        "lexical": ModeThresholds(0.25, 0.02),
    })

    def for_mode(self, mode: str) -> "SearchConfig":
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        return replace(self, mode=mode)

    @property
    def active(self) -> ModeThresholds:
        return self.thresholds[self.mode]


def load_config(path: Path = CALIBRATION_FILE) -> SearchConfig:
    """Config from ``calibration.yaml`` when present, else the defaults."""
    if not Path(path).exists():
        return SearchConfig()
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    base = SearchConfig()
    thresholds = dict(base.thresholds)
    for mode, values in (data.get("thresholds") or {}).items():
        thresholds[mode] = ModeThresholds(float(values["out_of_scope"]), float(values["clarify_margin"]))
    scalars = {k: data[k] for k in ("dense_weight", "dense_lo", "dense_hi", "answer_penalty", "candidates") if k in data}
    return replace(base, thresholds=thresholds, **scalars)


@dataclass(frozen=True)
class TopicScore:
    topic: str
    score: float
    dense: float  # best raw cosine among the topic's entries
    lexical: float


def detect_language(query: str) -> str:
    return "zh" if has_cjk(query) else "en"


def stated_age_months(query: str) -> Optional[float]:
    """The child's age in months when the question states one ("6个月大",
    "3岁", "10-month-old", "新生儿"), else None."""
    compact, spaced = red_flags.normalise(query)
    years = [red_flags.parse_number(m.group("n")) for m in red_flags._ZH_YEARS.finditer(compact)]
    years += [red_flags.parse_number(m.group(1)) for m in red_flags._EN_YEARS.finditer(spaced) if m.group(1)]
    years = [y for y in years if y is not None]
    if years:
        return min(years) * 12
    if red_flags._EN_YEARS.search(spaced):  # "toddler" and no number: say nothing
        return None
    return red_flags.infant_age_months(compact, spaced)


def prefer_age_range(ranked: Sequence[TopicScore], age_ranges: dict, age: Optional[float]) -> list:
    """Topics whose entries cover the stated age first, the others after, each
    group in score order (pure). A 6-month-old's fever is not the
    under-3-months topic, however alike the words are."""
    if age is None:
        return list(ranked)
    fits = [t for t in ranked if age_ranges[t.topic][0] <= age <= age_ranges[t.topic][1]]
    rest = [t for t in ranked if not age_ranges[t.topic][0] <= age <= age_ranges[t.topic][1]]
    return fits + rest


def decide(ranked: Sequence[TopicScore], thresholds: ModeThresholds) -> str:
    """answer / clarify / out_of_scope from the ranked topic scores (pure)."""
    if not ranked or ranked[0].score < thresholds.out_of_scope:
        return "out_of_scope"
    if len(ranked) > 1 and ranked[0].score - ranked[1].score < thresholds.clarify_margin:
        return "clarify"
    return "answer"


def fuse_scores(dense: np.ndarray, lexical: np.ndarray, config: SearchConfig) -> np.ndarray:
    """Per-entry score for the configured mode (pure)."""
    dense_norm = np.clip((dense - config.dense_lo) / (config.dense_hi - config.dense_lo), 0.0, 1.0)
    if config.mode == "dense":
        return dense_norm
    if config.mode == "lexical":
        return lexical
    return config.dense_weight * dense_norm + (1.0 - config.dense_weight) * lexical


def hit_dict(entry: Entry, score: float) -> dict:
    """One search hit as returned by the service."""
    return {
        "entry_id": entry.id,
        "topic": entry.topic,
        "language": entry.language,
        "title": entry.title,
        "answer": entry.answer,
        "voice_answer": entry.voice_answer,
        "source": format_sources(entry.sources, entry.language),
        "sources": [s.as_dict() for s in entry.sources],
        "reviewed_on": entry.reviewed_on.isoformat(),
        "urgency": entry.urgency,
        "score": round(float(score), 4),
    }


class Searcher:
    """Searches one loaded :class:`~knowledge_base.index.KBIndex` with one embedder."""

    def __init__(self, index, embedder, config: Optional[SearchConfig] = None):
        self.index = index
        self.embedder = embedder
        self.config = config or load_config()
        self.by_topic: dict[str, dict[str, Entry]] = {}
        self.entry_topic = [e.topic for e in index.entries]
        for e in index.entries:
            self.by_topic.setdefault(e.topic, {})[e.language] = e
        self.topics = sorted(self.by_topic)
        # Months each topic applies to (union over its languages).
        self.age_ranges = {
            t: (min(e.age_months[0] for e in es.values()), max(e.age_months[1] for e in es.values()))
            for t, es in self.by_topic.items()
        }
        self.topic_pos = {t: i for i, t in enumerate(self.topics)}
        self.entry_topic_pos = np.array([self.topic_pos[t] for t in self.entry_topic], dtype=np.int64)

    # -- scoring -----------------------------------------------------------
    def dense_entry_scores(self, query: str) -> np.ndarray:
        """Best cosine per entry (answer passages less ``answer_penalty``)."""
        vector = self.embedder.encode_queries([query])
        k = min(self.config.candidates, self.index.size)
        sims, ids = self.index.faiss_index.search(vector, k)
        sims, ids = sims[0], ids[0]
        keep = ids >= 0
        sims, ids = sims[keep], ids[keep]
        sims = sims - self.config.answer_penalty * self.index.doc_is_answer[ids]
        scores = np.full(len(self.index.entries), -1.0, dtype=np.float32)
        np.maximum.at(scores, self.index.doc_entry[ids], sims.astype(np.float32))
        return scores

    def lexical_entry_scores(self, query: str) -> np.ndarray:
        scores = np.zeros(len(self.index.entries), dtype=np.float32)
        for i, s in self.index.bm25.normalised_scores(query).items():
            scores[i] = s
        return scores

    def rank(self, query: str, config: Optional[SearchConfig] = None) -> list[TopicScore]:
        """Topics sorted by score for ``query`` (both languages' entries count)."""
        config = config or self.config
        n = len(self.index.entries)
        dense = self.dense_entry_scores(query) if config.mode != "lexical" else np.full(n, -1.0, np.float32)
        lexical = self.lexical_entry_scores(query) if config.mode != "dense" else np.zeros(n, np.float32)
        fused = fuse_scores(dense, lexical, config)
        m = len(self.topics)
        topic_score = np.full(m, -np.inf)
        topic_dense = np.full(m, -1.0)
        topic_lex = np.zeros(m)
        np.maximum.at(topic_score, self.entry_topic_pos, fused)
        np.maximum.at(topic_dense, self.entry_topic_pos, dense)
        np.maximum.at(topic_lex, self.entry_topic_pos, lexical)
        order = np.argsort(-topic_score, kind="stable")
        return [TopicScore(self.topics[i], float(topic_score[i]), float(topic_dense[i]), float(topic_lex[i])) for i in order]

    def entry_for(self, topic: str, language: str) -> Entry:
        entries = self.by_topic[topic]
        return entries.get(language) or next(iter(entries.values()))

    # -- the service's answer -------------------------------------------------
    def search(self, query: str, language: Optional[str] = None, top_k: int = 3, mode: Optional[str] = None) -> dict:
        """Decision and ranked hits for one query (see module docstring)."""
        language = language or detect_language(query)
        config = self.config.for_mode(mode) if mode else self.config
        flag = red_flags.check(query)
        if flag is not None:
            return {"decision": "urgent", "language": language, "hits": [],
                    "urgent": red_flags.urgent_response(flag, language)}
        ranked = prefer_age_range(self.rank(query, config), self.age_ranges, stated_age_months(query))
        decision = decide(ranked, config.active)
        hits = [hit_dict(self.entry_for(t.topic, language), t.score) for t in ranked[:top_k]]
        result = {"decision": decision, "language": language, "hits": hits}
        if decision == "clarify":
            result["clarify"] = [self.entry_for(t.topic, language).title for t in ranked[:2]]
        return result


def load_searcher(model: Optional[str] = None, guidance_dir: Optional[Path] = None, index_type: str = "flat",
                  cache_dir: Optional[Path] = None, progress: bool = True) -> Searcher:
    """Embedder + (cached) index + calibration, ready to search."""
    from knowledge_base import GUIDANCE_DIR
    from knowledge_base.embedding import Embedder
    from knowledge_base.index import DEFAULT_CACHE_DIR, build_index

    embedder = Embedder(model)
    index, _ = build_index(embedder, guidance_dir or GUIDANCE_DIR, index_type, cache_dir or DEFAULT_CACHE_DIR,
                           progress=progress)
    return Searcher(index, embedder)


def format_result(result: dict) -> str:
    """Human-readable CLI output."""
    lines = [f"decision: {result['decision']}"]
    if result["decision"] == "urgent":
        lines.append(result["urgent"]["message"])
    if result.get("clarify"):
        lines.append("clarify: " + " | ".join(result["clarify"]))
    for i, hit in enumerate(result["hits"], 1):
        lines.append(f"{i}. [{hit['score']:.3f}] {hit['topic']} - {hit['title']}")
    if result["decision"] == "answer" and result["hits"]:
        top = result["hits"][0]
        lines += ["", top["answer"], "", ("来源：" if top["language"] == "zh" else "Source: ") + top["source"]]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m knowledge_base search", description="search the guidance")
    parser.add_argument("query")
    parser.add_argument("--language", choices=("zh", "en"), default=None, help="answer language (default: from the query)")
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--mode", choices=MODES, default=None)
    parser.add_argument("--json", action="store_true", help="print the service's JSON")
    args = parser.parse_args(argv)
    searcher = load_searcher(progress=True)
    result = searcher.search(args.query, args.language, args.top_k, args.mode)
    print(json.dumps(result, ensure_ascii=False, indent=1) if args.json else format_result(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
