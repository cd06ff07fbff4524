"""Evaluate search quality: ``python -m knowledge_base.evaluate --questions FILE.tsv --json``.

The TSV has the header ``question<TAB>language<TAB>topic``; lines starting with
``#`` are ignored; ``topic`` is a topic key, ``URGENT`` or ``OUT_OF_SCOPE``.
Metrics (one JSON object with ``--json``):

* ``top1_accuracy``: in-scope questions whose first hit has the expected topic
  and whose decision is ``answer`` or ``clarify``;
* ``recall_at_3``: in-scope questions with the expected topic among the first 3 hits;
* ``urgent_recall``: URGENT questions decided ``urgent``;
* ``false_urgent_rate``: the other questions decided ``urgent``;
* ``out_of_scope_accuracy``: OUT_OF_SCOPE questions decided ``out_of_scope``;
* ``p50_ms`` / ``p95_ms``: latency of one search, warm, one query at a time.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

URGENT = "URGENT"
OUT_OF_SCOPE = "OUT_OF_SCOPE"
HEADER = ["question", "language", "topic"]


@dataclass(frozen=True)
class Question:
    text: str
    language: str
    topic: str
    line: int


def parse_questions(text: str, source: str = "<tsv>") -> list[Question]:
    """Parse the TSV text; raises ValueError naming the line on a malformed row."""
    rows: list[Question] = []
    header_seen = False
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cols = line.split("\t")
        if not header_seen:
            if [c.strip() for c in cols] != HEADER:
                raise ValueError(f"{source}:{number}: expected header {'<TAB>'.join(HEADER)}")
            header_seen = True
            continue
        if len(cols) != 3 or not all(c.strip() for c in cols):
            raise ValueError(f"{source}:{number}: expected 3 tab-separated columns")
        rows.append(Question(cols[0].strip(), cols[1].strip(), cols[2].strip(), number))
    if not header_seen:
        raise ValueError(f"{source}: missing header")
    return rows


def read_questions(path: Path) -> list[Question]:
    return parse_questions(Path(path).read_text(encoding="utf-8"), str(path))


def _ratio(numerator: int, denominator: int) -> Optional[float]:
    return round(numerator / denominator, 4) if denominator else None


def score_results(questions: Sequence[Question], results: Sequence[dict], latencies_ms: Sequence[float]) -> dict:
    """The metrics for ``results[i]`` answering ``questions[i]`` (pure)."""
    in_scope = top1 = at3 = urgent_total = urgent_hit = other_total = false_urgent = oos_total = oos_hit = 0
    for q, r in zip(questions, results):
        decision = r["decision"]
        topics = [h["topic"] for h in r.get("hits", [])]
        if q.topic == URGENT:
            urgent_total += 1
            urgent_hit += decision == "urgent"
            continue
        other_total += 1
        false_urgent += decision == "urgent"
        if q.topic == OUT_OF_SCOPE:
            oos_total += 1
            oos_hit += decision == "out_of_scope"
            continue
        in_scope += 1
        top1 += bool(topics) and topics[0] == q.topic and decision in ("answer", "clarify")
        at3 += q.topic in topics[:3]
    lat = np.asarray(latencies_ms, dtype=float)
    return {
        "n": len(questions),
        "top1_accuracy": _ratio(top1, in_scope),
        "recall_at_3": _ratio(at3, in_scope),
        "urgent_recall": _ratio(urgent_hit, urgent_total),
        "false_urgent_rate": _ratio(false_urgent, other_total),
        "out_of_scope_accuracy": _ratio(oos_hit, oos_total),
        "p50_ms": round(float(np.percentile(lat, 50)), 2) if len(lat) else None,
        "p95_ms": round(float(np.percentile(lat, 95)), 2) if len(lat) else None,
    }


def run_queries(search: Callable[[str, str], dict], questions: Sequence[Question], warmup: int = 3) -> tuple[list[dict], list[float]]:
    """Run every question once, one at a time, after a few warm-up searches."""
    for q in questions[:warmup]:
        search(q.text, q.language)
    results, latencies = [], []
    for q in questions:
        start = time.perf_counter()
        results.append(search(q.text, q.language))
        latencies.append((time.perf_counter() - start) * 1000.0)
    return results, latencies


def errors(questions: Sequence[Question], results: Sequence[dict]) -> list[str]:
    """Readable lines for the questions that missed (for tuning)."""
    out = []
    for q, r in zip(questions, results):
        top = r["hits"][0]["topic"] if r.get("hits") else "-"
        ok = (
            (q.topic == URGENT and r["decision"] == "urgent")
            or (q.topic == OUT_OF_SCOPE and r["decision"] == "out_of_scope")
            or (q.topic not in (URGENT, OUT_OF_SCOPE) and top == q.topic and r["decision"] in ("answer", "clarify"))
        )
        if not ok:
            score = r["hits"][0]["score"] if r.get("hits") else 0
            flag = r.get("urgent", {}).get("flag", "")
            out.append(f"{q.line:4d} {q.topic:34} got {r['decision']:12} {top:34} {score:.3f} {flag} | {q.text}")
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m knowledge_base.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, required=True, help="TSV: question, language, topic")
    parser.add_argument("--mode", choices=("hybrid", "dense", "lexical"), default="hybrid")
    parser.add_argument("--json", action="store_true", help="print only one JSON object")
    parser.add_argument("--errors", action="store_true", help="also list the misses (stderr)")
    parser.add_argument("--index", choices=("flat", "ivf", "hnsw"), default="flat")
    parser.add_argument("--dir", type=Path, default=None, help="guidance folder (default: knowledge_base/guidance)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="index cache (default: var/kb)")
    args = parser.parse_args(argv)
    questions = read_questions(args.questions)
    from knowledge_base.search import load_searcher

    searcher = load_searcher(guidance_dir=args.dir, index_type=args.index, cache_dir=args.cache_dir,
                             progress=not args.json)
    results, latencies = run_queries(lambda text, lang: searcher.search(text, lang, 3, args.mode), questions)
    metrics = score_results(questions, results, latencies)
    if args.errors:
        print("\n".join(errors(questions, results)), file=sys.stderr)
    if args.json:
        print(json.dumps(metrics))
    else:
        for key, value in metrics.items():
            print(f"{key:24} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
