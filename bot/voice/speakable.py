"""Speakable text and the voice rules (pure functions).

A reply in voice mode is heard once, on a phone or a smart speaker, often by
a grandparent. So every turn is at most two short sentences (about 60
Chinese characters or 35 English words), says no links, emoji, brackets or
abbreviations, says numbers, dates and times the way people say them
(两个月, 3月5号, 下午三点), and offers choices as "说1或者按1". A longer
reply is split into turns; each turn but the last ends with the question
whether to go on.

:func:`to_speakable` rewrites any bot text; :func:`render_turns` splits it
into :class:`Turn` objects; :func:`voice_problems` is the checker the tests
run on every response and knowledge-base voice answer.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence

from bot.voice.numbers import en_clock, en_number, spell_digits, zh_clock, zh_count, zh_number
from knowledge_base.validate import (
    LATIN_RE,
    VOICE_FORBIDDEN,
    VOICE_FORBIDDEN_ZH_ONLY,
    VOICE_MAX_EN_WORDS,
    VOICE_MAX_ZH_CHARS,
)

# One turn's budget is the knowledge base's voice-answer budget.
MAX_ZH_CHARS = VOICE_MAX_ZH_CHARS
MAX_EN_WORDS = VOICE_MAX_EN_WORDS
MAX_SENTENCES = 2

# The question ending a turn that has more to come; "1" works spoken or keyed.
CONTINUE_PROMPT = {
    "zh": "要继续听吗？说1或者按1。",
    "en": "To hear more, say 1 or press 1.",
}
SMS_CONTINUE_PROMPT = {"zh": "回复1看下一条。", "en": "Reply 1 for more."}

# Symbols that read badly in speech: the knowledge base's voice-answer set,
# plus marks a speech engine would read out from other replies.
FORBIDDEN_SYMBOLS = VOICE_FORBIDDEN | set("*#_|\\^=@&`")
FORBIDDEN_ZH_ONLY = VOICE_FORBIDDEN_ZH_ONLY
_LINK = re.compile(r"https?://\S+|www\.\S+|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|cn|org|gov|net|edu|io)\b(?:/\S*)?", re.I)
_EMOJI = re.compile(
    "[\U0001F000-\U0001FAFF\U00002600-\U000027BF\U0001F900-\U0001F9FF\u2B00-\u2BFF\uFE0F\u200D\u20E3]"
)
_LATIN = LATIN_RE
_EN_ABBREVIATION = re.compile(r"\b(?:[A-Z]{2,}s?|e\.g|i\.e|etc|approx|vs|min|hrs?|mos?|yrs?|wks?)\b\.?")
_CJK = re.compile(r"[\u3400-\u9fff]")

# Abbreviations said in full. Chinese: the names people use at the clinic.
ZH_ABBREVIATIONS = {
    "DTaP-IPV/Hib": "五联疫苗", "DTaP": "百白破", "DTP": "百白破", "MMR": "麻腮风", "BCG": "卡介苗",
    "HepB": "乙肝疫苗", "HBV": "乙肝", "IPV": "脊灰灭活疫苗", "bOPV": "脊灰减毒活疫苗", "OPV": "脊灰减毒活疫苗",
    "Hib": "流感嗜血杆菌疫苗", "HPV": "人乳头瘤病毒", "EV71": "手足口疫苗", "EV-71": "手足口疫苗",
    "ORS": "口服补液盐", "SIDS": "婴儿猝死", "CPR": "心肺复苏", "AAP": "美国儿科学会", "WHO": "世界卫生组织",
    "CDC": "疾控中心", "ICU": "重症监护室", "NICU": "新生儿重症监护室", "ADHD": "多动症", "App": "手机应用",
    "APP": "手机应用", "app": "手机应用", "OK": "好", "ok": "好", "B超": "超声检查", "CT": "电脑断层扫描",
    "DHA": "二十二碳六烯酸", "AD": "维生素A和D", "VD": "维生素D", "VitD": "维生素D",
    "SMS": "短信", "TD": "退订",
}
EN_ABBREVIATIONS = {
    "e.g.": "for example", "e.g": "for example", "i.e.": "that is", "etc.": "and so on", "approx.": "about",
    "vs.": "or", "vs": "or", "DTaP": "the diphtheria, tetanus and whooping cough vaccine",
    "MMR": "the measles, mumps and rubella vaccine", "BCG": "the tuberculosis vaccine",
    "HepB": "hepatitis B", "IPV": "the polio vaccine", "Hib": "the Hib vaccine", "ORS": "oral rehydration salts",
    "SIDS": "sudden infant death", "CPR": "C P R", "AAP": "the American Academy of Pediatrics",
    "WHO": "the World Health Organization", "CDC": "the C D C", "ICU": "intensive care", "NICU": "newborn intensive care",
    "ADHD": "attention problems", "OK": "Okay", "US": "United States", "USA": "United States", "SMS": "text message",
    "hrs": "hours", "hr": "hour", "mins": "minutes", "min": "minutes", "mos": "months", "yrs": "years", "wks": "weeks",
}
# Numbers said digit by digit wherever they appear (emergency and health hotlines).
PHONE_NUMBERS = ("12320", "12356", "12345", "120", "110", "119", "122", "911", "999", "112")
_ZH_MEASURES = "个岁周次天年瓶顿针剂小时分钟秒颗片勺袋口遍位种件本页层米斤公斤克毫升毫克倍成项条只下杯盒支"
_EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
              "October", "November", "December")


@dataclass(frozen=True)
class Turn:
    """One spoken turn: its body (at most two sentences) and an optional closing prompt."""

    body: str
    prompt: str = ""
    language: str = "zh"

    @property
    def text(self) -> str:
        if not self.prompt:
            return self.body
        return self.body + (" " if self.language == "en" and self.body else "") + self.prompt

    @property
    def has_more(self) -> bool:
        return self.prompt in (CONTINUE_PROMPT["zh"], CONTINUE_PROMPT["en"], SMS_CONTINUE_PROMPT["zh"],
                               SMS_CONTINUE_PROMPT["en"])


def limits_for(language: str) -> int:
    """The length budget of one turn: characters (zh) or words (en)."""
    return MAX_ZH_CHARS if language == "zh" else MAX_EN_WORDS


def size(text: str, language: str) -> int:
    """Length as the rules count it: non-space characters (zh) or words (en)."""
    if language == "zh":
        return len(re.sub(r"\s", "", text))
    return len(text.split())


# ----------------------------------------------------------------------------- rewriting

def _replace_words(text: str, table: dict, boundary: bool) -> str:
    for short in sorted(table, key=len, reverse=True):
        if boundary:
            pattern = r"(?<![A-Za-z])" + re.escape(short) + r"(?![A-Za-z])"
        else:
            pattern = re.escape(short)
        text = re.sub(pattern, table[short].replace("\\", "\\\\"), text)
    return text


def _strip_markup(text: str) -> str:
    text = _LINK.sub("", text)
    text = _EMOJI.sub("", text)
    text = re.sub(r"[*_`#>]+", "", text)
    lines = []
    for line in text.splitlines():
        line = re.sub(r"^\s*(?:[-•·●▪]\s*|\d{1,2}[.、)）]\s*|[（(]\d{1,2}[)）]\s*)", "", line).strip()
        if line:
            lines.append(line)
    return "\n".join(lines)


def _zh_numbers(text: str) -> str:
    # Dates: 2026-03-05 / 2026年3月5日 / 3月5日 -> 3月5号
    text = re.sub(r"(?<!\d)\d{4}\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?",
                  lambda m: f"{int(m.group(1))}月{int(m.group(2))}号", text)
    text = re.sub(r"(?<!\d)(\d{1,2})月(\d{1,2})日", lambda m: f"{int(m.group(1))}月{int(m.group(2))}号", text)
    # Clock times: 15:00 -> 下午三点
    def clock(m: re.Match) -> str:
        spoken = zh_clock(int(m.group(2)), int(m.group(3)))
        if m.group(1):  # 上午9:30: keep the period the text gives
            spoken = m.group(1) + re.sub(r"^(凌晨|上午|中午|下午|晚上)", "", spoken)
        return spoken

    text = re.sub(r"(凌晨|早上|上午|中午|下午|晚上)?\s*(?<!\d)([01]?\d|2[0-3])[:：]([0-5]\d)(?!\d)", clock, text)
    # Temperatures: 38.5℃ / 38.5度 -> 三十八度五; 37℃ -> 三十七度
    text = re.sub(r"(\d{2})\.(\d)\s*(?:℃|°C|°|度)",
                  lambda m: f"{zh_number(int(m.group(1)))}度{zh_number(int(m.group(2)))}", text)
    text = re.sub(r"(\d{2})\s*(?:℃|°C|°)", lambda m: f"{zh_number(int(m.group(1)))}度", text)
    # Percentages: 50% -> 百分之五十
    text = re.sub(r"(\d+)\s*[%％]", lambda m: "百分之" + zh_number(int(m.group(1))), text)
    # Ranges: 2-3天 / 2~3 -> 2到3
    text = re.sub(r"(\d+)\s*[-~～–—－]\s*(\d+)", r"\1到\2", text)
    # Hotline and emergency numbers, digit by digit.
    for number in PHONE_NUMBERS:
        text = re.sub(rf"(?<!\d){number}(?!\d)", spell_digits(number, "zh"), text)
    text = re.sub(r"(?:(?<=电话)|(?<=热线)|(?<=拨打)|(?<=号码))[:：\s]*(\d{3,})",
                  lambda m: spell_digits(m.group(1), "zh"), text)
    # Decimals: 1.5 -> 一点五
    text = re.sub(r"(?<![\d.])(\d+)\.(\d+)(?![\d.])",
                  lambda m: zh_number(int(m.group(1))) + "点" + spell_digits(m.group(2), "zh"), text)
    # Counts before a measure word: 2个月 -> 两个月, 2到3天 -> 两到三天
    text = re.sub(rf"(?<![\d.])(\d+)(?=(?:到\d+)?[{_ZH_MEASURES}])", lambda m: zh_count(int(m.group(1))), text)
    text = re.sub(r"(?<=到)(\d+)(?![\d.])", lambda m: zh_number(int(m.group(1))), text)
    return text


def _en_numbers(text: str) -> str:
    def date(m: re.Match) -> str:
        month, day = int(m.group(1)), int(m.group(2))
        return f"{_EN_MONTHS[month - 1]} {day}" if 1 <= month <= 12 else m.group(0)

    text = re.sub(r"(?<!\d)\d{4}-(\d{1,2})-(\d{1,2})(?!\d)", date, text)
    text = re.sub(r"(?<!\d)([01]?\d|2[0-3]):([0-5]\d)\s*(?:am|pm|AM|PM)?(?!\d)",
                  lambda m: en_clock(int(m.group(1)), int(m.group(2))), text)
    text = re.sub(r"(\d+)\.(\d)\s*(?:℃|°C|°)", lambda m: f"{en_number(int(m.group(1)))} point "
                  f"{en_number(int(m.group(2)))} degrees", text)
    text = re.sub(r"(\d+)\s*(?:℃|°C|°F|°)", lambda m: f"{en_number(int(m.group(1)))} degrees", text)
    text = re.sub(r"(\d+)\s*%", lambda m: f"{m.group(1)} percent", text)
    text = re.sub(r"(\d+)\s*[-~–—]\s*(\d+)", r"\1 to \2", text)
    for number in PHONE_NUMBERS:
        text = re.sub(rf"(?<![\d.]){number}(?!\d)", spell_digits(number, "en"), text)
    text = re.sub(r"(\d+)\.(\d+)", lambda m: f"{m.group(1)} point {spell_digits(m.group(2), 'en')}", text)
    return text


def _brackets_and_symbols(text: str, language: str) -> str:
    # A bracketed aside is kept, set off by commas.
    text = re.sub(r"\s*[（(【\[〈]\s*", "，" if language == "zh" else ", ", text)
    text = re.sub(r"\s*[）)】\]〉]\s*", "，" if language == "zh" else ", ", text)
    text = re.sub(r"[《》「」『』“”\"{}<>]", "", text)
    if language == "zh":
        text = re.sub(r"[‘’']", "", text)
        text = text.replace("/", "或").replace("／", "或").replace("+", "加").replace("＋", "加")
        text = text.replace("&", "和").replace("~", "到").replace("～", "到")
        text = re.sub(r"[-－–—]+", "，", text)
        text = text.replace("…", "。").replace("...", "。")
    else:
        text = text.replace("/", " or ").replace("&", " and ").replace("+", " plus ").replace("~", " about ")
        text = re.sub(r"(?<=\w)-(?=\w)", " ", text)
        text = re.sub(r"\s*[-–—]+\s*", ", ", text)
        text = text.replace("…", ".").replace("...", ".")
    return re.sub(r"[*#_|\\^=@`]", "", text)


def _tidy(text: str, language: str) -> str:
    if language == "zh":
        # Lines become sentences; a line ending in a colon keeps going.
        text = re.sub(r"(?<=[^。！？!?；;：:，,])\n", "。", text)
        text = text.replace("\n", "")
        text = re.sub(r"(?<=[\u3400-\u9fff，。！？；：])\s+|\s+(?=[\u3400-\u9fff，。！？；：])", "", text)
        text = text.replace(",", "，").replace(";", "；").replace("!", "！").replace("?", "？").replace(":", "：")
        text = re.sub(r"，{2,}", "，", text)
        text = re.sub(r"[，、：]+(?=[。！？；])", "", text)
        text = re.sub(r"([。！？；])[，、]+", r"\1", text)
        text = re.sub(r"^[，。、；：\s]+", "", text)
        text = re.sub(r"[，、：\s]+$", "", text)
        if text and text[-1] not in "。！？；":
            text += "。"
    else:
        text = re.sub(r"(?<=[^.!?;:,])\n", ". ", text)
        text = text.replace("\n", " ")
        text = re.sub(r"\s+", " ", text)
        text = re.sub(r"\s+([,.;:!?])", r"\1", text)
        text = re.sub(r"(,\s*){2,}", ", ", text)
        text = re.sub(r",\s*(?=[.!?;])", "", text)
        text = re.sub(r"([.!?;])\s*,", r"\1", text)
        text = re.sub(r"^[\s,.;:]+|[\s,;:]+$", "", text)
        if text and text[-1] not in ".!?":
            text += "."
    return text.strip()


def to_speakable(text: str, language: str = "zh") -> str:
    """Rewrite a bot reply for the ear.

    Drops links, emoji and markup; list lines become sentences; brackets
    and quotes go (a bracketed aside stays, set off by commas); known
    abbreviations are said in full; numbers, dates and times are said the
    way people say them.
    """
    language = "en" if language == "en" else "zh"
    text = _strip_markup(text or "")
    if language == "zh":
        text = _replace_words(text, ZH_ABBREVIATIONS, boundary=True)
        text = _zh_numbers(text)
    else:
        text = _replace_words(text, {k: v for k, v in EN_ABBREVIATIONS.items() if "." in k}, boundary=False)
        text = _replace_words(text, {k: v for k, v in EN_ABBREVIATIONS.items() if "." not in k}, boundary=True)
        text = _en_numbers(text)
        # Any other acronym is spelled letter by letter.
        text = re.sub(r"\b([A-Z]{2,})s?\b", lambda m: " ".join(m.group(1)), text)
    text = _brackets_and_symbols(text, language)
    return _tidy(text, language)


# ----------------------------------------------------------------------------- sentences and turns

def split_sentences(text: str, language: str) -> List[str]:
    """Sentences, each with its closing punctuation."""
    if language == "zh":
        parts = re.findall(r"[^。！？；!?;]+[。！？；!?;]*", text)
    else:
        parts = re.split(r"(?<=[.!?;])\s+", text)
    return [p.strip() for p in parts if p.strip()]


def _clauses(sentence: str, language: str, budget: int) -> List[str]:
    """Split one over-long sentence at commas (then hard) into pieces within budget."""
    if size(sentence, language) <= budget:
        return [sentence]
    end = "。" if language == "zh" else "."
    if language == "zh":
        pieces = re.findall(r"[^，、：,]+[，、：,]?", sentence)
    else:
        pieces = re.findall(r"[^,:]+[,:]?\s*", sentence)
    out: List[str] = []
    current = ""
    for piece in pieces:
        candidate = (current + piece) if language == "zh" else (current + piece)
        if current and size(candidate, language) > budget:
            out.append(current)
            current = piece
        else:
            current = candidate
    if current:
        out.append(current)
    fixed: List[str] = []
    for piece in out:
        piece = piece.strip()
        piece = re.sub(r"[，、：,:]$", "", piece)
        if piece and piece[-1] not in "。！？；.!?;":
            piece += end
        if size(piece, language) > budget:  # a single clause too long: cut it
            if language == "zh":
                chars = piece.rstrip("。！？；")
                fixed.extend(chars[i:i + budget - 1] + "。" for i in range(0, len(chars), budget - 1))
            else:
                words = piece.rstrip(".!?;").split()
                fixed.extend(" ".join(words[i:i + budget]) + "." for i in range(0, len(words), budget))
        else:
            fixed.append(piece)
    return fixed


def _join(sentences: Sequence[str], language: str) -> str:
    return ("" if language == "zh" else " ").join(sentences)


def render_turns(
    texts: Iterable[str],
    language: str = "zh",
    closing_prompt: str = "",
    continue_prompt: Optional[str] = None,
    limit: Optional[int] = None,
) -> List[Turn]:
    """Turn the texts of one bot turn into spoken turns.

    Each turn holds at most two sentences; with its prompt it stays within
    the budget (60 characters / 35 words unless ``limit``). Every turn but
    the last ends with ``continue_prompt``; the last one with
    ``closing_prompt`` (e.g. the choices "说1或者按1").
    """
    language = "en" if language == "en" else "zh"
    limit = limit or limits_for(language)
    more = CONTINUE_PROMPT[language] if continue_prompt is None else continue_prompt
    speakable = to_speakable("\n".join(t for t in texts if t and t.strip()), language)
    budget_more = max(8, limit - size(more, language))
    budget_last = max(8, limit - size(closing_prompt, language))
    piece_budget = min(budget_more, budget_last)
    sentences: List[str] = []
    for sentence in split_sentences(speakable, language):
        sentences.extend(_clauses(sentence, language, piece_budget))
    turns: List[Turn] = []
    i = 0
    while i < len(sentences):
        rest = sentences[i:]
        if len(rest) <= MAX_SENTENCES and size(_join(rest, language), language) <= budget_last:
            turns.append(Turn(_join(rest, language), closing_prompt, language))
            break
        take = [sentences[i]]
        i += 1
        if i < len(sentences) and size(_join(take + [sentences[i]], language), language) <= budget_more:
            # Do not leave a lone final sentence that could have fitted here.
            take.append(sentences[i])
            i += 1
        turns.append(Turn(_join(take, language), more, language))
    if not turns:
        turns.append(Turn("", closing_prompt, language))
    return turns


# ----------------------------------------------------------------------------- the checker

def voice_problems(text: str, language: str, prompt: str = "") -> List[str]:
    """What breaks the voice rules in one turn (empty list: it passes).

    ``prompt`` is the turn's closing prompt (continue or choices): it counts
    towards the length but not towards the two sentences.
    """
    language = "en" if language == "en" else "zh"
    problems: List[str] = []
    body = text[: len(text) - len(prompt)].rstrip() if prompt and text.endswith(prompt) else text
    total = size(text, language)
    if total > limits_for(language):
        unit = "characters" if language == "zh" else "words"
        problems.append(f"too long ({total} {unit} > {limits_for(language)})")
    sentences = split_sentences(body, language)
    if len(sentences) > MAX_SENTENCES:
        problems.append(f"{len(sentences)} sentences (> {MAX_SENTENCES})")
    if "\n" in text:
        problems.append("line breaks")
    if _LINK.search(text):
        problems.append("a link")
    if _EMOJI.search(text):
        problems.append("emoji")
    forbidden = FORBIDDEN_SYMBOLS | (FORBIDDEN_ZH_ONLY if language == "zh" else set())
    bad = sorted({ch for ch in text if ch in forbidden})
    if bad:
        problems.append("symbols not for speech: " + " ".join(bad))
    if language == "zh":
        if _LATIN.search(text):
            problems.append("Latin letters (abbreviation) in Chinese")
        if re.search(rf"(?<!\d)2(?=[{_ZH_MEASURES}])", text):
            problems.append("2 before a measure word (say 两)")
    else:
        found = [m.group(0) for m in _EN_ABBREVIATION.finditer(text) if m.group(0) not in ("I",)]
        if found:
            problems.append("abbreviations: " + ", ".join(found))
    if re.search(r"\d\s*[:：]\s*\d", text):
        problems.append("clock time in digits")
    if re.search(r"\d\.\d", text):
        problems.append("decimal number in digits")
    if re.search(r"\d{4}\s*[-/]\s*\d", text):
        problems.append("date in digits")
    if re.search(r"(?<!\d)\d{5,}(?!\d)", text):
        problems.append("long number in digits")
    return problems


def turn_problems(turn: Turn) -> List[str]:
    """:func:`voice_problems` for a rendered :class:`Turn`."""
    return voice_problems(turn.text, turn.language, turn.prompt)
