"""Choices as "说1或者按1", and what a caller's words or keys mean (pure functions).

Keys that work at every menu (announced in the phone greeting):
  0 -> hotline handoff (/request_human), 9 -> say the last turn again,
  8 -> speak slower (/slower), 1..n -> the offered choice, 1 -> go on
  when a longer answer was split.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from bot.voice.speakable import to_speakable

KEY_HUMAN = "0"
KEY_REPEAT = "9"
KEY_SLOWER = "8"
KEY_CONTINUE = "1"

HUMAN_PAYLOAD = "/request_human"
SLOWER_PAYLOAD = "/slower"

_ZH_NUMERALS = {"零": "0", "洞": "0", "一": "1", "幺": "1", "壹": "1", "二": "2", "两": "2", "贰": "2",
                "三": "3", "叁": "3", "四": "4", "五": "5", "六": "6", "七": "7", "八": "8", "九": "9"}
_EN_NUMERALS = {"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                "six": "6", "seven": "7", "eight": "8", "nine": "9"}
# Short answers meaning "go on" when a turn asked "要继续听吗？".
_GO_ON = re.compile(
    r"^(?:要|要听|要的|继续|继续听|继续说|接着说|接着讲|往下说|好|好的|好啊|行|嗯|嗯嗯|对|是|听|还要|"
    r"yes|yeah|yep|ok|okay|continue|go on|more|sure|please)$",
    re.I,
)
_FILLER = re.compile(r"[\s，。！？、,.!?~～]|^(?:按|说|选|第)|(?:号|个|键|吧|呀|啊|呢)$")


@dataclass(frozen=True)
class Choice:
    """One offered option: the key, what is said, and what is sent to the bot."""

    key: str
    title: str
    payload: str


@dataclass(frozen=True)
class Interpretation:
    """What to do with one caller input.

    kind: "continue" (play the next turn), "repeat" (say the last turn again),
    "bot" (send ``message`` to the bot), "empty" (nothing heard).
    """

    kind: str
    message: str = ""
    slower: bool = False


def choices_from_buttons(buttons: Optional[Sequence[Dict[str, Any]]]) -> List[Choice]:
    """Rasa buttons as numbered choices (1, 2, ...), skipping key 0/8/9 meanings."""
    out: List[Choice] = []
    for index, button in enumerate(buttons or [], start=1):
        if index > 7:
            break
        title = str(button.get("title") or "").strip()
        payload = str(button.get("payload") or title).strip()
        if title:
            out.append(Choice(str(index), title, payload))
    return out


def choices_prompt(choices: Sequence[Choice], language: str, medium: str = "voice") -> str:
    """"好，转人工，说1或者按1；不用了，说2或者按2。" (SMS: "回复1：…").

    The titles go through the speakable rewriting, so they hold no brackets
    or symbols.
    """
    if not choices:
        return ""
    parts = []
    for choice in choices:
        title = to_speakable(choice.title, language).rstrip("。.!！")
        if language == "en":
            if medium == "sms":
                parts.append(f"Reply {choice.key} for {title}")
            else:
                parts.append(f"For {title}, say {choice.key} or press {choice.key}")
        elif medium == "sms":
            parts.append(f"回复{choice.key}：{title}")
        else:
            parts.append(f"{title}，说{choice.key}或者按{choice.key}")
    if language == "en":
        return "; ".join(parts) + "."
    return "；".join(parts) + "。"


def normalise_key(text: str) -> Optional[str]:
    """The single key a short utterance names ("1", "一", "按一", "第二个", "two"), or None."""
    cleaned = _FILLER.sub("", (text or "").strip().lower())
    cleaned = _FILLER.sub("", cleaned)
    if len(cleaned) == 1 and cleaned.isdigit():
        return cleaned
    if cleaned in _ZH_NUMERALS:
        return _ZH_NUMERALS[cleaned]
    if cleaned in _EN_NUMERALS:
        return _EN_NUMERALS[cleaned]
    return None


def interpret(
    text: Optional[str],
    digits: Optional[str],
    has_more: bool,
    choices: Sequence[Choice] = (),
) -> Interpretation:
    """Decide what a caller's input means, given what the last turn offered.

    Keys (or a spoken lone digit) come first; then "go on" words while a
    split answer waits; anything else is a message for the bot.
    """
    text = (text or "").strip()
    key = (digits or "").strip()[:1] or normalise_key(text)
    if key:
        for choice in choices:
            if choice.key == key:
                return Interpretation("bot", choice.payload)
        if key == KEY_CONTINUE and has_more:
            return Interpretation("continue")
        if key == KEY_HUMAN:
            return Interpretation("bot", HUMAN_PAYLOAD)
        if key == KEY_REPEAT:
            return Interpretation("repeat")
        if key == KEY_SLOWER:
            return Interpretation("bot", SLOWER_PAYLOAD, slower=True)
        if digits and not text:
            # A key with no meaning here: say the turn again so the menu is heard.
            return Interpretation("repeat")
    if has_more and _GO_ON.match(re.sub(r"[\s，。！？,.!?]", " ", text).strip()):
        return Interpretation("continue")
    if not text:
        return Interpretation("empty")
    return Interpretation("bot", text)
