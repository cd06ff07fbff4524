"""Validate the guidance files: ``python -m knowledge_base validate``.

Every rule of ``guidance/README.md`` that a machine can check is here. Rules
are pure functions over parsed YAML returning :class:`Problem` rows naming the
file and the field; :func:`main` is the thin CLI around them.
"""
from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from knowledge_base import GUIDANCE_DIR, LANGUAGES
from knowledge_base.entries import ENTRY_FIELDS, SOURCE_FIELDS, URGENCY_LEVELS, guidance_files, read_yaml, to_date
from knowledge_base.topics import load_topics

MIN_QUESTIONS = {"zh": 8, "en": 5}
VOICE_MAX_ZH_CHARS = 60
VOICE_MAX_EN_WORDS = 35
# Symbols that read badly in speech: units/ranges, brackets and quotes.
VOICE_FORBIDDEN = set("%/~+-()[]{}<>（）【】《》〈〉「」『』“”\"～＋－％／")
VOICE_FORBIDDEN_ZH_ONLY = set("‘’'")
LINK_RE = re.compile(r"https?://|www\.|\b[a-z0-9-]+\.(?:com|cn|org|gov|net)\b", re.I)
LATIN_RE = re.compile(r"[A-Za-zＡ-Ｚａ-ｚ]")


@dataclass(frozen=True)
class Problem:
    file: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message}"


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, tuple, dict)) and len(value) == 0) or (
        isinstance(value, str) and not value.strip()
    )


def check_voice_answer(text: str, language: str) -> list[str]:
    """Problems with a voice answer (plain speech, short, no links or symbols)."""
    problems: list[str] = []
    if language == "zh":
        length = len(re.sub(r"\s", "", text))
        if length > VOICE_MAX_ZH_CHARS:
            problems.append(f"too long ({length} > {VOICE_MAX_ZH_CHARS} characters, whitespace not counted)")
    else:
        words = len(text.split())
        if words > VOICE_MAX_EN_WORDS:
            problems.append(f"too long ({words} > {VOICE_MAX_EN_WORDS} words)")
    if LINK_RE.search(text):
        problems.append("contains a link")
    forbidden = VOICE_FORBIDDEN | (VOICE_FORBIDDEN_ZH_ONLY if language == "zh" else set())
    bad = sorted({ch for ch in text if ch in forbidden})
    if bad:
        problems.append("contains symbols not meant for speech: " + " ".join(bad))
    if language == "zh" and LATIN_RE.search(text):
        problems.append("contains Latin letters (say it in Chinese, e.g. 百白破 not DTaP)")
    return problems


def check_entry(raw: Any, where: str, file: str, file_topic: str, topics: Iterable[str], today: dt.date) -> list[Problem]:
    """Check one entry mapping; ``where`` is its path inside the file (``entries[0]``)."""
    out: list[Problem] = []

    def bad(field: str, message: str) -> None:
        out.append(Problem(file, f"{where}.{field}", message))

    if not isinstance(raw, dict):
        return [Problem(file, where, "entry must be a mapping")]
    for name in ENTRY_FIELDS:
        if name not in raw or _blank(raw[name]):
            bad(name, "missing field")
    language = raw.get("language")
    if language is not None and language not in LANGUAGES:
        bad("language", f"must be one of {', '.join(LANGUAGES)}, got {language!r}")
    topic = raw.get("topic", file_topic)
    if "topic" in raw and topic != file_topic:
        bad("topic", f"entry topic {topic!r} differs from the file's topic {file_topic!r}")
    urgency = raw.get("urgency")
    if urgency is not None and urgency not in URGENCY_LEVELS:
        bad("urgency", f"must be one of {', '.join(URGENCY_LEVELS)}, got {urgency!r}")
    questions = raw.get("questions")
    if questions is not None and not _blank(questions):
        if not isinstance(questions, list) or not all(isinstance(q, str) and q.strip() for q in questions):
            bad("questions", "must be a list of non-empty strings")
        elif language in MIN_QUESTIONS and len(questions) < MIN_QUESTIONS[language]:
            bad("questions", f"too few question variants ({len(questions)} < {MIN_QUESTIONS[language]} for {language})")
    for name in ("id", "title", "answer", "voice_answer", "reviewed_by"):
        if name in raw and raw[name] is not None and not isinstance(raw[name], str):
            bad(name, "must be a string")
    voice = raw.get("voice_answer")
    if isinstance(voice, str) and voice.strip() and language in LANGUAGES:
        for message in check_voice_answer(voice, language):
            bad("voice_answer", message)
    sources = raw.get("sources")
    if sources is not None and not _blank(sources):
        if not isinstance(sources, list):
            bad("sources", "must be a list")
        else:
            for i, src in enumerate(sources):
                if not isinstance(src, dict):
                    bad(f"sources[{i}]", "must be a mapping")
                    continue
                for name in SOURCE_FIELDS:
                    if _blank(src.get(name)):
                        bad(f"sources[{i}].{name}", "missing field")
    dates: dict[str, dt.date] = {}
    for name in ("reviewed_on", "review_due"):
        if name in raw and not _blank(raw[name]):
            try:
                dates[name] = to_date(raw[name])
            except (ValueError, TypeError):
                bad(name, f"not a date (YYYY-MM-DD): {raw[name]!r}")
    if "review_due" in dates and dates["review_due"] < today:
        bad("review_due", f"review is overdue ({dates['review_due']} is before {today})")
    if "reviewed_on" in dates and dates["reviewed_on"] > today:
        bad("reviewed_on", f"in the future ({dates['reviewed_on']})")
    age = raw.get("age_months")
    if age is not None and not _blank(age):
        if not (isinstance(age, list) and len(age) == 2 and all(isinstance(a, int) and a >= 0 for a in age) and age[0] <= age[1]):
            bad("age_months", f"must be [min, max] whole months with min <= max, got {age!r}")
    return out


def check_file(data: Any, file: str, topics: Sequence[str], today: dt.date) -> list[Problem]:
    """Check one parsed guidance file (named ``file``)."""
    if not isinstance(data, dict):
        return [Problem(file, "(file)", "must be a mapping with 'topic' and 'entries'")]
    out: list[Problem] = []
    topic = data.get("topic")
    if _blank(topic):
        out.append(Problem(file, "topic", "missing field"))
    elif topic not in topics:
        out.append(Problem(file, "topic", f"unknown topic {topic!r} (not one of the 66 keys in topics.yaml)"))
    elif Path(file).stem != topic:
        out.append(Problem(file, "topic", f"file must be named {topic}.yaml"))
    entries = data.get("entries")
    if _blank(entries) or not isinstance(entries, list):
        out.append(Problem(file, "entries", "missing field (a list of entries)"))
        return out
    for i, raw in enumerate(entries):
        out.extend(check_entry(raw, f"entries[{i}]", file, str(topic), topics, today))
    return out


def check_collection(files: Sequence[tuple[str, Any]], topics: Sequence[str], require_all_topics: bool) -> list[Problem]:
    """Cross-file rules: unique ids, and (optionally) zh + en entries for every topic."""
    out: list[Problem] = []
    seen: dict[str, str] = {}
    covered: set[tuple[str, str]] = set()
    for file, data in files:
        if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
            continue
        for i, raw in enumerate(data["entries"]):
            if not isinstance(raw, dict):
                continue
            entry_id = raw.get("id")
            if isinstance(entry_id, str) and entry_id:
                if entry_id in seen:
                    out.append(Problem(file, f"entries[{i}].id", f"duplicate id {entry_id!r} (also in {seen[entry_id]})"))
                else:
                    seen[entry_id] = file
            covered.add((str(raw.get("topic", data.get("topic"))), str(raw.get("language"))))
    if require_all_topics:
        for topic in topics:
            for language in LANGUAGES:
                if (topic, language) not in covered:
                    out.append(Problem(f"{topic}.yaml", "entries", f"topic {topic!r} has no {language} entry"))
    return out


def validate_directory(directory: Path, today: dt.date | None = None, require_all_topics: bool = True) -> list[Problem]:
    """Every problem of every guidance file in ``directory``."""
    today = today or dt.date.today()
    topics = list(load_topics())
    loaded: list[tuple[str, Any]] = []
    problems: list[Problem] = []
    paths = guidance_files(directory) if Path(directory).is_dir() else []
    if not Path(directory).is_dir():
        return [Problem(str(directory), "(directory)", "not a directory")]
    for path in paths:
        try:
            data = read_yaml(path)
        except Exception as exc:  # yaml.YAMLError and decoding errors
            problems.append(Problem(path.name, "(file)", f"not valid YAML: {exc}"))
            continue
        loaded.append((path.name, data))
        problems.extend(check_file(data, path.name, topics, today))
    problems.extend(check_collection(loaded, topics, require_all_topics))
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m knowledge_base validate", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=GUIDANCE_DIR, help="guidance folder (default: %(default)s)")
    parser.add_argument("--today", type=dt.date.fromisoformat, default=None, help="date to check review_due against (YYYY-MM-DD)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--require-all-topics", dest="require_all", action="store_true", default=True,
                       help="every one of the 66 topics needs a zh and an en entry (default)")
    group.add_argument("--no-require-all-topics", dest="require_all", action="store_false")
    args = parser.parse_args(argv)
    problems = validate_directory(args.dir, args.today, args.require_all)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"FAILED: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    n_files = len(guidance_files(args.dir))
    print(f"OK: {n_files} guidance files valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
