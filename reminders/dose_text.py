"""Find which vaccine dose a caregiver says was given ("已经打了乙肝第二针").

Pure functions over the data file `schedules/vaccine_names.yaml`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import List, Optional, Tuple

import yaml

from reminders.dates import cn_number

NAMES_FILE = Path(__file__).parent / "schedules" / "vaccine_names.yaml"
_ORDINALS_EN = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5,
                "1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5}
_DOSE_ZH = re.compile(r"第?\s*([一二两三四五六12345６])\s*(针|剂|次|针次)")
_DOSE_EN = re.compile(r"\b(?:dose|shot)\s*#?\s*([1-5])\b|\b(first|second|third|fourth|fifth|1st|2nd|3rd|4th|5th)\s+(?:dose|shot)\b")


@dataclass(frozen=True)
class DoseMention:
    """A vaccine series and, when said, the dose number."""

    series: str
    dose: Optional[int]


@lru_cache(maxsize=1)
def _patterns() -> List[Tuple[str, Tuple[str, ...], re.Pattern]]:
    data = yaml.safe_load(NAMES_FILE.read_text(encoding="utf-8"))
    return [
        (entry["series"], tuple(entry["regions"]), re.compile("|".join(entry["patterns"]), re.IGNORECASE))
        for entry in data["series"]
    ]


def find_dose_mention(text: str, region: str = "CN") -> Optional[DoseMention]:
    """The first vaccine series named in `text` for `region`, with its dose number."""
    lowered = text.lower()
    series = next(
        (s for s, regions, pattern in _patterns() if region in regions and pattern.search(lowered)), None
    )
    if series is None:
        return None
    return DoseMention(series=series, dose=_dose_number(lowered))


def _dose_number(text: str) -> Optional[int]:
    match = _DOSE_ZH.search(text)
    if match:
        return cn_number(match.group(1).replace("６", "6"))
    match = _DOSE_EN.search(text)
    if match:
        return int(match.group(1)) if match.group(1) else _ORDINALS_EN[match.group(2)]
    return None
