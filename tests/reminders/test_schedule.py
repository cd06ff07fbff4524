"""Schedule data, catch-up computation, either/or vaccines, quiet hours, merging, backoff (pure)."""
import datetime as dt

import pytest
import yaml

from reminders import planner
from reminders.planner import CaregiverInfo, is_quiet, next_allowed, plan_activity, plan_child
from reminders.schedule import (DROPPED, EXPIRED, GIVEN, MISSED, OVERDUE, PRESUMED, UPCOMING, Interval,
                                compute_schedule, load_schedule, next_due, parse_schedule_documents)

UTC = dt.timezone.utc
CN = load_schedule("CN")
US = load_schedule("US")


def by_id(items):
    return {c.item.id: c for c in items}


def test_data_files_complete_and_sourced():
    for sched in (CN, US):
        for it in sched.items:
            assert it.names.get("zh") and it.names.get("en"), it.id
            assert it.source in sched.sources and it.evidence in ("V", "K", "R"), it.id
    ids = set(CN.by_id)
    # China NIP 2021 + DTaP 2025 change
    assert {"hepb-1", "hepb-2", "hepb-3", "bcg-1", "polio-1", "polio-2", "polio-3", "polio-4", "dtap-1", "dtap-5",
            "mmr-1", "mmr-2", "je_live-1", "je_live-2", "je_inact-4", "mpsv-1", "mpsv-4", "hepa_live-1",
            "hepa_inact-2"} <= ids
    assert [i.earliest_age for i in CN.by_series["dtap"]] == [
        Interval(months=2), Interval(months=4), Interval(months=6), Interval(months=18), Interval(years=6)]
    assert CN.by_id["polio-4"].earliest_age == Interval(years=4)
    checkups = [i.id for i in CN.items if i.kind == "checkup"]
    assert checkups == ["visit-newborn", "visit-1m", "visit-3m", "visit-6m", "visit-8m", "visit-12m", "visit-18m",
                        "visit-24m", "visit-30m", "visit-36m", "visit-4y", "visit-5y", "visit-6y"]
    assert US.by_id["us-mmr-1"].earliest_age == Interval(months=12)


def test_bad_schedule_document_rejected():
    doc = yaml.safe_load("""
region: XX
sources: {s: {title: t, evidence: K}}
items:
  - {id: a-1, series: a, dose: 1, names: {zh: a, en: a}, earliest_age: {fortnights: 2}, source: s}
""")
    with pytest.raises(ValueError):
        parse_schedule_documents([doc])
    doc["items"][0]["earliest_age"] = {"months": 2}
    doc["items"][0]["source"] = "missing"
    with pytest.raises(ValueError):
        parse_schedule_documents([doc])


def test_on_time_child_due_dates_from_age():
    birth = dt.date(2026, 1, 31)
    c = by_id(compute_schedule(birth, CN, {}, birth))
    assert c["hepb-1"].due_date == birth and c["hepb-1"].status == "due"
    assert c["hepb-2"].due_date == dt.date(2026, 2, 28)          # end-of-month clamp
    assert c["dtap-1"].due_date == dt.date(2026, 3, 31)
    assert c["dtap-4"].due_date == dt.date(2027, 7, 31)
    assert c["mpsv-3"].due_date == dt.date(2029, 1, 31)
    assert c["dtap-5"].due_date == dt.date(2032, 1, 31)


def test_catch_up_uses_previous_dose_date_and_min_interval():
    birth = dt.date(2026, 1, 1)
    # HepB-2 given late on 2026-06-20: HepB-3 needs >= 60 days after dose 2 (not the 6-month age date)
    given = {"hepb-1": dt.date(2026, 1, 1), "hepb-2": dt.date(2026, 6, 20)}
    c = by_id(compute_schedule(birth, CN, given, dt.date(2026, 6, 21)))
    assert c["hepb-3"].due_date == dt.date(2026, 8, 19)
    assert c["hepb-3"].status == UPCOMING
    # on time: age (6 months) dominates
    given = {"hepb-1": dt.date(2026, 1, 1), "hepb-2": dt.date(2026, 2, 1)}
    c = by_id(compute_schedule(birth, CN, given, dt.date(2026, 2, 2)))
    assert c["hepb-3"].due_date == dt.date(2026, 7, 1)


def test_catch_up_extra_interval_to_first_dose():
    birth = dt.date(2026, 1, 1)
    # HepB-1 late (2026-05-01), HepB-2 2026-05-29: dose 3 >= 60d after dose 2 (07-28) and >= 4 months after dose 1 (09-01)
    given = {"hepb-1": dt.date(2026, 5, 1), "hepb-2": dt.date(2026, 5, 29)}
    c = by_id(compute_schedule(birth, CN, given, dt.date(2026, 6, 1)))
    assert c["hepb-3"].due_date == dt.date(2026, 9, 1)


def test_missing_dose_projects_the_chain_from_today_not_from_age():
    birth = dt.date(2026, 1, 1)
    today = dt.date(2026, 9, 1)          # 8 months, nothing given
    c = by_id(compute_schedule(birth, CN, {}, today))
    assert c["dtap-1"].status == OVERDUE and c["dtap-1"].due_date == dt.date(2026, 3, 1)
    # dose 2 cannot be before today + 28 days (dose 1 is given today at the earliest)
    assert c["dtap-2"].due_date == today + dt.timedelta(days=28)
    assert c["dtap-3"].due_date == today + dt.timedelta(days=56)
    assert c["dtap-4"].due_date == dt.date(2027, 7, 1)           # 18 months > dose3 + 6 months (2027-04-27)
    nxt = next_due(birth, CN, {}, today)
    assert {x.item.id for x in nxt} >= {"hepb-1", "bcg-1", "dtap-1", "polio-1", "mmr-1", "je_live-1"}


def test_later_dose_recorded_means_earlier_presumed_and_late_series_shifts():
    birth = dt.date(2025, 1, 1)
    c = by_id(compute_schedule(birth, CN, {"dtap-3": dt.date(2025, 12, 1)}, dt.date(2026, 1, 1)))
    assert c["dtap-1"].status == PRESUMED and c["dtap-2"].status == PRESUMED
    # max(18 months = 2026-07-01, dose 3 + 6 months = 2026-06-01)
    assert c["dtap-4"].due_date == dt.date(2026, 7, 1)


def test_dtap4_max_of_age_and_interval():
    birth = dt.date(2025, 1, 1)
    c = by_id(compute_schedule(birth, CN, {"dtap-1": dt.date(2025, 3, 1), "dtap-2": dt.date(2025, 5, 1),
                                           "dtap-3": dt.date(2026, 3, 1)}, dt.date(2026, 3, 2)))
    assert c["dtap-4"].due_date == dt.date(2026, 9, 1)            # dose 3 + 6 months > 18 months (2026-07-01)


def test_either_or_default_live_mentions_alternative():
    birth = dt.date(2026, 1, 1)
    c = by_id(compute_schedule(birth, CN, {}, birth))
    assert c["je_live-1"].status == UPCOMING and c["je_live-1"].alternative == "je_inact"
    assert c["je_inact-1"].status == DROPPED
    assert c["hepa_live-1"].alternative == "hepa_inact" and c["hepa_inact-2"].status == DROPPED
    p = plan_child("k", "小明", "Asia/Shanghai", birth, compute_schedule(birth, CN, {}, birth),
                   [CaregiverInfo("c", 0, "zh", dt.time(21), dt.time(8), False, chat_sender_id="s")], CN,
                   dt.datetime(2026, 1, 1, 2, tzinfo=UTC))
    je_msg = next(r for r in p if any(i == "je_live-1" for i, _ in r.items))
    assert "乙脑灭活疫苗" in je_msg.body and "4剂" in je_msg.body


def test_either_or_switch_when_inactivated_recorded():
    birth = dt.date(2026, 1, 1)
    given = {"je_inact-1": dt.date(2026, 9, 1)}
    c = by_id(compute_schedule(birth, CN, given, dt.date(2026, 9, 2)))
    assert c["je_live-1"].status == DROPPED and c["je_live-2"].status == DROPPED
    assert c["je_inact-1"].status == GIVEN and c["je_inact-1"].alternative is None
    assert c["je_inact-2"].due_date == dt.date(2026, 9, 8)         # 7 days after dose 1
    assert c["je_inact-3"].due_date == dt.date(2028, 1, 1)
    assert c["je_inact-4"].due_date == dt.date(2032, 1, 1)
    c = by_id(compute_schedule(birth, CN, {"hepa_inact-1": dt.date(2027, 7, 1)}, dt.date(2027, 7, 2)))
    assert c["hepa_live-1"].status == DROPPED
    assert c["hepa_inact-2"].due_date == dt.date(2028, 1, 1)


def test_expired_and_missed_items_are_not_reminded():
    birth = dt.date(2021, 1, 1)
    c = by_id(compute_schedule(birth, CN, {}, dt.date(2026, 1, 1)))
    assert c["bcg-1"].status == EXPIRED                     # no BCG catch-up from 4 years
    assert c["visit-3m"].status == MISSED                   # old check-ups are not reminded
    assert c["visit-6y"].status == UPCOMING
    assert c["mmr-1"].status == OVERDUE                     # vaccines are caught up


def test_us_schedule_for_english_users():
    birth = dt.date(2026, 1, 1)
    c = by_id(compute_schedule(birth, US, {}, birth))
    assert c["us-mmr-1"].due_date == dt.date(2027, 1, 1)
    assert c["us-rv1-1"].alternative == "rv5" and c["us-rv5-1"].status == DROPPED
    c = by_id(compute_schedule(birth, US, {}, dt.date(2026, 9, 1)))
    assert c["us-rv1-1"].status == EXPIRED                  # rotavirus not started after 15 weeks


def test_quiet_hours():
    assert is_quiet(dt.time(22), dt.time(21), dt.time(8))
    assert is_quiet(dt.time(7, 59), dt.time(21), dt.time(8))
    assert not is_quiet(dt.time(8), dt.time(21), dt.time(8))
    assert not is_quiet(dt.time(20, 59), dt.time(21), dt.time(8))
    assert is_quiet(dt.time(13), dt.time(12), dt.time(14))
    assert not is_quiet(dt.time(13), dt.time(0), dt.time(0))
    # 23:30 Shanghai -> next morning 08:00 Shanghai
    t = dt.datetime(2026, 3, 2, 15, 30, tzinfo=UTC)
    assert next_allowed(t, "Asia/Shanghai", dt.time(21), dt.time(8)) == dt.datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
    # 03:00 Shanghai -> same day 08:00
    t = dt.datetime(2026, 3, 2, 19, 0, tzinfo=UTC)
    assert next_allowed(t, "Asia/Shanghai", dt.time(21), dt.time(8)) == dt.datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
    # outside: unchanged; other time zone honoured
    t = dt.datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    assert next_allowed(t, "Asia/Shanghai", dt.time(21), dt.time(8)) == t
    assert next_allowed(t, "America/New_York", dt.time(21), dt.time(8)) == dt.datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
    with pytest.raises(ValueError):
        next_allowed(dt.datetime(2026, 1, 1), "Asia/Shanghai", dt.time(21), dt.time(8))


def _cg(**kw):
    base = dict(id="c1", order=0, language="zh", quiet_start=dt.time(21), quiet_end=dt.time(8), opted_out=False,
                chat_sender_id="s1", chat_channel="wechat")
    base.update(kw)
    return CaregiverInfo(**base)


def test_merging_one_message_per_day_and_caregiver():
    birth = dt.date(2026, 1, 1)
    now = dt.datetime(2026, 1, 1, 2, 0, tzinfo=UTC)
    comp = compute_schedule(birth, CN, {}, birth)
    plans = plan_child("k1", "小明", "Asia/Shanghai", birth, comp, [_cg(), _cg(id="c2", order=1)], CN, now)
    days = [p.local_date for p in plans]
    assert len(days) == len(set(days))                       # one message per day
    assert {p.caregiver_id for p in plans} == {"c1"}         # primary caregiver only; escalation later
    six = next(p for p in plans if p.local_date == dt.date(2026, 7, 1))
    assert {i for i, _ in six.items} == {"hepb-3", "dtap-3", "mpsv-1", "visit-6m"}
    assert six.body.count("·") == 4 and "乙肝疫苗第3剂" in six.body and "6月龄健康检查" in six.body
    assert six.due_at == dt.datetime(2026, 7, 1, 1, 0, tzinfo=UTC)   # 09:00 Shanghai
    # deterministic keys -> replanning is idempotent
    again = plan_child("k1", "小明", "Asia/Shanghai", birth, comp, [_cg(), _cg(id="c2", order=1)], CN, now)
    assert [p.idempotency_key for p in again] == [p.idempotency_key for p in plans]


def test_overdue_items_merge_into_one_message_now_respecting_quiet_hours():
    birth = dt.date(2025, 10, 1)
    now = dt.datetime(2026, 3, 2, 14, 0, tzinfo=UTC)          # 22:00 Shanghai: quiet
    comp = compute_schedule(birth, CN, {}, dt.date(2026, 3, 2))
    plans = plan_child("k1", "小明", "Asia/Shanghai", birth, comp, [_cg()], CN, now)
    first = plans[0]
    assert first.local_date == dt.date(2026, 3, 2)
    assert first.due_at == dt.datetime(2026, 3, 3, 0, 0, tzinfo=UTC)   # 08:00 next morning
    assert {i for i, _ in first.items} == {"hepb-1", "bcg-1", "dtap-1", "polio-1"}
    # HepB-1 is not given yet, so HepB-2 comes 28 days after "today", in a later message
    assert "hepb-2" not in {i for i, _ in first.items}
    later = next(p for p in plans if any(i == "hepb-2" for i, _ in p.items))
    assert later.local_date == dt.date(2026, 3, 30)
    assert "已逾期" in first.body


def test_opted_out_primary_moves_to_next_caregiver_and_english_text():
    birth = dt.date(2026, 1, 1)
    now = dt.datetime(2026, 1, 1, 2, tzinfo=UTC)
    comp = compute_schedule(birth, CN, {}, birth)
    plans = plan_child("k1", "Tom", "Asia/Shanghai", birth, comp,
                       [_cg(opted_out=True), _cg(id="c2", order=1, language="en", chat_sender_id=None, phone="13900001111")],
                       CN, now)
    assert {p.caregiver_id for p in plans} == {"c2"} and {p.channel for p in plans} == {"sms"}
    assert "Reminder for Tom" in plans[0].body and "STOP" in plans[0].body
    assert plan_child("k1", "Tom", "Asia/Shanghai", birth, comp, [_cg(opted_out=True)], CN, now) == []


def test_activity_reminders_day_and_hour_before_with_quiet_hours():
    now = dt.datetime(2026, 3, 1, 2, tzinfo=UTC)
    starts = dt.datetime(2026, 3, 5, 1, 30, tzinfo=UTC)      # 09:30 Shanghai
    plans = plan_activity("b1", "a1", "辅食课", "社区中心", starts, _cg(), "Asia/Shanghai", now)
    # day before 09:30 local; hour before 08:30 local
    assert [p.due_at for p in plans] == [starts - dt.timedelta(days=1), starts - dt.timedelta(hours=1)]
    early = dt.datetime(2026, 3, 5, 0, 15, tzinfo=UTC)       # 08:15 local: 1 h before = 07:15 (quiet) -> 08:00
    plans = plan_activity("b1", "a1", "t", "p", early, _cg(), "Asia/Shanghai", now)
    assert plans[1].due_at == dt.datetime(2026, 3, 5, 0, 0, tzinfo=UTC)
    assert "08:15" in plans[1].body
    assert plan_activity("b1", "a1", "t", "p", early, _cg(opted_out=True), "Asia/Shanghai", now) == []


@pytest.mark.parametrize("attempt,rand,expected", [(1, 0.0, 15.0), (1, 0.999, 29.97), (3, 0.5, 67.5), (20, 1.0, 3600.0)])
def test_backoff_exponential_with_jitter(attempt, rand, expected):
    assert planner.backoff_delay(attempt, 30.0, 3600.0, rand) == pytest.approx(expected, rel=1e-3)
