"""Voice mode: pure functions that turn bot replies into short spoken turns.

- :mod:`bot.voice.speakable` speakable text (no links, emoji, brackets or
  abbreviations; numbers, dates and times said the way people say them),
  the voice rules checker and the splitting of long replies into turns.
- :mod:`bot.voice.choices` buttons as "说1或者按1" and keypad/continue input.
- :mod:`bot.voice.ssml` SSML with a speech rate.
- :mod:`bot.voice.homophones` speech-recognition homophone repair via pinyin.
- :mod:`bot.voice.dialog` the per-caller turn state shared by the voice
  connectors (continuation, repeat, menus).
"""
from bot.voice.speakable import (  # noqa: F401
    CONTINUE_PROMPT,
    Turn,
    limits_for,
    render_turns,
    to_speakable,
    voice_problems,
)
from bot.voice.ssml import build_ssml  # noqa: F401
