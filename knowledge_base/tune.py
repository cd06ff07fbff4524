"""Calibrate fusion weights and decision thresholds: ``python -m knowledge_base.tune``.

e5 cosines sit in a narrow band (related ~0.95, unrelated ~0.84), so the
thresholds cannot be guessed: they are fitted on the dev set. Embedding and
BM25 scores are computed once per question; a small grid over the answer
penalty, the dense weight and the out-of-scope threshold is then searched in
numpy, separately for each mode (so the dense-only and lexical-only baselines
are tuned as fairly as the hybrid). The objective is the share of in-scope
questions answered with the right topic plus out-of-scope questions declined.
The clarify margin is chosen afterwards: clarify is worth it when the first
topic is wrong but the second is right, and should stay rare. Results go to
``calibration.yaml``; check them on the held-out file, never tune on it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import yaml

from knowledge_base import PACKAGE_DIR, red_flags
from knowledge_base.evaluate import OUT_OF_SCOPE, URGENT, read_questions
from knowledge_base.search import CALIBRATION_FILE, SearchConfig

PENALTIES = (0.0, 0.01, 0.02, 0.03, 0.05)
WEIGHTS = tuple(round(w, 2) for w in np.arange(0.0, 1.0001, 0.05))
MARGINS = (0.0, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04)
MAX_CLARIFY_RATE = 0.10


def collect(searcher, questions) -> dict:
    """Per question: red flag, per-entry best question/answer cosines and lexical scores."""
    idx = searcher.index
    n_entries = len(idx.entries)
    dense_q, dense_a, lexical, urgent = [], [], [], []
    for q in questions:
        urgent.append(red_flags.check(q.text) is not None)
        vector = searcher.embedder.encode_queries([q.text])
        sims, ids = idx.faiss_index.search(vector, idx.size)
        sims, ids = sims[0], ids[0]
        dq = np.full(n_entries, -1.0, np.float32)
        da = np.full(n_entries, -1.0, np.float32)
        is_answer = idx.doc_is_answer[ids]
        np.maximum.at(dq, idx.doc_entry[ids[~is_answer]], sims[~is_answer])
        np.maximum.at(da, idx.doc_entry[ids[is_answer]], sims[is_answer])
        dense_q.append(dq)
        dense_a.append(da)
        lexical.append(searcher.lexical_entry_scores(q.text))
    return {"dense_q": np.array(dense_q), "dense_a": np.array(dense_a), "lexical": np.array(lexical),
            "urgent": np.array(urgent)}


def topic_scores(searcher, data: dict, mode: str, weight: float, penalty: float, cfg: SearchConfig) -> np.ndarray:
    """[questions x topics] fused scores."""
    dense = np.maximum(data["dense_q"], data["dense_a"] - penalty)
    dense_norm = np.clip((dense - cfg.dense_lo) / (cfg.dense_hi - cfg.dense_lo), 0, 1)
    if mode == "dense":
        fused = dense_norm
    elif mode == "lexical":
        fused = data["lexical"]
    else:
        fused = weight * dense_norm + (1 - weight) * data["lexical"]
    out = np.full((fused.shape[0], len(searcher.topics)), -np.inf)
    for col in range(fused.shape[1]):
        t = searcher.entry_topic_pos[col]
        out[:, t] = np.maximum(out[:, t], fused[:, col])
    return out


def fit_mode(searcher, questions, data, mode: str, cfg: SearchConfig) -> dict:
    labels = [q.topic for q in questions]
    in_scope = np.array([t not in (URGENT, OUT_OF_SCOPE) for t in labels]) & ~data["urgent"]
    oos = np.array([t == OUT_OF_SCOPE for t in labels]) & ~data["urgent"]
    expected = np.array([searcher.topic_pos.get(t, -1) for t in labels])
    n_in = sum(t not in (URGENT, OUT_OF_SCOPE) for t in labels)
    n_oos = sum(t == OUT_OF_SCOPE for t in labels)
    best = None
    weights = WEIGHTS if mode == "hybrid" else (1.0,)
    penalties = PENALTIES if mode != "lexical" else (0.0,)
    for penalty in penalties:
        for weight in weights:
            scores = topic_scores(searcher, data, mode, weight, penalty, cfg)
            top = scores.argmax(axis=1)
            top_score = scores.max(axis=1)
            right = top == expected
            candidates = np.unique(np.round(top_score, 4))
            for j, value in enumerate(candidates):
                # midway to the next lower score: not glued to one dev question
                threshold = (value + candidates[j - 1]) / 2 if j > 0 else value
                answered = top_score >= threshold
                correct_in = int((in_scope & right & answered).sum())
                correct_oos = int((oos & ~answered).sum())
                objective = (correct_in + correct_oos) / max(n_in + n_oos, 1)
                key = (objective, correct_in, -abs(weight - 0.5))
                if best is None or key > best[0]:
                    best = (key, {"weight": float(weight), "penalty": float(penalty), "threshold": float(threshold),
                                  "top1": correct_in / max(n_in, 1), "oos": correct_oos / max(n_oos, 1)})
    params = best[1]
    scores = topic_scores(searcher, data, mode, params["weight"], params["penalty"], cfg)
    order = np.argsort(-scores, axis=1)
    s1 = np.take_along_axis(scores, order[:, :1], 1)[:, 0]
    s2 = np.take_along_axis(scores, order[:, 1:2], 1)[:, 0]
    answered = in_scope & (s1 >= params["threshold"])
    wrong_but_second = answered & (order[:, 0] != expected) & (order[:, 1] == expected)
    right_first = answered & (order[:, 0] == expected)
    best_margin, best_gain = 0.0, 0.0
    for margin in MARGINS:
        clarify = answered & (s1 - s2 < margin)
        if clarify.sum() > MAX_CLARIFY_RATE * max(answered.sum(), 1):
            break
        gain = (clarify & wrong_but_second).sum() - 0.25 * (clarify & right_first).sum()
        if gain > best_gain:
            best_margin, best_gain = margin, gain
    params["clarify_margin"] = float(best_margin)
    return params


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m knowledge_base.tune", description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=PACKAGE_DIR / "eval" / "dev_questions.tsv")
    parser.add_argument("--out", type=Path, default=CALIBRATION_FILE)
    args = parser.parse_args(argv)
    from knowledge_base.search import load_searcher

    searcher = load_searcher(progress=False)
    cfg = SearchConfig()
    questions = read_questions(args.questions)
    data = collect(searcher, questions)
    fitted = {mode: fit_mode(searcher, questions, data, mode, cfg) for mode in ("hybrid", "dense", "lexical")}
    for mode, p in fitted.items():
        print(f"{mode:8} weight={p['weight']:.2f} penalty={p['penalty']:.2f} threshold={p['threshold']:.3f} "
              f"margin={p['clarify_margin']:.3f} top1={p['top1']:.3f} oos={p['oos']:.3f}", file=sys.stderr)
    hybrid = fitted["hybrid"]
    calibration = {
        "dense_weight": hybrid["weight"],
        "answer_penalty": hybrid["penalty"],
        "dense_lo": cfg.dense_lo,
        "dense_hi": cfg.dense_hi,
        "thresholds": {m: {"out_of_scope": round(p["threshold"], 4), "clarify_margin": p["clarify_margin"]}
                       for m, p in fitted.items()},
    }
    header = (f"# Fitted by `python -m knowledge_base.tune` on {args.questions.name} ({len(questions)} questions).\n"
              "# hybrid score = dense_weight * clip((cosine - dense_lo) / (dense_hi - dense_lo)) + (1 - dense_weight) * lexical\n"
              "# The dense-only baseline uses the same answer_penalty as the hybrid.\n")
    args.out.write_text(header + yaml.safe_dump(calibration, sort_keys=False), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
