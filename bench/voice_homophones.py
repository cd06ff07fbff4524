"""Homophone robustness: spoken questions with recognition slips vs the same typed correctly.

    nice .venv/bin/python bench/voice_homophones.py [--tsv tests/voice/homophones.tsv] [--json out.json]

Trains two NLU-only models from the project's NLU data (cached under
var/bench/voice/ by a hash of their inputs): the pipeline of config.yml as
it is ("baseline") and the same with bot.nlu.pinyin.PinyinFeaturizer after
the tokenizer ("pinyin"), and that with bot.nlu.asr_repair.HomophoneRepair as
the first step ("pinyin+repair"). For each it measures the intent accuracy on the
typed questions, on the spoken ones, and on the spoken ones after the voice
connectors' homophone repair (bot.voice.homophones). When the knowledge
base search (knowledge_base.search) can be loaded it measures the topic
accuracy (first hit) the same three ways. Results go to stdout as a
Markdown table (and JSON with --json); docs/benchmarks/voice.md quotes them.
"""
from __future__ import annotations

import argparse
import asyncio
import copy
import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "var" / "bench" / "voice"
PINYIN_STEP = {"name": "bot.nlu.pinyin.PinyinFeaturizer", "min_ngram": 1, "max_ngram": 2}
REPAIR_STEP = {"name": "bot.nlu.asr_repair.HomophoneRepair"}


def read_tsv(path: Path) -> List[Dict[str, str]]:
    """Rows of spoken / typed / intent / topic (header line first, # comments skipped)."""
    rows: List[Dict[str, str]] = []
    header: Optional[List[str]] = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if header is None:
            header = cols
            continue
        rows.append(dict(zip(header, cols)))
    return rows


def pinyin_config(config: dict) -> dict:
    """config.yml's pipeline with the pinyin featurizer right after the tokenizer."""
    out = copy.deepcopy(config)
    pipeline = out["pipeline"]
    at = next(i for i, step in enumerate(pipeline) if "Tokenizer" in step["name"]) + 1
    if not any(step["name"] == PINYIN_STEP["name"] for step in pipeline):
        pipeline.insert(at, dict(PINYIN_STEP))
    return out


def with_repair(config: dict) -> dict:
    """The pinyin pipeline with the homophone repair as its first step."""
    out = pinyin_config(config)
    if not any(step["name"] == REPAIR_STEP["name"] for step in out["pipeline"]):
        out["pipeline"].insert(0, dict(REPAIR_STEP))
    return out


def without_pinyin(config: dict) -> dict:
    out = copy.deepcopy(config)
    ours = (PINYIN_STEP["name"], REPAIR_STEP["name"])
    out["pipeline"] = [s for s in out["pipeline"] if s["name"] not in ours]
    return out


def inputs_hash(config_text: str) -> str:
    """Hash of the config, the NLU data and the project modules the config names."""
    digest = hashlib.sha256(config_text.encode())
    modules = sorted({step.rsplit(".", 1)[0] for step in re.findall(r"name: (bot\.[\w.]+)", config_text)})
    files = sorted((ROOT / "bot/data/nlu").rglob("*.yml"))
    files += [ROOT / (m.replace(".", "/") + ".py") for m in modules]
    for path in files:
        if path.is_file():
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def train(name: str, config: dict) -> Path:
    """An NLU-only model for `config` (reused when its inputs did not change)."""
    import yaml

    OUT.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(config, allow_unicode=True, sort_keys=False)
    model_name = f"{name.replace('+', '-')}-{inputs_hash(text)}"
    model = OUT / f"{model_name}.tar.gz"
    if model.exists():
        return model
    config_path = OUT / f"config-{name}.yml"
    config_path.write_text(text, encoding="utf-8")
    print(f"training {model.relative_to(ROOT)} ...", file=sys.stderr, flush=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = time.monotonic()
    log = open(OUT / f"train-{name}.log", "w", encoding="utf-8")
    subprocess.run(
        ["nice", str(Path(sys.executable).parent / "rasa"), "train", "nlu", "--config", str(config_path),
         "--nlu", "bot/data/nlu", "--domain", "bot/domain", "--out", str(OUT), "--fixed-model-name", model_name],
        cwd=ROOT, env=env, check=True, stdout=log, stderr=subprocess.STDOUT,
    )
    print(f"  trained in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return model


def intents(model: Path, texts: List[str]) -> List[str]:
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))

    async def parse_all() -> List[str]:
        out = []
        for text in texts:
            parsed = await agent.parse_message(text)
            out.append((parsed.get("intent") or {}).get("name") or "")
        return out

    return asyncio.run(parse_all())


def right(predicted: str, expected: str) -> bool:
    """`expected` may list alternatives: "poisoning_batteries_magnets|URGENT"."""
    return predicted in expected.split("|")


def accuracy(predicted: List[str], expected: List[str]) -> float:
    pairs = [(p, e) for p, e in zip(predicted, expected) if e and e != "-"]
    return 100.0 * sum(right(p, e) for p, e in pairs) / len(pairs) if pairs else float("nan")


def kb_topics(texts: List[str]) -> Optional[List[str]]:
    """First-hit topic of each text from the knowledge-base search, or None if unavailable."""
    try:
        from knowledge_base.search import load_searcher
    except Exception as error:  # noqa: BLE001 - the KB may not be installed in this checkout
        print(f"knowledge base search unavailable: {error}", file=sys.stderr)
        return None
    try:
        searcher = load_searcher(progress=False)
    except Exception as error:  # noqa: BLE001
        print(f"knowledge base search could not load: {error}", file=sys.stderr)
        return None
    topics = []
    for text in texts:
        result = searcher.search(text)
        if result.get("decision") == "urgent":
            topics.append("URGENT")
        else:
            topics.append(result["hits"][0]["topic"] if result.get("hits") else "")
    return topics


def main(argv: Optional[List[str]] = None) -> int:
    import yaml

    from bot.voice.homophones import repair_homophones

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tsv", default=str(ROOT / "tests" / "voice" / "homophones.tsv"))
    parser.add_argument("--config", default=str(ROOT / "config.yml"))
    parser.add_argument("--json", help="also write the figures as JSON here")
    parser.add_argument("--no-kb", action="store_true", help="skip the knowledge-base topic measurement")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    rows = read_tsv(Path(args.tsv))
    typed = [r["typed"] for r in rows]
    spoken = [r["spoken"] for r in rows]
    repaired = [repair_homophones(s) for s in spoken]
    expected_intents = [r["intent"] for r in rows]
    base = yaml.safe_load(Path(args.config).read_text(encoding="utf-8"))
    plain = without_pinyin(base)
    variants = {"baseline": plain, "pinyin": pinyin_config(plain), "pinyin+repair": with_repair(plain)}

    results: Dict[str, Dict[str, float]] = {}
    misses: Dict[str, List[Tuple[str, str, str]]] = {}
    for name, config in variants.items():
        model = train(name, config)
        figures = {}
        for label, texts in (("typed", typed), ("spoken", spoken), ("spoken_repaired", repaired)):
            predicted = intents(model, texts)
            figures[label] = accuracy(predicted, expected_intents)
            misses[f"{name}/{label}"] = [(t, p, e) for t, p, e in zip(texts, predicted, expected_intents)
                                          if not right(p, e)]
        results[f"intent/{name}"] = figures

    kb_rows = [r for r in rows if r["topic"] != "-"]
    if not args.no_kb and kb_rows:
        expected_topics = [r["topic"] for r in kb_rows]
        figures = {}
        for label, texts in (("typed", [r["typed"] for r in kb_rows]), ("spoken", [r["spoken"] for r in kb_rows]),
                             ("spoken_repaired", [repair_homophones(r["spoken"]) for r in kb_rows])):
            topics = kb_topics(texts)
            if topics is None:
                break
            figures[label] = accuracy(topics, expected_topics)
            misses[f"kb/{label}"] = [(t, p, e) for t, p, e in zip(texts, topics, expected_topics) if not right(p, e)]
        if figures:
            results["kb_topic"] = figures

    print(f"questions: {len(rows)} (knowledge-base questions: {len(kb_rows)})\n")
    print("| measure | typed | spoken (slips) | gap | spoken, repaired by the connector | gap |")
    print("|---|---|---|---|---|---|")
    for measure, figures in results.items():
        if len(figures) < 3:
            continue
        raw_gap = figures["typed"] - figures["spoken"]
        gap = figures["typed"] - figures["spoken_repaired"]
        print(f"| {measure} | {figures['typed']:.1f}% | {figures['spoken']:.1f}% | {raw_gap:+.1f} | "
              f"{figures['spoken_repaired']:.1f}% | {gap:+.1f} |")
    print()
    for key, items in misses.items():
        for text, got, want in items:
            print(f"miss {key}: {text} -> {got} (expected {want})")
    if args.json:
        Path(args.json).write_text(json.dumps({"questions": len(rows), "kb_questions": len(kb_rows),
                                               "results": results}, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
