"""A stated age steers the search to topics that cover it."""
import pytest

from knowledge_base.search import TopicScore, prefer_age_range, stated_age_months


@pytest.mark.parametrize(
    "query, months",
    [
        ("宝宝发烧38度5 6个月大 咋整", 6.0),  # not 56: the temperature's digits stay apart
        ("3岁孩子老发脾气", 36.0),
        ("两个半月宝宝吐奶", 2.5),
        ("新生儿黄疸多少算高", 0.5),
        ("my 10-month-old has a fever", 10.0),
        ("宝宝发烧怎么办", None),
        ("过了一个月还在咳嗽", None),  # how long, not how old
        ("toddler tantrums", None),
    ],
)
def test_stated_age_months(query, months):
    assert stated_age_months(query) == months


RANGES = {"fever_young_infant": (0, 3), "fever_management": (3, 72), "kindergarten": (24, 72)}
RANKED = [TopicScore("fever_young_infant", 0.9, 0.9, 0.9), TopicScore("fever_management", 0.8, 0.8, 0.8),
          TopicScore("kindergarten", 0.1, 0.1, 0.1)]


def test_topics_covering_the_age_come_first_in_score_order():
    assert [t.topic for t in prefer_age_range(RANKED, RANGES, 6.0)] == [
        "fever_management", "fever_young_infant", "kindergarten"]
    assert [t.topic for t in prefer_age_range(RANKED, RANGES, 30.0)] == [
        "fever_management", "kindergarten", "fever_young_infant"]


def test_no_stated_age_keeps_the_order():
    assert prefer_age_range(RANKED, RANGES, None) == RANKED


@pytest.mark.parametrize("query", ["宝宝发烧38度5 2个月大", "宝宝发烧38.5 2个月", "2个月宝宝发烧38度5"])
def test_fever_with_a_spaced_temperature_under_3_months_is_urgent(query):
    from knowledge_base.red_flags import check

    flag = check(query)
    assert flag is not None and flag.id == "infant_fever"
