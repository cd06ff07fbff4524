"""The 66 guidance topic keys and titles, read from ``topics.yaml``."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from knowledge_base import TOPICS_FILE


@dataclass(frozen=True)
class Topic:
    key: str
    code: str
    title_zh: str
    title_en: str

    def title(self, language: str) -> str:
        """Title in ``language`` ("zh" or "en")."""
        return self.title_zh if language == "zh" else self.title_en


def parse_topics(data: dict) -> dict[str, Topic]:
    """Turn the parsed ``topics.yaml`` mapping into ``{key: Topic}`` (order kept)."""
    topics: dict[str, Topic] = {}
    for row in data["topics"]:
        topics[row["key"]] = Topic(row["key"], row["code"], row["title_zh"], row["title_en"])
    return topics


@lru_cache(maxsize=4)
def load_topics(path: Path = TOPICS_FILE) -> dict[str, Topic]:
    """Load the topic list (cached)."""
    with open(path, encoding="utf-8") as fh:
        return parse_topics(yaml.safe_load(fh))
