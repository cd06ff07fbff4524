"""Which language a message is written in (Chinese or English).

`action_detect_language` fills the `language` slot from this for every user
message, so every reply follows the user's language. Messages that show no
language (emoji, digits, "OK") leave the conversation's language as it is.
"""
from __future__ import annotations

import re
from typing import Optional

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
# Short Latin replies that are the same in a Chinese conversation ("OK", "TD").
_NEUTRAL_WORDS = {"ok", "okay", "td", "hi", "sms"}


def detect_language(text: Optional[str]) -> Optional[str]:
    """Return "zh" if the text has Chinese characters, "en" if it has English
    words and no Chinese, or None when the text does not tell."""
    if not text or text.startswith("/"):
        # Empty, or a button payload ("/affirm"): says nothing about the user's language.
        return None
    if _CJK.search(text):
        return "zh"
    words = [w.lower() for w in _LATIN_WORD.findall(text)]
    if words and not all(w in _NEUTRAL_WORDS for w in words):
        return "en"
    return None
