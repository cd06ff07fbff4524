"""Turn a child's computed schedule into reminder messages. Pure functions.

* Items whose reminder falls on the same local day are merged into ONE message per caregiver.
* Vaccination/check-up reminders go to the primary caregiver (lowest escalation order that has
  not opted out and has a channel); escalation to the next caregiver happens after sending.
* Reminder time: the due date at ``send_time`` local (overdue items: now), moved out of the
  caregiver's quiet hours to the next allowed morning time (the end of the quiet hours).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple
from zoneinfo import ZoneInfo

from .schedule import ComputedItem, Schedule

UTC = dt.timezone.utc


@functools.lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """Cached :class:`ZoneInfo` (raises ``ZoneInfoNotFoundError`` for unknown names)."""
    return ZoneInfo(name)


@functools.lru_cache(maxsize=256)
def parse_hhmm(s: str) -> dt.time:
    """``"21:00"`` -> ``time(21, 0)`` (raises ValueError)."""
    h, m = s.strip().split(":")
    return dt.time(int(h), int(m))


def is_quiet(local_t: dt.time, start: dt.time, end: dt.time) -> bool:
    """True if *local_t* is inside quiet hours ``[start, end)`` (may wrap midnight)."""
    if start == end:
        return False
    if start < end:
        return start <= local_t < end
    return local_t >= start or local_t < end


def next_allowed(when: dt.datetime, tz: str, start: dt.time, end: dt.time) -> dt.datetime:
    """*when* if outside quiet hours, else the next quiet-hours end (local morning), in UTC.

    *when* must be time-zone aware.
    """
    if when.tzinfo is None:
        raise ValueError("naive datetime")
    z = zone(tz)
    local = when.astimezone(z)
    if not is_quiet(local.time().replace(tzinfo=None), start, end):
        return when.astimezone(UTC)
    day = local.date() if local.time().replace(tzinfo=None) < end else local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, end, tzinfo=z).astimezone(UTC)


@dataclasses.dataclass(frozen=True)
class CaregiverInfo:
    id: str
    order: int
    language: str
    quiet_start: dt.time
    quiet_end: dt.time
    opted_out: bool
    chat_sender_id: Optional[str] = None
    chat_channel: Optional[str] = None
    phone: Optional[str] = None
    preferred_channel: Optional[str] = None

    def channel(self) -> Optional[str]:
        """The delivery channel: preferred if usable, else chat, else SMS, else None."""
        usable = []
        if self.chat_sender_id:
            usable.append("chat")
        if self.phone:
            usable.append("sms")
        if self.preferred_channel in usable:
            return self.preferred_channel
        return usable[0] if usable else None


@dataclasses.dataclass(frozen=True)
class PlannedReminder:
    """A reminder row to be stored (one message to one caregiver)."""

    kind: str
    child_id: Optional[str]
    caregiver_id: str
    channel: str
    local_date: dt.date
    due_at: dt.datetime
    body: str
    items: Tuple[Tuple[str, str], ...]     # (item_id, due_date iso)
    idempotency_key: str
    group_key: str
    activity_id: Optional[str] = None


def active_caregivers(caregivers: Iterable[CaregiverInfo]) -> List[CaregiverInfo]:
    """Caregivers that can be reminded, in escalation order."""
    return sorted((c for c in caregivers if not c.opted_out and c.channel()), key=lambda c: (c.order, c.id))


def next_caregiver(caregivers: Iterable[CaregiverInfo], after_order: int) -> Optional[CaregiverInfo]:
    """The next caregiver in escalation order after *after_order*, or None."""
    for c in active_caregivers(caregivers):
        if c.order > after_order:
            return c
    return None


_REMINDABLE = frozenset(("due", "overdue", "upcoming"))
_LABEL = {"vaccine": ("疫苗接种", "vaccination"), "checkup": ("健康检查", "check-up")}


_NICK = "\x00NICK\x00"


def render_message(nickname: str, lang: str, day: dt.date, today: dt.date, items: Sequence[ComputedItem],
                   schedule: Schedule, channel: str = "chat", escalation: bool = False) -> str:
    """Render one merged reminder in the caregiver's language."""
    key = (lang, day, today, tuple((c.item.id, c.due_date, c.alternative) for c in items), id(schedule),
           channel, escalation)
    tmpl = _TEMPLATES.get(key)
    if tmpl is None:
        tmpl = _render(_NICK, lang, day, today, items, schedule, channel, escalation)
        if len(_TEMPLATES) > 50_000:
            _TEMPLATES.clear()
        _TEMPLATES[key] = tmpl
    return tmpl.replace(_NICK, nickname)


_TEMPLATES: Dict[tuple, str] = {}


def _render(nickname: str, lang: str, day: dt.date, today: dt.date, items: Sequence[ComputedItem],
            schedule: Schedule, channel: str = "chat", escalation: bool = False) -> str:
    en = lang.startswith("en")
    kinds = sorted({c.item.kind for c in items}, reverse=True)
    lines: List[str] = []
    if en:
        what = " and ".join(_LABEL.get(k, (k, k))[1] for k in kinds)
        head = f"Reminder for {nickname}: {what} due" + (" now" if day <= today else f" on {day.isoformat()}")
        if escalation:
            head = "[Not yet confirmed by the first caregiver] " + head
        lines.append(head + ":")
        for c in items:
            late = " (overdue since %s)" % c.due_date.isoformat() if c.due_date < today else ""
            alt = ""
            if c.alternative:
                alt_items = schedule.by_series.get(c.alternative, ())
                if alt_items:
                    alt = f" (or instead: {alt_items[0].names.get('en', c.alternative).split(' dose')[0]}, {len(alt_items)} doses)"
            lines.append(f"- {c.item.name('en')}{late}{alt}")
        lines.append("Reply OK when seen, DONE SHOT once given, STOP to unsubscribe.")
        notes = [n.get("en") for n in schedule.notes[:1] if n.get("en")]
    else:
        what = "和".join(_LABEL.get(k, (k, k))[0] for k in kinds)
        when = "已到期" if day <= today else f"{day.year}年{day.month}月{day.day}日到期"
        head = f"【育儿助手】{nickname}的{what}提醒（{when}）"
        if escalation:
            head = "【第一联系人尚未确认】" + head
        lines.append(head + "：")
        for c in items:
            late = f"（应于{c.due_date.isoformat()}起接种，已逾期）" if (c.due_date < today and c.item.kind == "vaccine") else ""
            alt = ""
            if c.alternative:
                alt_items = schedule.by_series.get(c.alternative, ())
                if alt_items:
                    alt = f"（也可选择{alt_items[0].names.get('zh', c.alternative).replace('第1剂', '')}，共{len(alt_items)}剂）"
            lines.append(f"· {c.item.name('zh')}{late}{alt}")
        lines.append("回复“收到”确认，“已打”记录接种，“退订”取消提醒。")
        notes = [n.get("zh") for n in schedule.notes[:1] if n.get("zh")]
    lines.extend(notes)
    return "\n".join(lines)


def plan_child(child_id: str, nickname: str, tz: str, birth: dt.date, computed: Sequence[ComputedItem],
               caregivers: Sequence[CaregiverInfo], schedule: Schedule, now: dt.datetime,
               send_time: dt.time = dt.time(9, 0),
               already_reminded: Optional[Set[Tuple[str, str]]] = None,
               until: Optional[dt.date] = None) -> List[PlannedReminder]:
    """Plan the schedule reminders of one child (merged per local day, primary caregiver).

    *already_reminded* holds ``(item_id, due_date_iso)`` pairs covered by a message already sent;
    they are not planned again. *until* (local date) limits planning to a horizon; later
    reminders are planned when the horizon is extended. Deterministic: the same input gives the
    same rows/keys.
    """
    cgs = active_caregivers(caregivers)
    if not cgs:
        return []
    cg = cgs[0]
    z = zone(tz)
    local_now = now.astimezone(z)
    today = local_now.date()
    done = already_reminded
    by_day: Dict[dt.date, List[ComputedItem]] = {}
    for c in computed:
        if c.status not in _REMINDABLE:
            continue
        due = c.due_date
        day = due if due > today else today
        if until is not None and day > until:
            continue
        if done and (c.item.id, due.isoformat()) in done:
            continue
        lst = by_day.get(day)
        if lst is None:
            by_day[day] = [c]
        else:
            lst.append(c)
    out: List[PlannedReminder] = []
    channel = cg.channel()
    no_quiet = cg.quiet_start == cg.quiet_end
    for day, items in sorted(by_day.items()):
        at = dt.datetime.combine(day, send_time, tzinfo=z)
        if at < local_now:
            at = local_now
        due_at = at.astimezone(UTC) if no_quiet else next_allowed(at, tz, cg.quiet_start, cg.quiet_end)
        out.append(PlannedReminder(
            kind="schedule", child_id=child_id, caregiver_id=cg.id, channel=channel, local_date=day,
            due_at=due_at, body=render_message(nickname, cg.language, day, today, items, schedule, channel),
            items=tuple((c.item.id, c.due_date.isoformat()) for c in items),
            idempotency_key=f"sch:{child_id}:{cg.id}:{day.isoformat()}",
            group_key=f"{child_id}:{day.isoformat()}"))
    return out


def activity_message(lang: str, title: str, place: str, starts_local: dt.datetime, nickname: str = "") -> str:
    """Reminder text for a booked activity."""
    if lang.startswith("en"):
        return (f"Reminder: \"{title}\" at {place}, {starts_local.strftime('%Y-%m-%d %H:%M')}. "
                "Reply STOP to unsubscribe.")
    return (f"【育儿助手】活动提醒：{starts_local.month}月{starts_local.day}日 {starts_local.strftime('%H:%M')} "
            f"在{place}参加“{title}”。回复“退订”取消提醒。")


def plan_activity(booking_id: str, activity_id: str, title: str, place: str, starts_at: dt.datetime,
                  caregiver: CaregiverInfo, tz: str, now: dt.datetime,
                  offsets: Sequence[dt.timedelta] = (dt.timedelta(days=1), dt.timedelta(hours=1)),
                  child_id: Optional[str] = None) -> List[PlannedReminder]:
    """Reminders before an activity (default a day and an hour before), out of quiet hours.

    A reminder whose time (after the quiet-hours shift) is not before the start, or is in the
    past by more than its offset, is not planned.
    """
    if caregiver.opted_out or not caregiver.channel():
        return []
    out = []
    starts_local = starts_at.astimezone(zone(tz))
    for off in offsets:
        at = starts_at - off
        if at < now:
            if starts_at <= now:
                continue
            at = now
        at = next_allowed(at, tz, caregiver.quiet_start, caregiver.quiet_end)
        if at >= starts_at:
            continue
        secs = int(off.total_seconds())
        out.append(PlannedReminder(
            kind="activity", child_id=child_id, caregiver_id=caregiver.id, channel=caregiver.channel(),
            local_date=at.astimezone(zone(tz)).date(), due_at=at,
            body=activity_message(caregiver.language, title, place, starts_local),
            items=(), idempotency_key=f"act:{booking_id}:{secs}",
            group_key=f"act:{activity_id}:{caregiver.id}", activity_id=activity_id))
    # two offsets that collapse onto the same instant: keep one message
    seen, uniq = set(), []
    for p in out:
        if p.due_at not in seen:
            seen.add(p.due_at)
            uniq.append(p)
    return uniq


def backoff_delay(attempt: int, base: float, cap: float, rand: float) -> float:
    """Exponential backoff with full jitter: ``uniform(base/2, min(cap, base*2**(attempt-1)))``.

    *rand* is a number in [0, 1) (injected for determinism).
    """
    hi = min(cap, base * (2 ** max(0, attempt - 1)))
    lo = min(hi, base / 2)
    return lo + (hi - lo) * rand
