"""Numbers as people say them, in Chinese and English (pure functions)."""
from __future__ import annotations

_ZH_DIGITS = "零一二三四五六七八九"
_ZH_UNITS = ((10000, "万"), (1000, "千"), (100, "百"), (10, "十"))
_EN_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_EN_TEENS = ("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
             "seventeen", "eighteen", "nineteen")
_EN_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def zh_number(n: int) -> str:
    """A non-negative integer below 100 million in Chinese words: 38 -> 三十八, 105 -> 一百零五.

    Numbers from 10 to 19 start with 十 (十五), as they are said.
    """
    if n < 0:
        return "负" + zh_number(-n)
    if n < 10:
        return _ZH_DIGITS[n]
    if n >= 100_000_000:
        return spell_digits(str(n), "zh")
    if n >= 10000:
        high, low = divmod(n, 10000)
        rest = "" if low == 0 else ("零" if low < 1000 else "") + zh_number(low)
        return zh_number(high) + "万" + rest
    out = []
    zero_pending = False
    for value, unit in _ZH_UNITS[1:]:
        digit, n = divmod(n, value)
        if digit:
            if zero_pending:
                out.append("零")
                zero_pending = False
            out.append(_ZH_DIGITS[digit] + unit)
        elif out:
            zero_pending = True
    if n:
        if zero_pending:
            out.append("零")
        out.append(_ZH_DIGITS[n])
    text = "".join(out)
    return text[1:] if text.startswith("一十") else text


def zh_count(n: int) -> str:
    """A count before a measure word: 2 -> 两 (两个月), 22 -> 二十二, 200 -> 两百."""
    if n == 2:
        return "两"
    text = zh_number(n)
    if text.startswith("二百") or text.startswith("二千") or text.startswith("二万"):
        text = "两" + text[1:]
    return text


def en_number(n: int) -> str:
    """A non-negative integer below a million in English words (no hyphens, for speech)."""
    if n < 10:
        return _EN_DIGITS[n]
    if n < 20:
        return _EN_TEENS[n - 10]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _EN_TENS[tens] + ("" if ones == 0 else " " + _EN_DIGITS[ones])
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return _EN_DIGITS[hundreds] + " hundred" + ("" if rest == 0 else " " + en_number(rest))
    if n < 1_000_000:
        thousands, rest = divmod(n, 1000)
        return en_number(thousands) + " thousand" + ("" if rest == 0 else " " + en_number(rest))
    return spell_digits(str(n), "en")


def spell_digits(digits: str, language: str) -> str:
    """Digit by digit, as phone numbers are said: 120 -> 一二零 / one two zero."""
    if language == "zh":
        return "".join(_ZH_DIGITS[int(d)] for d in digits if d.isdigit())
    return " ".join(_EN_DIGITS[int(d)] for d in digits if d.isdigit())


def zh_clock(hour: int, minute: int) -> str:
    """A clock time as said in Mandarin: 15:00 -> 下午三点, 9:30 -> 上午九点半, 0:05 -> 凌晨十二点零五分."""
    if hour < 5:
        period = "凌晨"
    elif hour < 12:
        period = "上午"
    elif hour < 13:
        period = "中午"
    elif hour < 18:
        period = "下午"
    else:
        period = "晚上"
    twelve = hour % 12 or 12
    spoken_hour = "两" if twelve == 2 else zh_number(twelve)
    if minute == 0:
        tail = ""
    elif minute == 30:
        tail = "半"
    elif minute < 10:
        tail = "零" + zh_number(minute) + "分"
    else:
        tail = zh_number(minute) + "分"
    return f"{period}{spoken_hour}点{tail}"


def en_clock(hour: int, minute: int) -> str:
    """A clock time in English words: 15:00 -> three pm, 9:30 -> nine thirty am."""
    suffix = "am" if hour < 12 else "pm"
    twelve = hour % 12 or 12
    if minute == 0:
        return f"{en_number(twelve)} {suffix}"
    minutes = ("oh " + en_number(minute)) if minute < 10 else en_number(minute)
    return f"{en_number(twelve)} {minutes} {suffix}"
