"""Rule-based red-flag check that runs BEFORE any search.

Light on purpose (stdlib + PyYAML only) because the Rasa NLU pipeline imports
it too. Rules live in ``red_flags.yaml``; this module compiles them, adds the
one rule that needs arithmetic (fever in a baby under 3 months) and builds the
"what to do now" answer in the user's language.

>>> check("宝宝吞了一颗纽扣电池").id
'battery_magnet'
>>> check("怎么预防孩子溺水") is None
True
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Optional

import yaml

RED_FLAGS_FILE = Path(__file__).resolve().parent / "red_flags.yaml"
HANDOFF_ZH = "我正在为您转接人工热线。"
HANDOFF_EN = "I am connecting you to our hotline now."


@dataclass(frozen=True)
class RedFlag:
    """One emergency rule; ``patterns``/``exclude`` are compiled per language."""

    id: str
    title: Mapping[str, str]
    first_step: Mapping[str, str]
    patterns: tuple[re.Pattern, ...]
    exclude: tuple[re.Pattern, ...]


@dataclass(frozen=True)
class RedFlagRules:
    flags: tuple[RedFlag, ...]
    prevention: tuple[re.Pattern, ...]
    hypothetical: tuple[re.Pattern, ...]
    emergency_call: Mapping[str, str]


def _compile(spec: Mapping[str, list] | None) -> tuple[re.Pattern, ...]:
    spec = spec or {}
    return tuple(re.compile(p) for lang in ("zh", "en") for p in spec.get(lang, []) or [])


def parse_rules(data: Mapping) -> RedFlagRules:
    """Compile the parsed ``red_flags.yaml``; flags come out in ``order``."""
    flags = {
        f["id"]: RedFlag(f["id"], f["title"], f["first_step"], _compile(f.get("patterns")), _compile(f.get("exclude")))
        for f in data["flags"]
    }
    order = list(data.get("order") or [])
    ordered = [flags[i] for i in order if i in flags] + [f for i, f in flags.items() if i not in order]
    glob = data.get("global") or {}
    return RedFlagRules(tuple(ordered), _compile(glob.get("prevention")), _compile(glob.get("hypothetical")),
                        data["emergency_call"])


@lru_cache(maxsize=4)
def load_rules(path: Path = RED_FLAGS_FILE) -> RedFlagRules:
    with open(path, encoding="utf-8") as fh:
        return parse_rules(yaml.safe_load(fh))


# ---------------------------------------------------------------- text prep
_FULLWIDTH = str.maketrans({chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)})


def normalise(text: str) -> tuple[str, str]:
    """``(compact, spaced)``: lower-cased, full-width ASCII folded; ``compact``
    has no whitespace (for Chinese rules), ``spaced`` single spaces (English rules)."""
    text = text.translate(_FULLWIDTH).replace("’", "'").replace("‘", "'").lower()
    spaced = " ".join(text.split())
    # Numbers that a space kept apart stay apart: "38度5 2个月" is 2 months, not 52.
    compact = re.sub(r"\s+", "", re.sub(r"(?<=\d)\s+(?=\d)", "，", text))
    return compact, spaced


# ---------------------------------------------------------------- infant age
_CN_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_EN_NUMBERS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen".split())}
_NUM = r"(?P<n>\d+(?:\.\d+)?|[零一二两俩三四五六七八九十]+)"


def parse_number(token: str) -> Optional[float]:
    """``"42"`` / ``"四十二"`` / ``"十"`` / ``"two"`` -> number, else None."""
    if not token:
        return None
    if re.fullmatch(r"\d+(\.\d+)?", token):
        return float(token)
    if token in _EN_NUMBERS:
        return float(_EN_NUMBERS[token])
    if "十" in token:
        tens, _, ones = token.partition("十")
        t = _CN_DIGITS.get(tens, 1) if tens else 1
        o = _CN_DIGITS.get(ones, 0) if ones else 0
        if (tens and tens not in _CN_DIGITS) or (ones and ones not in _CN_DIGITS):
            return None
        return float(t * 10 + o)
    if len(token) == 1 and token in _CN_DIGITS:
        return float(_CN_DIGITS[token])
    return None


_ZH_INFANT_WORDS = re.compile(r"新生儿|刚出生|出生没几天|生下来没几天|几天大|月子里|坐月子|满月|没满月|未满月|不到(三|3|两|2|一|1)个?月|不满(三|3|两|2)个?月")
_ZH_MONTHS = re.compile(_NUM + r"个?(半|多)?月")
_ZH_DURATION_BEFORE = re.compile(r"(过了|过去|烧了|咳了|拉了|吐了|持续|连续|耽误了?|晚了|推迟了?|隔了|间隔|打了|吃了|用了|快|已经|好几|有)$")
_ZH_AGE_DAYS = re.compile(r"(出生|生下来|刚生|出生后)?" + _NUM + r"(天|日)(大|的(宝宝|孩子|娃|婴儿|新生儿|小孩)|宝宝|新生儿|婴儿|娃)")
_ZH_BORN_DAYS = re.compile(r"(出生|生下来|刚生|宝宝|孩子|娃|婴儿|新生儿|儿子|女儿|闺女|孙子|孙女|外孙|外孙女)(才|刚|刚刚|出生)?" + _NUM + r"(天|日)")
_ZH_WEEKS = re.compile(_NUM + r"(周|星期|个星期)(大|的(宝宝|孩子|娃|婴儿)|宝宝|婴儿)")
_ZH_BORN_WEEKS = re.compile(r"(出生|宝宝|孩子|娃|婴儿|儿子|女儿|闺女)(才|刚|出生)?" + _NUM + r"(周|个星期|星期)")
_ZH_YEARS = re.compile(_NUM + r"(周岁|岁)")
_EN_AGE = re.compile(r"\b(\d+|" + "|".join(_EN_NUMBERS) + r")[- ](day|week|wk|month|mo)s?[- ]old\b")
_EN_INFANT_WORDS = re.compile(r"\bnewborn\b|\bneonate\b|\bfew days old\b|\bjust born\b")
_EN_YEARS = re.compile(r"\b(\d+|" + "|".join(_EN_NUMBERS) + r")[- ](year|yr)s?[- ]?(old)?\b|\btoddler\b")


def infant_age_months(compact: str, spaced: str) -> Optional[float]:
    """Best guess of the child's age in months when the text gives one, else None."""
    if _ZH_YEARS.search(compact) or _EN_YEARS.search(spaced):
        return 12.0
    ages: list[float] = []
    for m in _ZH_MONTHS.finditer(compact):
        if _ZH_DURATION_BEFORE.search(compact[max(0, m.start() - 4): m.start()]):
            continue  # "过了一个月" is how long, not how old
        n = parse_number(m.group("n"))
        if n is not None:
            ages.append(n + (0.5 if m.group(2) else 0.0))
    for rx in (_ZH_AGE_DAYS, _ZH_BORN_DAYS):
        for m in rx.finditer(compact):
            n = parse_number(m.group("n"))
            if n is not None:
                ages.append(n / 30.4)
    for m in _ZH_WEEKS.finditer(compact):
        n = parse_number(m.group("n"))
        if n is not None:
            ages.append(n / 4.35)
    for m in _ZH_BORN_WEEKS.finditer(compact):
        n = parse_number(m.group("n"))
        if n is not None:
            ages.append(n / 4.35)
    for m in _EN_AGE.finditer(spaced):
        n = parse_number(m.group(1))
        unit = m.group(2)
        if n is not None:
            ages.append(n if unit.startswith("mo") else n / 4.35 if unit.startswith("w") else n / 30.4)
    if ages:
        return min(ages)
    if _ZH_INFANT_WORDS.search(compact) or _EN_INFANT_WORDS.search(spaced):
        return 0.5
    return None


# ---------------------------------------------------------------- matching
def _first_match(patterns: tuple[re.Pattern, ...], compact: str, spaced: str) -> Optional[int]:
    """Start position (in whichever form matched) of the earliest match, else None."""
    best: Optional[int] = None
    for rx in patterns:
        for text in (compact, spaced):
            m = rx.search(text)
            if m and (best is None or m.start() < best):
                best = m.start()
    return best


def _any(patterns: tuple[re.Pattern, ...], compact: str, spaced: str) -> bool:
    return any(rx.search(compact) or rx.search(spaced) for rx in patterns)


def _hypothetical_before(rules: RedFlagRules, flag: RedFlag, compact: str, spaced: str) -> bool:
    """A hypothetical word ("万一", "what if") placed before the red-flag words."""
    for text in (compact, spaced):
        starts = [m.start() for rx in flag.patterns for m in [rx.search(text)] if m]
        if not starts:
            continue
        first = min(starts)
        if any((m := rx.search(text)) and m.start() <= first for rx in rules.hypothetical):
            return True
    return False


def flag_matches(flag: RedFlag, rules: RedFlagRules, compact: str, spaced: str) -> bool:
    """Does ``flag`` fire for the normalised text?"""
    if _first_match(flag.patterns, compact, spaced) is None:
        return False
    if _any(flag.exclude, compact, spaced) or _any(rules.prevention, compact, spaced):
        return False
    if _hypothetical_before(rules, flag, compact, spaced):
        return False
    if flag.id == "infant_fever":
        age = infant_age_months(compact, spaced)
        return age is not None and age < 3.0
    return True


def check(text: str, rules: Optional[RedFlagRules] = None) -> Optional[RedFlag]:
    """The red flag raised by ``text`` (highest priority first), or None."""
    rules = rules or load_rules()
    compact, spaced = normalise(text)
    for flag in rules.flags:
        if flag_matches(flag, rules, compact, spaced):
            return flag
    return None


def urgent_response(flag: RedFlag, language: str, rules: Optional[RedFlagRules] = None) -> dict:
    """What to do now, in ``language``: the emergency number, the flag's first step and a handoff."""
    rules = rules or load_rules()
    lang = "zh" if language == "zh" else "en"
    call = rules.emergency_call[lang]
    handoff = HANDOFF_ZH if lang == "zh" else HANDOFF_EN
    sep = "" if lang == "zh" else " "
    return {
        "flag": flag.id,
        "title": flag.title[lang],
        "call": "120" if lang == "zh" else "911",
        "call_text": call,
        "first_step": flag.first_step[lang],
        "message": sep.join([call, flag.first_step[lang], handoff]),
        "handoff": True,
    }


def triage(text: str, language: str) -> Optional[dict]:
    """``urgent_response`` for ``text`` when a red flag fires, else None."""
    flag = check(text)
    return urgent_response(flag, language) if flag else None


if __name__ == "__main__":  # pragma: no cover - manual check
    import sys

    for line in sys.argv[1:] or sys.stdin.read().splitlines():
        f = check(line)
        print(f"{f.id if f else '-':16} {line}")
