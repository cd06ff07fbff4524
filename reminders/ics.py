"""iCalendar (RFC 5545) feed of a child's upcoming vaccinations and check-ups. Pure functions."""
from __future__ import annotations

import datetime as dt
from typing import Iterable, List

from .schedule import ComputedItem, Schedule


def escape_text(s: str) -> str:
    """Escape a TEXT value (RFC 5545 3.3.11)."""
    return (s.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n"))


def fold(line: str, limit: int = 75) -> str:
    """Fold a content line at *limit* octets without splitting a UTF-8 character."""
    out: List[str] = []
    cur, size = "", 0
    for ch in line:
        n = len(ch.encode("utf-8"))
        if size + n > limit:
            out.append(cur)
            cur, size = " ", 1
        cur += ch
        size += n
    out.append(cur)
    return "\r\n".join(out)


def build_calendar(child_id: str, nickname: str, lang: str, tz: str, items: Iterable[ComputedItem],
                   today: dt.date, now: dt.datetime, schedule: Schedule) -> str:
    """A VCALENDAR with one all-day VEVENT per remindable item (overdue items shown today)."""
    en = lang.startswith("en")
    name = f"{nickname}: vaccinations and check-ups" if en else f"{nickname}的疫苗接种与体检"
    stamp = now.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//parenting-assistant//reminders 1.0//ZH",
             "CALSCALE:GREGORIAN", "METHOD:PUBLISH", f"X-WR-CALNAME:{escape_text(name)}",
             f"X-WR-TIMEZONE:{tz}", "REFRESH-INTERVAL;VALUE=DURATION:PT12H", "X-PUBLISHED-TTL:PT12H"]
    note = next((n.get("en" if en else "zh") for n in schedule.notes if n), "")
    for c in items:
        if c.status not in ("due", "overdue", "upcoming"):
            continue
        day = max(c.due_date, today)
        overdue = c.due_date < today
        summary = c.item.name(lang)
        if overdue:
            summary += " (overdue)" if en else "（已逾期）"
        desc = []
        if overdue:
            desc.append(("Due since " if en else "应于") + c.due_date.isoformat() + ("" if en else "起"))
        if c.item.note:
            desc.append(c.item.note.get("en" if en else "zh", ""))
        if note:
            desc.append(note)
        lines += ["BEGIN:VEVENT", f"UID:{child_id}-{c.item.id}@reminders", f"DTSTAMP:{stamp}",
                  f"DTSTART;VALUE=DATE:{day.strftime('%Y%m%d')}",
                  f"DTEND;VALUE=DATE:{(day + dt.timedelta(days=1)).strftime('%Y%m%d')}",
                  f"SUMMARY:{escape_text(summary)}", f"DESCRIPTION:{escape_text(chr(10).join(d for d in desc if d))}",
                  f"CATEGORIES:{'VACCINATION' if c.item.kind == 'vaccine' else 'CHECKUP'}",
                  "TRANSP:TRANSPARENT",
                  "BEGIN:VALARM", "ACTION:DISPLAY", f"DESCRIPTION:{escape_text(summary)}",
                  "TRIGGER:-PT15H", "END:VALARM", "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "".join(fold(l) + "\r\n" for l in lines)
