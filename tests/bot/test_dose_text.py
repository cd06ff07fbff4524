import pytest

from reminders.dose_text import DoseMention, find_dose_mention


@pytest.mark.parametrize(
    "text, region, expected",
    [
        ("已经打了乙肝第二针", "CN", DoseMention("hepb", 2)),
        ("今天打完百白破了", "CN", DoseMention("dtap", None)),
        ("马腮风第1剂打了", "CN", DoseMention("mmr", 1)),  # speech-recognition slip
        ("打了乙脑灭活第二针", "CN", DoseMention("je_inact", 2)),
        ("乙脑第2针打了", "CN", DoseMention("je_live", 2)),
        ("we got the second dose of MMR today", "CN", DoseMention("mmr", 2)),
        ("got hep b dose 3", "US", DoseMention("hepb", 3)),
        ("已打", "CN", None),
        ("宝宝发烧了", "CN", None),
    ],
)
def test_find_dose_mention(text, region, expected):
    assert find_dose_mention(text, region) == expected
