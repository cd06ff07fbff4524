"""SSML for the spoken turns: the speech rate as <prosody>, pauses between sentences."""
from __future__ import annotations

import re
from xml.sax.saxutils import escape

# Rates the platforms accept in <prosody rate="...">; slow for "慢一点".
RATES = {"normal": "90%", "slow": "70%"}
XML_LANG = {"zh": "zh-CN", "en": "en-US"}


def prosody_rate(speech_rate: str, rates: dict | None = None) -> str:
    """The <prosody rate> value for the speech_rate slot value (normal | slow)."""
    table = rates or RATES
    return table.get(speech_rate, table["normal"])


def ssml_body(text: str, speech_rate: str = "normal", rates: dict | None = None, pause_ms: int = 0) -> str:
    """The text wrapped in <prosody>, escaped, for embedding (e.g. inside Twilio's <Say>)."""
    escaped = escape(text)
    if pause_ms:
        escaped = re.sub(r"(?<=[。！？.!?])\s*(?=\S)", f'<break time="{pause_ms}ms"/>', escaped)
    return f'<prosody rate="{prosody_rate(speech_rate, rates)}">{escaped}</prosody>'


def build_ssml(text: str, language: str = "zh", speech_rate: str = "normal", rates: dict | None = None) -> str:
    """A complete <speak> document; slow speech also pauses between sentences."""
    pause = 500 if speech_rate == "slow" else 0
    lang = XML_LANG.get(language, "zh-CN")
    return f'<speak xml:lang="{lang}">{ssml_body(text, speech_rate, rates, pause)}</speak>'
