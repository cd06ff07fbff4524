"""Pure parsing: birth dates, phones, reply words."""
import datetime as dt
import logging

import pytest

from reminders.dates import AMBIGUOUS, FUTURE, OK, TOO_OLD, UNPARSEABLE, cn_number, parse_birth_date
from reminders.phones import PhoneMaskingFilter, mask_phone, mask_phones_in_text, normalize_phone
from reminders.replies import ReplyIntent, classify_reply

TODAY = dt.date(2026, 6, 15)


@pytest.mark.parametrize("text,expected", [
    ("2025年3月5日", dt.date(2025, 3, 5)),
    ("2025年3月5号", dt.date(2025, 3, 5)),
    ("25年3月5号", dt.date(2025, 3, 5)),
    ("3月5号", dt.date(2026, 3, 5)),               # this year
    ("去年十月五号", dt.date(2025, 10, 5)),          # Chinese numerals, relative year
    ("今年二月二十八日", dt.date(2026, 2, 28)),
    ("前年十二月三十一日", dt.date(2024, 12, 31)),
    ("二〇二五年三月五日", dt.date(2025, 3, 5)),
    ("2025-03-05", dt.date(2025, 3, 5)),
    ("2025/3/5", dt.date(2025, 3, 5)),
    ("2025.3.5", dt.date(2025, 3, 5)),
    ("March 5 2025", dt.date(2025, 3, 5)),
    ("march 5, 2025", dt.date(2025, 3, 5)),
    ("Mar 5th 2025", dt.date(2025, 3, 5)),
    ("5 March 2025", dt.date(2025, 3, 5)),
    ("5th of March, 2025", dt.date(2025, 3, 5)),
    ("宝宝是2025年3月5日出生的", dt.date(2025, 3, 5)),
    ("born on 2025-03-05", dt.date(2025, 3, 5)),
    ("13/03/2025", dt.date(2025, 3, 13)),          # only one reading possible
])
def test_date_forms_ok(text, expected):
    r = parse_birth_date(text, TODAY)
    assert r.status == OK, (text, r)
    assert r.date == expected
    assert r.message_zh and r.message_en


def test_month_day_in_future_this_year_is_ambiguous_with_last_year():
    r = parse_birth_date("12月25号", TODAY)
    assert r.status == AMBIGUOUS
    assert r.candidates == [dt.date(2025, 12, 25)]
    assert "确认" in r.message_zh


def test_numeric_day_month_order_ambiguous():
    r = parse_birth_date("05/03/2025", TODAY)
    assert r.status == AMBIGUOUS
    assert r.date is None
    assert set(r.candidates) == {dt.date(2025, 3, 5), dt.date(2025, 5, 3)}


def test_ambiguous_keeps_only_plausible_candidates():
    # 06/07/2026: 6 July is in the future, 7 June is fine -> still confirm, one candidate
    r = parse_birth_date("06/07/2026", TODAY)
    assert r.status == AMBIGUOUS and r.candidates == [dt.date(2026, 6, 7)]


@pytest.mark.parametrize("text", ["2026年6月16日", "2027-01-01", "June 16 2026", "明年三月五号" ])
def test_future(text):
    r = parse_birth_date(text, TODAY)
    assert r.status == FUTURE
    assert "还没到" in r.message_zh and "future" in r.message_en


def test_today_is_ok_and_boundary_of_six_years():
    assert parse_birth_date("2026-06-15", TODAY).status == OK
    assert parse_birth_date("2020-06-15", TODAY).status == OK          # exactly 6 years
    r = parse_birth_date("2020-06-14", TODAY)
    assert r.status == TOO_OLD and "6" in r.message_zh
    assert parse_birth_date("99年3月5号", TODAY).status == TOO_OLD     # 1999


@pytest.mark.parametrize("text", ["", "   ", "hello", "2025年2月30日", "2025-13-01", "Foo 5 2025", "三月", None])
def test_unparseable(text):
    assert parse_birth_date(text, TODAY).status == UNPARSEABLE


def test_injectable_today_changes_result():
    assert parse_birth_date("3月5号", dt.date(2026, 3, 4)).status == AMBIGUOUS
    assert parse_birth_date("3月5号", dt.date(2026, 3, 5)).status == OK


def test_cn_numbers():
    assert [cn_number(s) for s in ["十", "十二", "二十", "二十五", "三十一", "五", "二〇二五", "12"]] == \
        [10, 12, 20, 25, 31, 5, 2025, 12]
    assert cn_number("一百") is None


@pytest.mark.parametrize("text,expected", [
    ("13812345678", "13812345678"), ("138 1234 5678", "13812345678"), ("138-1234-5678", "13812345678"),
    ("+86 138 1234 5678", "13812345678"), ("+8613812345678", "13812345678"), ("0086-13812345678", "13812345678"),
    ("8613812345678", "13812345678"), ("（138）1234-5678", "13812345678"), ("１３８１２３４５６７８", "13812345678"),
    ("19912345678", "19912345678"),
])
def test_phone_valid(text, expected):
    assert normalize_phone(text) == expected


@pytest.mark.parametrize("text", ["12812345678", "1381234567", "138123456789", "23812345678", "abc", "", None,
                                  "+1 415 555 1234", "010-12345678"])
def test_phone_invalid(text):
    assert normalize_phone(text) is None


def test_phone_masking_and_log_filter(caplog):
    assert mask_phone("+86 138-1234-5678") == "138****5678"
    assert mask_phones_in_text("call 13812345678 or +86 139 0000 1111") == "call 138****5678 or 139****1111"
    logger = logging.getLogger("test.mask")
    logger.addFilter(PhoneMaskingFilter())
    with caplog.at_level(logging.INFO, logger="test.mask"):
        logger.info("sms to %s failed", "13812345678")
    assert "13812345678" not in caplog.text and "138****5678" in caplog.text


@pytest.mark.parametrize("text,intent", [
    ("收到", ReplyIntent.ACK), ("好的", ReplyIntent.ACK), ("OK", ReplyIntent.ACK), ("ok!", ReplyIntent.ACK),
    ("done", ReplyIntent.ACK), ("Done.", ReplyIntent.ACK), ("收到，谢谢", ReplyIntent.ACK),
    ("已打", ReplyIntent.DOSE_GIVEN), ("打了", ReplyIntent.DOSE_GIVEN), ("已经打了乙肝第二针", ReplyIntent.DOSE_GIVEN),
    ("done shot", ReplyIntent.DOSE_GIVEN), ("DONE SHOT", ReplyIntent.DOSE_GIVEN), ("已接种", ReplyIntent.DOSE_GIVEN),
    ("退订", ReplyIntent.OPT_OUT), ("TD", ReplyIntent.OPT_OUT), ("td", ReplyIntent.OPT_OUT),
    ("STOP", ReplyIntent.OPT_OUT), ("取消提醒", ReplyIntent.OPT_OUT), ("unsubscribe", ReplyIntent.OPT_OUT),
    ("请取消提醒吧", ReplyIntent.OPT_OUT), ("是", ReplyIntent.CONFIRM_YES), ("yes", ReplyIntent.CONFIRM_YES),
    ("否", ReplyIntent.CONFIRM_NO), ("还没打", ReplyIntent.NOT_GIVEN), ("not yet", ReplyIntent.NOT_GIVEN),
    ("宝宝发烧了怎么办", ReplyIntent.UNKNOWN), ("", ReplyIntent.UNKNOWN), ("standard", ReplyIntent.UNKNOWN),
])
def test_reply_classification(text, intent):
    assert classify_reply(text) == intent
