import pytest

from bot.actions.language import requested_language
from bot.language import detect_language


@pytest.mark.parametrize(
    "text, expected",
    [
        ("你好", "zh"),
        ("宝宝发烧了咋整", "zh"),
        ("hello", "en"),
        ("My baby has a fever", "en"),
        ("提醒我 call mom", "zh"),  # any Chinese makes it Chinese
        ("OK", None),  # same in both languages: keep the conversation's
        ("TD", None),
        ("😀😀😀", None),
        ("13812345678", None),
        ("", None),
        ("/request_human", None),  # a button payload
        ('/book_activity{"activity_id": "a1"}', None),
        (None, None),
    ],
)
def test_detect_language(text, expected):
    assert detect_language(text) == expected


@pytest.mark.parametrize(
    "text, current, expected",
    [
        ("说英语", "zh", "en"),
        ("请用英文回答", "zh", "en"),
        ("English please", "en", "en"),
        ("speak Chinese please", "en", "zh"),
        ("能说中文吗", "en", "zh"),
        ("换种语言", "zh", "en"),  # names none: the other one
        ("switch language", "en", "zh"),
    ],
)
def test_requested_language(text, current, expected):
    assert requested_language(text, current) == expected
