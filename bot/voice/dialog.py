"""The turn-taking every voice-like connector shares (phone, gateway, SMS).

Per caller it remembers the turns of the last reply (a long answer is split
and played one turn at a time), the choices offered, and whether to speak
slowly. The connectors only translate their wire format to
:meth:`VoiceDialog.respond` and its :class:`Reply` back.
"""
from __future__ import annotations

import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, List, Optional, Sequence, Tuple

from bot.language import detect_language
from bot.voice.choices import Choice, choices_from_buttons, choices_prompt, interpret
from bot.voice.homophones import repair_homophones
from bot.voice.speakable import CONTINUE_PROMPT, SMS_CONTINUE_PROMPT, Turn, render_turns

SMS_MAX_ZH_CHARS = 70  # one SMS segment of Chinese text
SMS_MAX_EN_WORDS = 30

GREETING = {
    "zh": "您好，我是育儿小助手，请直接说您的问题。没听清按9，慢一点按8，转人工按0。",
    "en": "Hello, this is the parenting assistant, please ask your question. Press 9 to hear it again, 8 for slower, or 0 for a person.",
}
NOTHING_HEARD = {
    "zh": "我没听到您说话。请说出您的问题，或者按0转人工。",
    "en": "I did not hear anything. Please say your question, or press 0 for a person.",
}
GOODBYE = {"zh": "好的，先不打扰您了，有问题随时再打来。再见。", "en": "All right, call again any time. Goodbye."}
NOTHING_YET = {"zh": "请直接说您的问题，比如宝宝发烧怎么办。", "en": "Please say your question, for example my baby has a fever."}
BOT_SILENT = {
    "zh": "抱歉，我这边出了点问题。请再说一遍，或者按0转人工。",
    "en": "Sorry, something went wrong on my side. Please say it again, or press 0 for a person.",
}
MAX_NO_INPUT = 3
# Used only when the tracker (and so the recognised intent) is not at hand.
_SLOWER_WORDS = re.compile(r"慢一点|慢点|说慢|慢些|慢慢说|太快了|slower|slow down|too fast", re.I)
_REPEAT_WORDS = re.compile(r"再说一遍|再说一次|没听清|重复|再讲一遍|repeat|say again|say that again|pardon", re.I)

AskBot = Callable[[str], Awaitable[List[Dict[str, Any]]]]
GetSlots = Callable[[], Awaitable[Dict[str, Any]]]


@dataclass
class CallerState:
    """What one caller last heard."""

    turns: List[Turn] = field(default_factory=list)
    index: int = 0
    choices: List[Choice] = field(default_factory=list)
    language: str = "zh"
    slow: bool = False
    last_texts: Tuple[str, ...] = ()
    no_input: int = 0
    touched: float = field(default_factory=time.monotonic)

    @property
    def current(self) -> Optional[Turn]:
        return self.turns[self.index] if self.turns else None

    @property
    def has_more(self) -> bool:
        return bool(self.turns) and self.index < len(self.turns) - 1


@dataclass(frozen=True)
class Reply:
    """One turn to say (or text), and how."""

    turn: Turn
    language: str
    speech_rate: str  # normal | slow
    end: bool = False  # hang up / close the session after this turn
    choices: Sequence[Choice] = ()
    kind: str = "bot"  # bot | continue | repeat | empty | greeting

    @property
    def text(self) -> str:
        return self.turn.text


def single_turn(text: str, language: str) -> Turn:
    """A fixed short message as one turn (already speakable)."""
    return Turn(text, "", language)


class VoiceDialog:
    """Per-caller voice turn state, in memory (route each caller to one instance)."""

    def __init__(self, medium: str = "voice", ttl_seconds: float = 3600.0, max_callers: int = 10000,
                 repair: bool = True) -> None:
        self.medium = medium
        self.ttl = ttl_seconds
        self.max_callers = max_callers
        self.repair = repair
        self._states: "OrderedDict[str, CallerState]" = OrderedDict()

    # -- state
    def state(self, sender: str) -> CallerState:
        now = time.monotonic()
        for key in [k for k, s in self._states.items() if now - s.touched > self.ttl]:
            del self._states[key]
        state = self._states.pop(sender, None) or CallerState()
        state.touched = now
        self._states[sender] = state
        while len(self._states) > self.max_callers:
            self._states.popitem(last=False)
        return state

    def forget(self, sender: str) -> None:
        self._states.pop(sender, None)

    def _rate(self, state: CallerState) -> str:
        return "slow" if state.slow else "normal"

    def _reply(self, state: CallerState, turn: Turn, kind: str, end: bool = False) -> Reply:
        choices = state.choices if (kind in ("bot", "continue", "repeat") and not state.has_more) else ()
        return Reply(turn, state.language, self._rate(state), end, tuple(choices), kind)

    # -- turns
    def greeting(self, sender: str, language: str = "zh") -> Reply:
        state = self.state(sender)
        state.language = language if language in ("zh", "en") else state.language
        state.turns, state.index, state.choices, state.last_texts = [], 0, [], ()
        return Reply(single_turn(GREETING[state.language], state.language), state.language,
                     self._rate(state), kind="greeting")

    def _render(self, texts: List[str], choices: List[Choice], language: str) -> List[Turn]:
        if self.medium == "sms":
            limit = SMS_MAX_ZH_CHARS if language == "zh" else SMS_MAX_EN_WORDS
            return render_turns(texts, language, choices_prompt(choices, language, "sms"),
                                SMS_CONTINUE_PROMPT[language], limit)
        return render_turns(texts, language, choices_prompt(choices, language), CONTINUE_PROMPT[language])

    async def respond(
        self,
        sender: str,
        text: Optional[str],
        digits: Optional[str],
        ask_bot: AskBot,
        get_slots: Optional[GetSlots] = None,
    ) -> Reply:
        """Answer one input: go on, repeat, or ask the bot and render its reply."""
        state = self.state(sender)
        if text and detect_language(text):
            state.language = detect_language(text) or state.language
        meaning = interpret(text, digits, state.has_more, state.choices if not state.has_more else ())
        if meaning.kind == "continue":
            state.no_input = 0
            state.index += 1
            return self._reply(state, state.turns[state.index], "continue")
        if meaning.kind == "repeat":
            state.no_input = 0
            turn = state.current or single_turn(NOTHING_YET[state.language], state.language)
            return self._reply(state, turn, "repeat")
        if meaning.kind == "empty":
            state.no_input += 1
            if state.no_input >= MAX_NO_INPUT:
                return Reply(single_turn(GOODBYE[state.language], state.language), state.language,
                             self._rate(state), end=True, kind="empty")
            return Reply(single_turn(NOTHING_HEARD[state.language], state.language), state.language,
                         self._rate(state), kind="empty")
        state.no_input = 0
        message = meaning.message
        if meaning.slower:
            state.slow = True
        if self.repair and not message.startswith("/"):
            message = repair_homophones(message)
        messages = await ask_bot(message)
        slots: Dict[str, Any] = {}
        if get_slots is not None:
            try:
                slots = await get_slots() or {}
            except Exception:  # noqa: BLE001 - the tracker is a nicety; never fail the call on it
                slots = {}
        texts = [str(m["text"]) for m in messages if m.get("text")]
        asked_slower = slots["intent"] == "slower" if "intent" in slots else bool(_SLOWER_WORDS.search(message))
        if slots.get("speech_rate") == "slow" or asked_slower:
            state.slow = True
        language = slots.get("language") if slots.get("language") in ("zh", "en") else None
        language = language or detect_language(" ".join(texts)) or state.language
        state.language = language
        if not texts:
            state.turns, state.index, state.choices = [single_turn(BOT_SILENT[language], language)], 0, []
            return self._reply(state, state.turns[0], "bot")
        buttons = next((m.get("buttons") for m in reversed(messages) if m.get("buttons")), None)
        choices = choices_from_buttons(buttons)
        asked_repeat = slots["intent"] == "repeat" if "intent" in slots else bool(_REPEAT_WORDS.search(message))
        if asked_repeat and tuple(texts) == state.last_texts and state.current is not None:
            # 再说一遍: the bot says its whole last reply again; replay what the caller last heard.
            return self._reply(state, state.current, "repeat")
        state.turns = self._render(texts, choices, language)
        state.index = 0
        state.choices = choices
        state.last_texts = tuple(texts)
        return self._reply(state, state.turns[0], "bot")
