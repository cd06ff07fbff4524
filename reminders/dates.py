"""Parse a child's birth date from free text (Chinese or English). Pure functions.

Accepted forms (``today`` is injectable):

* ``2025年3月5日`` / ``2025年3月5号`` / ``二〇二五年三月五日``
* ``25年3月5号`` (two-digit year -> 20YY, or 19YY if 20YY is in the future)
* ``3月5号`` (this year; if that is in the future, last year is proposed as *ambiguous*)
* ``去年十月五号`` / ``今年三月五日`` / ``前年…`` (Chinese numerals allowed)
* ``2025-03-05``, ``2025/3/5``, ``2025.3.5``
* ``March 5 2025``, ``Mar 5th, 2025``, ``5 March 2025``, ``5th of March 2025``
* ``05/03/2025`` style day/month order is ambiguous when both parts are <= 12.

The result says ``ok``, ``ambiguous`` (ask the user to confirm one of
``candidates``), ``future``, ``too_old`` (more than ``max_years`` ago) or
``unparseable``, with a bilingual message the chat can show.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import re
import unicodedata
from typing import List, Optional

OK, AMBIGUOUS, FUTURE, TOO_OLD, UNPARSEABLE = "ok", "ambiguous", "future", "too_old", "unparseable"

_CN_DIGITS = {"〇": 0, "零": 0, "○": 0, "Ｏ": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
              "六": 6, "七": 7, "八": 8, "九": 9}
_MONTHS = {m: i + 1 for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august",
     "september", "october", "november", "december"])}
_MONTHS.update({k[:3]: v for k, v in list(_MONTHS.items())})
_MONTHS["sept"] = 9


@dataclasses.dataclass(frozen=True)
class DateParseResult:
    """Outcome of :func:`parse_birth_date`."""

    status: str
    date: Optional[dt.date] = None
    candidates: List[dt.date] = dataclasses.field(default_factory=list)
    message_zh: str = ""
    message_en: str = ""

    @property
    def ok(self) -> bool:
        return self.status == OK

    def message(self, language: str = "zh") -> str:
        return self.message_en if language.startswith("en") else self.message_zh

    def to_dict(self) -> dict:
        return {"status": self.status, "date": self.date.isoformat() if self.date else None,
                "candidates": [c.isoformat() for c in self.candidates],
                "message_zh": self.message_zh, "message_en": self.message_en}


def cn_number(s: str) -> Optional[int]:
    """Convert Arabic or Chinese numerals (``十``, ``二十五``, ``三十一``, ``二〇二五``) to int."""
    s = s.strip()
    if not s:
        return None
    if s.isdigit():
        return int(s)
    if all(ch in _CN_DIGITS for ch in s):  # digit-by-digit: 二〇二五
        return int("".join(str(_CN_DIGITS[ch]) for ch in s))
    if "十" in s and s.count("十") == 1:
        tens, _, units = s.partition("十")
        t = 1 if tens == "" else _CN_DIGITS.get(tens)
        u = 0 if units == "" else _CN_DIGITS.get(units)
        if t is None or u is None or len(tens) > 1 or len(units) > 1:
            return None
        return t * 10 + u
    return None


def _safe_date(y: int, m: int, d: int) -> Optional[dt.date]:
    try:
        return dt.date(y, m, d)
    except (ValueError, TypeError):
        return None


def _years_ago(today: dt.date, years: int) -> dt.date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 Feb
        return today.replace(year=today.year - years, day=28)


def _fmt(d: dt.date) -> tuple:
    return f"{d.year}年{d.month}月{d.day}日", d.strftime("%B %-d, %Y")


def _judge(d: dt.date, today: dt.date, max_years: int) -> DateParseResult:
    zh, en = _fmt(d)
    if d > today:
        return DateParseResult(FUTURE, d, [d], f"{zh}还没到哦，请告诉我宝宝已经出生的日期。",
                               f"{en} is in the future. Please give the date your child was born.")
    if d < _years_ago(today, max_years):
        return DateParseResult(TOO_OLD, d, [d],
                               f"{zh}已经超过{max_years}年了，本服务提醒0～{max_years}岁儿童的疫苗和体检。",
                               f"{en} is more than {max_years} years ago; reminders cover children aged 0-{max_years}.")
    return DateParseResult(OK, d, [d], f"宝宝的生日是{zh}。", f"Your child's birth date is {en}.")


def _ambiguous(cands: List[dt.date], today: dt.date, max_years: int) -> DateParseResult:
    uniq = sorted(set(cands))
    if len(uniq) == 1:
        return _judge(uniq[0], today, max_years)
    plausible = [c for c in uniq if _judge(c, today, max_years).ok]
    if not plausible:
        return _judge(uniq[0], today, max_years)
    shown = plausible
    zh = "还是".join(_fmt(c)[0] for c in shown)
    en = " or ".join(_fmt(c)[1] for c in shown)
    return DateParseResult(AMBIGUOUS, None, shown, f"请确认宝宝的生日：是{zh}？", f"Please confirm the birth date: {en}?")


_NUM = r"[0-9〇零○一二两三四五六七八九十]+"
_RE_CN_FULL = re.compile(rf"(?P<rel>去年|今年|前年|大前年|明年)?(?:(?P<y>{_NUM})年)?(?P<m>{_NUM})月(?P<d>{_NUM})[日号號]?")
_RE_ISO = re.compile(r"(?<!\d)(\d{4})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{1,2})(?!\d)")
_RE_DMY_NUM = re.compile(r"(?<!\d)(\d{1,2})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{4})(?!\d)")
_RE_MDY = re.compile(r"\b([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b")
_RE_DMY = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?([a-z]+)\.?,?\s+(\d{4})\b")


def parse_birth_date(text: str, today: dt.date, max_years: int = 6) -> DateParseResult:
    """Parse *text* as a birth date relative to *today* (see module docstring)."""
    unparseable = DateParseResult(UNPARSEABLE, None, [],
                                  "没看懂这个日期，可以这样说：2025年3月5日 或 2025-03-05。",
                                  "I couldn't read that date. Try e.g. 2025-03-05 or March 5 2025.")
    if not isinstance(text, str) or not text.strip():
        return unparseable
    s = unicodedata.normalize("NFKC", text).strip().lower()
    s_nospace = re.sub(r"\s+", "", s)

    m = _RE_CN_FULL.search(s_nospace)
    if m:
        month, day = cn_number(m.group("m")), cn_number(m.group("d"))
        if month is None or day is None:
            return unparseable
        rel, ytxt = m.group("rel"), m.group("y")
        if ytxt:
            y = cn_number(ytxt)
            if y is None:
                return unparseable
            if y < 100:
                y = 2000 + y if 2000 + y <= today.year else 1900 + y
        elif rel:
            y = today.year - {"今年": 0, "去年": 1, "前年": 2, "大前年": 3, "明年": -1}[rel]
        else:
            d = _safe_date(today.year, month, day)
            if d is None:
                return _invalid(unparseable)
            if d > today:  # "3月5号" said in February: probably last year -> confirm
                prev = _safe_date(today.year - 1, month, day)
                if prev is None:
                    return _judge(d, today, max_years)
                zh, en = _fmt(prev)
                return DateParseResult(AMBIGUOUS, None, [prev], f"请确认宝宝的生日：是{zh}吗？",
                                       f"Please confirm the birth date: {en}?")
            return _judge(d, today, max_years)
        d = _safe_date(y, month, day)
        return _judge(d, today, max_years) if d else _invalid(unparseable)

    m = _RE_ISO.search(s)
    if m:
        d = _safe_date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        return _judge(d, today, max_years) if d else _invalid(unparseable)

    m = _RE_MDY.search(s)
    if m and m.group(1) in _MONTHS:
        d = _safe_date(int(m.group(3)), _MONTHS[m.group(1)], int(m.group(2)))
        return _judge(d, today, max_years) if d else _invalid(unparseable)

    m = _RE_DMY.search(s)
    if m and m.group(2) in _MONTHS:
        d = _safe_date(int(m.group(3)), _MONTHS[m.group(2)], int(m.group(1)))
        return _judge(d, today, max_years) if d else _invalid(unparseable)

    m = _RE_DMY_NUM.search(s)
    if m:
        a, b, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
        cands = [c for c in (_safe_date(y, b, a), _safe_date(y, a, b)) if c]  # D/M/Y first, then M/D/Y
        if not cands:
            return _invalid(unparseable)
        return _ambiguous(cands, today, max_years)
    return unparseable


def _invalid(base: DateParseResult) -> DateParseResult:
    return dataclasses.replace(base, message_zh="这个日期不存在（例如2月没有30日），请再检查一下。",
                               message_en="That date does not exist (e.g. February 30). Please check it.")
