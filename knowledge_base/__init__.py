"""Vetted childcare guidance and the search service that finds it.

Kept deliberately light: importing ``knowledge_base`` pulls in no heavy
dependency (no torch, faiss or jieba). Sub-modules load those lazily.
"""
from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
GUIDANCE_DIR = PACKAGE_DIR / "guidance"
TOPICS_FILE = PACKAGE_DIR / "topics.yaml"
RED_FLAGS_FILE = PACKAGE_DIR / "red_flags.yaml"
DEFAULT_MODEL_DIR = PACKAGE_DIR / "model" / "multilingual-e5-small"
LANGUAGES = ("zh", "en")

__all__ = [
    "PACKAGE_DIR",
    "GUIDANCE_DIR",
    "TOPICS_FILE",
    "RED_FLAGS_FILE",
    "DEFAULT_MODEL_DIR",
    "LANGUAGES",
]
