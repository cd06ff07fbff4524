"""Vaccination / check-up schedules (data files) and due-date computation. Pure functions.

The next due date of a dose is ``max(birth + earliest age, previous dose date + minimum interval,
[earlier dose date + extra interval ...])``. A previous dose that is not recorded yet is
*projected* at ``max(its due date, today)`` so a late series is caught up with correct
intervals instead of being computed from age alone.
"""
from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
import functools
import os
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import yaml

SCHEDULE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schedules")
REGION_FILES: Dict[str, Tuple[str, ...]] = {
    "CN": ("china_nip.yaml", "china_checkups.yaml"),
    "US": ("us.yaml",),
}

# statuses of a computed item
GIVEN, PRESUMED, DUE, OVERDUE, UPCOMING, EXPIRED, MISSED, DROPPED = (
    "given", "presumed_given", "due", "overdue", "upcoming", "expired", "missed", "dropped")
REMINDABLE = (DUE, OVERDUE, UPCOMING)


@dataclasses.dataclass(frozen=True)
class Interval:
    """A calendar interval: months are calendar months (end-of-month clamped)."""

    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0

    @classmethod
    def parse(cls, data: Optional[Mapping]) -> Optional["Interval"]:
        if data is None:
            return None
        unknown = set(data) - {"years", "months", "weeks", "days"}
        if unknown:
            raise ValueError(f"unknown interval keys {unknown}")
        return cls(**{k: int(v) for k, v in data.items()})

    def add_to(self, d: dt.date) -> dt.date:
        return _add(d, self.years * 12 + self.months, self.weeks * 7 + self.days)

    def describe(self, lang: str) -> str:
        parts = []
        for n, zh, en in ((self.years, "年", "year"), (self.months, "个月", "month"),
                          (self.weeks, "周", "week"), (self.days, "天", "day")):
            if n:
                parts.append(f"{n}{zh}" if lang == "zh" else f"{n} {en}{'s' if n != 1 else ''}")
        return ("".join(parts) or "0天") if lang == "zh" else (" ".join(parts) or "0 days")


@functools.lru_cache(maxsize=200_000)
def _add(d: dt.date, months: int, days: int) -> dt.date:
    if months:
        y, m = divmod(d.month - 1 + months, 12)
        y += d.year
        m += 1
        d = dt.date(y, m, min(d.day, calendar.monthrange(y, m)[1]))
    if days:
        d = d + dt.timedelta(days=days)
    return d


@dataclasses.dataclass(frozen=True)
class ScheduleItem:
    """One dose of a vaccine series or one check-up visit."""

    id: str
    kind: str                      # "vaccine" | "checkup"
    series: str
    dose: int
    names: Mapping[str, str]
    earliest_age: Interval
    min_interval: Optional[Interval] = None
    extra_intervals: Tuple[Tuple[int, Interval], ...] = ()
    latest_age: Optional[Interval] = None
    skip_if_missed_after: Optional[Interval] = None
    choice: Optional[str] = None   # either/or group id
    source: str = ""
    evidence: str = ""
    note: Optional[Mapping[str, str]] = None

    def name(self, lang: str) -> str:
        return self.names.get("en" if lang.startswith("en") else "zh") or self.id


@dataclasses.dataclass(frozen=True, eq=False)
class Schedule:
    region: str
    items: Tuple[ScheduleItem, ...]
    groups: Mapping[str, Mapping]           # group -> {default: series, names: {...}}
    notes: Tuple[Mapping[str, str], ...]
    sources: Mapping[str, Mapping]

    @functools.cached_property
    def by_id(self) -> Dict[str, ScheduleItem]:
        return {i.id: i for i in self.items}

    @functools.cached_property
    def by_series(self) -> Dict[str, Tuple[ScheduleItem, ...]]:
        out: Dict[str, List[ScheduleItem]] = {}
        for i in self.items:
            out.setdefault(i.series, []).append(i)
        return {k: tuple(sorted(v, key=lambda x: x.dose)) for k, v in out.items()}

    def find(self, series_or_id: str, dose: Optional[int] = None) -> Optional[ScheduleItem]:
        """Look an item up by id, or by series (or series alias) and dose number."""
        if series_or_id in self.by_id:
            return self.by_id[series_or_id]
        key = series_or_id.lower().replace("-", "_")
        for s, items in self.by_series.items():
            if s == key or s.replace("_", "") == key.replace("_", ""):
                for i in items:
                    if dose is None or i.dose == dose:
                        return i
        return None


def parse_schedule_documents(docs: Sequence[Mapping]) -> Schedule:
    """Build a :class:`Schedule` from parsed YAML documents (validated)."""
    items: List[ScheduleItem] = []
    groups: Dict[str, Mapping] = {}
    notes, sources, region = [], {}, None
    for doc in docs:
        region = region or doc.get("region")
        sources.update(doc.get("sources") or {})
        groups.update(doc.get("groups") or {})
        if doc.get("note"):
            notes.append(doc["note"])
        defaults = doc.get("defaults") or {}
        file_kind = doc.get("kind", "vaccine")
        for raw in doc["items"]:
            raw = {**defaults, **raw}
            for key in ("id", "series", "dose", "names", "earliest_age", "source"):
                if key not in raw:
                    raise ValueError(f"schedule item {raw.get('id')!r} lacks {key!r}")
            src = raw["source"]
            if src not in sources:
                raise ValueError(f"item {raw['id']}: unknown source {src!r}")
            kind = raw.get("kind") or ("vaccine" if file_kind == "mixed" else file_kind)
            items.append(ScheduleItem(
                id=raw["id"], kind=kind, series=raw["series"], dose=int(raw["dose"]),
                names=dict(raw["names"]), earliest_age=Interval.parse(raw["earliest_age"]),
                min_interval=Interval.parse(raw.get("min_interval")),
                extra_intervals=tuple((int(e["dose"]), Interval.parse(e["interval"]))
                                      for e in raw.get("extra_intervals") or ()),
                latest_age=Interval.parse(raw.get("latest_age")),
                skip_if_missed_after=Interval.parse(raw.get("skip_if_missed_after")),
                choice=raw.get("choice"), source=src, evidence=sources[src].get("evidence", ""),
                note=raw.get("note")))
    ids = [i.id for i in items]
    if len(ids) != len(set(ids)):
        raise ValueError("duplicate schedule item ids")
    for i in items:
        if i.choice and i.choice not in groups:
            raise ValueError(f"item {i.id}: unknown choice group {i.choice}")
    return Schedule(region=region or "", items=tuple(items), groups=groups, notes=tuple(notes), sources=sources)


@functools.lru_cache(maxsize=None)
def load_schedule(region: str = "CN") -> Schedule:
    """Load the schedule data files for *region* (``CN`` or ``US``)."""
    region = (region or "CN").upper()
    if region not in REGION_FILES:
        raise KeyError(f"unknown region {region!r}; known: {sorted(REGION_FILES)}")
    docs = []
    for fname in REGION_FILES[region]:
        with open(os.path.join(SCHEDULE_DIR, fname), encoding="utf-8") as fh:
            docs.append(yaml.safe_load(fh))
    return parse_schedule_documents(docs)


@dataclasses.dataclass(frozen=True)
class ComputedItem:
    """An item of a child's schedule with its computed due date and status."""

    item: ScheduleItem
    status: str
    due_date: Optional[dt.date]
    given_on: Optional[dt.date] = None
    alternative: Optional[str] = None      # series of the alternative product (either/or groups)

    def to_dict(self, lang: str = "zh") -> dict:
        return {"item_id": self.item.id, "kind": self.item.kind, "series": self.item.series,
                "dose": self.item.dose, "name": self.item.name(lang),
                "names": dict(self.item.names), "status": self.status,
                "due_date": self.due_date.isoformat() if self.due_date else None,
                "given_on": self.given_on.isoformat() if self.given_on else None,
                "alternative": self.alternative, "source": self.item.source,
                "evidence": self.item.evidence}


def chosen_series(schedule: Schedule, given: Mapping[str, dt.date]) -> Dict[str, str]:
    """For each either/or group: the series in use (the recorded product, else the default)."""
    out: Dict[str, str] = {}
    for group, spec in schedule.groups.items():
        counts: Dict[str, int] = {}
        for item_id in given:
            it = schedule.by_id.get(item_id)
            if it is not None and it.choice == group:
                counts[it.series] = counts.get(it.series, 0) + 1
        out[group] = max(counts, key=lambda s: (counts[s], s == spec["default"])) if counts else spec["default"]
    return out


def compute_schedule(birth: dt.date, schedule: Schedule, given: Mapping[str, dt.date],
                     today: dt.date) -> List[ComputedItem]:
    """Compute every item of *schedule* for a child born on *birth* (memoised when no dose is given)."""
    if not given:
        return list(_compute_no_doses(birth, schedule, today))
    return _compute(birth, schedule, given, today)


@functools.lru_cache(maxsize=8192)
def _compute_no_doses(birth: dt.date, schedule: Schedule, today: dt.date) -> Tuple[ComputedItem, ...]:
    return tuple(_compute(birth, schedule, {}, today))


def _compute(birth: dt.date, schedule: Schedule, given: Mapping[str, dt.date],
             today: dt.date) -> List[ComputedItem]:
    """Compute every item of *schedule* for a child born on *birth*.

    *given* maps item id -> date the dose was given. Returns items sorted by due date.
    Either/or groups: the product with recorded doses wins and the other series is
    ``dropped``; before any dose the default product is used and ``alternative`` names the other.
    """
    chosen = chosen_series(schedule, given)
    any_recorded = {g: any(schedule.by_id[i].choice == g for i in given if i in schedule.by_id)
                    for g in schedule.groups}
    out: List[ComputedItem] = []
    for series, items in schedule.by_series.items():
        group = items[0].choice
        alternative = None
        if group:
            if chosen[group] != series:
                out.extend(ComputedItem(i, DROPPED, None) for i in items)
                continue
            if not any_recorded[group]:
                alts = [s for s in schedule.by_series if s != series and schedule.by_series[s][0].choice == group]
                alternative = alts[0] if alts else None
        last_given_idx = max((k for k, i in enumerate(items) if i.id in given), default=-1)
        dates: Dict[int, dt.date] = {}        # dose number -> actual or projected date
        prev: Optional[dt.date] = None
        for k, it in enumerate(items):
            g = given.get(it.id)
            if g is not None:
                out.append(ComputedItem(it, GIVEN, g, g, alternative))
                dates[it.dose] = prev = g
                continue
            if k < last_given_idx:  # a later dose is recorded: this one was given but not recorded
                out.append(ComputedItem(it, PRESUMED, None, None, alternative))
                continue
            due = it.earliest_age.add_to(birth)
            if prev is not None and it.min_interval is not None:
                cand = it.min_interval.add_to(prev)
                if cand > due:
                    due = cand
            for dose_no, iv in it.extra_intervals:
                base = dates.get(dose_no)
                if base is not None:
                    cand = iv.add_to(base)
                    if cand > due:
                        due = cand
            effective = due if due >= today else today
            if it.latest_age is not None and it.latest_age.add_to(birth) <= effective:
                out.append(ComputedItem(it, EXPIRED, due, None, alternative))
            elif (it.skip_if_missed_after is not None and due < today
                  and it.skip_if_missed_after.add_to(due) < today):
                out.append(ComputedItem(it, MISSED, due, None, alternative))
            else:
                status = UPCOMING if due > today else (DUE if due == today else OVERDUE)
                out.append(ComputedItem(it, status, due, None, alternative))
            dates[it.dose] = prev = effective
    out.sort(key=lambda c: (c.due_date or dt.date.max, c.item.kind, c.item.series, c.item.dose))
    return out


def remindable(items: Iterable[ComputedItem]) -> List[ComputedItem]:
    """Items that still need a reminder (due, overdue or upcoming)."""
    return [c for c in items if c.status in REMINDABLE]


def next_due(birth: dt.date, schedule: Schedule, given: Mapping[str, dt.date], today: dt.date,
             kind: Optional[str] = "vaccine") -> List[ComputedItem]:
    """The earliest remindable item(s) (all items sharing the earliest due date)."""
    items = [c for c in remindable(compute_schedule(birth, schedule, given, today))
             if kind is None or c.item.kind == kind]
    if not items:
        return []
    first = max(items[0].due_date, today)
    return [c for c in items if max(c.due_date, today) == first]
