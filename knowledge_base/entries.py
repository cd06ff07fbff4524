"""Guidance entries: the data model and loading from ``guidance/*.yaml``.

The file format is described in ``guidance/README.md``. Loading here is
lenient about shape (the validator in :mod:`knowledge_base.validate` is the
strict gate); :func:`load_entries` expects files that validate.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

ENTRY_FIELDS = (
    "id",
    "language",
    "title",
    "questions",
    "answer",
    "voice_answer",
    "sources",
    "reviewed_by",
    "reviewed_on",
    "review_due",
    "age_months",
    "urgency",
)
SOURCE_FIELDS = ("organisation", "document", "edition")
URGENCY_LEVELS = ("routine", "see_doctor", "emergency")


@dataclass(frozen=True)
class Source:
    organisation: str
    document: str
    edition: str = ""
    url: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "organisation": self.organisation,
            "document": self.document,
            "edition": self.edition,
            "url": self.url,
        }


@dataclass(frozen=True)
class Entry:
    id: str
    topic: str
    language: str
    title: str
    questions: tuple[str, ...]
    answer: str
    voice_answer: str
    sources: tuple[Source, ...]
    reviewed_by: str
    reviewed_on: dt.date
    review_due: dt.date
    age_months: tuple[int, int]
    urgency: str
    file: str = field(default="", compare=False)


def to_date(value: Any) -> dt.date:
    """Accept a YAML date or an ISO ``YYYY-MM-DD`` string; raise ValueError otherwise."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return dt.date.fromisoformat(value.strip())
    raise ValueError(f"not a date: {value!r}")


def format_source(source: Source, language: str) -> str:
    """One-line citation: zh ``机构《文件》版本``, en ``Organisation, Document, edition``."""
    if language == "zh":
        text = f"{source.organisation}《{source.document}》"
        return f"{text}{source.edition}" if source.edition else text
    parts = [source.organisation, source.document] + ([source.edition] if source.edition else [])
    return ", ".join(parts)


def format_sources(sources: Iterable[Source], language: str) -> str:
    """All sources on one line, separated by ``；`` (zh) or ``; `` (en)."""
    sep = "；" if language == "zh" else "; "
    return sep.join(format_source(s, language) for s in sources)


def guidance_files(directory: Path) -> list[Path]:
    """The guidance files of ``directory`` (``*.yaml`` / ``*.yml``), sorted."""
    return sorted(p for p in Path(directory).iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def read_yaml(path: Path) -> Any:
    """Parse one YAML file."""
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def parse_entry(raw: dict, file_topic: str, file: str = "") -> Entry:
    """Build an :class:`Entry` from one already-validated mapping."""
    age = raw.get("age_months") or [0, 36]
    return Entry(
        id=str(raw["id"]),
        topic=str(raw.get("topic") or file_topic),
        language=str(raw["language"]),
        title=str(raw["title"]).strip(),
        questions=tuple(str(q).strip() for q in raw["questions"]),
        answer=str(raw["answer"]).strip(),
        voice_answer=str(raw["voice_answer"]).strip(),
        sources=tuple(
            Source(
                organisation=str(s["organisation"]).strip(),
                document=str(s["document"]).strip(),
                edition=str(s.get("edition") or "").strip(),
                url=str(s.get("url") or "").strip(),
            )
            for s in raw["sources"]
        ),
        reviewed_by=str(raw["reviewed_by"]),
        reviewed_on=to_date(raw["reviewed_on"]),
        review_due=to_date(raw["review_due"]),
        age_months=(int(age[0]), int(age[1])),
        urgency=str(raw["urgency"]),
        file=file,
    )


def parse_file(data: Any, file: str = "") -> list[Entry]:
    """All entries of one parsed guidance file."""
    topic = str(data.get("topic", ""))
    return [parse_entry(raw, topic, file) for raw in data.get("entries") or []]


def load_entries(directory: Path) -> list[Entry]:
    """Load every entry of every guidance file in ``directory``."""
    entries: list[Entry] = []
    for path in guidance_files(directory):
        entries.extend(parse_file(read_yaml(path), path.name))
    return entries


def content_fingerprint(directory: Path) -> str:
    """sha256 over the names and bytes of the guidance files (for index caching)."""
    import hashlib

    digest = hashlib.sha256()
    for path in guidance_files(directory):
        digest.update(path.name.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()
