"""The voice rules on everything the bot can say: every response of the domain
(every variation, in its language, with its buttons as choices) and every
knowledge-base voice answer, rendered for voice, must pass, turn by turn."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bot.voice.choices import choices_from_buttons, choices_prompt
from bot.voice.dialog import BOT_SILENT, GOODBYE, GREETING, NOTHING_HEARD, NOTHING_YET
from bot.voice.speakable import (
    CONTINUE_PROMPT,
    render_turns,
    to_speakable,
    turn_problems,
    voice_problems,
)

ROOT = Path(__file__).resolve().parents[2]


def variation_language(variation: dict) -> str:
    for condition in variation.get("condition") or []:
        if condition.get("name") == "language":
            return condition.get("value")
    return "zh"


def domain_variations():
    out = []
    for path in sorted((ROOT / "bot" / "domain").glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for name, variations in (data.get("responses") or {}).items():
            for i, variation in enumerate(variations):
                if variation.get("text"):
                    out.append(pytest.param(variation, id=f"{name}[{i}]"))
    return out


def kb_voice_answers():
    out = []
    for path in sorted((ROOT / "knowledge_base" / "guidance").glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError:  # a file being written right now; the KB validator reports it
            continue
        for entry in data.get("entries") or []:
            if isinstance(entry, dict) and entry.get("voice_answer"):
                out.append(pytest.param(entry["language"], str(entry["voice_answer"]), id=str(entry.get("id"))))
    return out


VARIATIONS = domain_variations()
KB_ANSWERS = kb_voice_answers()


def test_there_is_something_to_check():
    assert len(VARIATIONS) >= 10
    assert len(KB_ANSWERS) >= 60


@pytest.mark.parametrize("variation", VARIATIONS)
def test_every_domain_response_passes_when_rendered_for_voice(variation):
    language = variation_language(variation)
    choices = choices_from_buttons(variation.get("buttons"))
    turns = render_turns([variation["text"]], language, choices_prompt(choices, language))
    assert turns and all(t.body or t.prompt for t in turns)
    for turn in turns:
        assert turn_problems(turn) == [], turn.text
    if choices:
        assert turns[-1].text.count("或者按") == len(choices) or turns[-1].text.count("or press") == len(choices)


@pytest.mark.parametrize("language, answer", KB_ANSWERS)
def test_every_knowledge_base_voice_answer_passes(language, answer):
    # As written: short, no links or symbols (the length and content rules).
    raw = [p for p in voice_problems(to_speakable(answer, language), language) if "sentences" not in p]
    assert raw == []
    # As said: at most two sentences a turn, longer ones continued on request.
    for turn in render_turns([answer], language):
        assert turn_problems(turn) == [], turn.text


def test_fixed_phone_texts_pass_as_they_are():
    for table in (GREETING, NOTHING_HEARD, GOODBYE, NOTHING_YET, BOT_SILENT):
        for language, text in table.items():
            assert voice_problems(text, language) == [], text


def test_action_messages_pass_when_rendered():
    """Texts our actions say (tables named *_MESSAGES / NOTHING_TO_REPEAT), placeholders filled."""
    import importlib
    import pkgutil
    from collections import defaultdict

    import bot.actions

    checked = 0
    for info in pkgutil.iter_modules(bot.actions.__path__):
        module = importlib.import_module(f"bot.actions.{info.name}")
        for name, table in vars(module).items():
            if not (name.endswith("_MESSAGES") or name == "NOTHING_TO_REPEAT") or not isinstance(table, dict):
                continue
            for language, text in table.items():
                if language not in ("zh", "en") or not isinstance(text, str):
                    continue
                filled = text.format_map(defaultdict(lambda: "5", hotline="12320"))
                for turn in render_turns([filled], language):
                    assert turn_problems(turn) == [], f"{info.name}.{name}: {turn.text}"
                checked += 1
    assert checked >= 4


# ----------------------------------------------------------------------------- the rules themselves

@pytest.mark.parametrize(
    "text, language, expected",
    [
        ("宝宝2个月了", "zh", "宝宝两个月了。"),
        ("2026-03-05 15:00 打针", "zh", "3月5号下午三点打针。"),
        ("3月5日上午9:30", "zh", "3月5号上午九点半。"),
        ("烧到38.5℃", "zh", "烧到三十八度五。"),
        ("一天喂2-3次", "zh", "一天喂两到三次。"),
        ("请拨打120", "zh", "请拨打一二零。"),
        ("打DTaP和MMR", "zh", "打百白破和麻腮风。"),
        ("看说明书（按体重）", "zh", "看说明书，按体重。"),
        ("说“转人工”就行 😀", "zh", "说转人工就行。"),
        ("详见https://www.nhc.gov.cn/x。", "zh", "详见。"),
        ("Call 120 (in China).", "en", "Call one two zero, in China."),
        ("e.g. the MMR vaccine at 15:00", "en", "for example the the measles, mumps and rubella vaccine vaccine at three pm."),
        ("Give 2-3 times a day, 50% of it", "en", "Give 2 to 3 times a day, 50 percent of it."),
    ],
)
def test_speakable_rewrites(text, language, expected):
    assert to_speakable(text, language) == expected


@pytest.mark.parametrize(
    "text, language, problem",
    [
        ("宝宝发烧了。多喝水。注意休息。", "zh", "sentences"),
        ("宝" * 61, "zh", "too long"),
        ("详见 www.example.com", "zh", "link"),
        ("打MMR", "zh", "Latin"),
        ("宝宝2个月", "zh", "两"),
        ("烧到38.5度", "zh", "decimal"),
        ("下午3:00来", "zh", "clock"),
        ("看（说明书）", "zh", "symbols"),
        ("好的👍", "zh", "emoji"),
        (" ".join(["word"] * 36), "en", "too long"),
        ("Get the MMR shot.", "en", "abbreviations"),
        ("e.g. water", "en", "abbreviations"),
    ],
)
def test_checker_catches(text, language, problem):
    assert any(problem in p for p in voice_problems(text, language))


def test_long_reply_is_split_with_the_continue_question():
    text = "。".join(["宝宝发烧先看精神状态"] * 7) + "。"
    turns = render_turns([text], "zh")
    assert len(turns) >= 3
    assert all(t.text.endswith(CONTINUE_PROMPT["zh"]) for t in turns[:-1])
    assert not turns[-1].text.endswith(CONTINUE_PROMPT["zh"])
    assert "".join(t.body for t in turns) == to_speakable(text, "zh")
    for turn in turns:
        assert turn_problems(turn) == []
        assert len(re.sub(r"\s", "", turn.text)) <= 60


def test_one_overlong_sentence_is_cut_at_commas():
    text = "，".join(["出生一天内就黄", "越来越黄", "手心脚心黄", "宝宝嗜睡", "吃奶差", "大便发白", "尿色深",
                     "哭声尖", "黄疸超过两周不退", "都要马上去医院看医生"]) + "。"
    turns = render_turns([text], "zh")
    assert len(turns) >= 2 and all(turn_problems(t) == [] for t in turns)


def test_english_split_counts_words():
    text = " ".join(f"Sentence number {i} has exactly seven words." for i in range(8))
    turns = render_turns([text], "en")
    assert len(turns) > 1
    for turn in turns:
        assert len(turn.text.split()) <= 35 and turn_problems(turn) == []


def test_choices_are_said_with_keys():
    choices = choices_from_buttons([{"title": "好，转人工", "payload": "/request_human"},
                                    {"title": "不用了", "payload": "/deny"}])
    assert choices_prompt(choices, "zh") == "好，转人工，说1或者按1；不用了，说2或者按2。"
    assert choices_prompt(choices, "zh", "sms") == "回复1：好，转人工；回复2：不用了。"
    en = choices_from_buttons([{"title": "Yes, a hotline worker", "payload": "/request_human"}])
    assert choices_prompt(en, "en") == "For Yes, a hotline worker, say 1 or press 1."


def test_knowledge_action_messages_pass_when_rendered():
    """The knowledge-base action's own strings (bot/actions/knowledge_messages.yaml), if present."""
    from collections import defaultdict

    path = ROOT / "bot" / "actions" / "knowledge_messages.yaml"
    if not path.exists():
        pytest.skip("bot/actions/knowledge_messages.yaml not in this checkout")
    table = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    fill = defaultdict(lambda: "新生儿黄疸", organisation="国家卫生健康委员会", first="新生儿黄疸", second="发烧护理")
    checked = 0
    for key, texts in table.items():
        if key in ("source_prefix", "source_separator") or not isinstance(texts, dict):
            continue
        for language, text in texts.items():
            if language not in ("zh", "en") or not isinstance(text, str):
                continue
            filled = text.format_map(fill if language == "zh" else defaultdict(
                lambda: "newborn jaundice", organisation="the WHO", first="newborn jaundice", second="fever"))
            for turn in render_turns([filled], language):
                assert turn_problems(turn) == [], f"{key}.{language}: {turn.text}"
            checked += 1
    assert checked >= 4
