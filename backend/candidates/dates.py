"""Month-precision dates and date ranges as people write them in CVs, English
and German: `03/2019 – heute`, `Mar 2019 - Present`, `2017–2019`,
`01.2018 - 03.2021`, `seit 04/2021`, `since May 2020`, `2019-03 to 2020-11`.

A date is a `(year, month)` pair. A year alone starts in January and ends in
December (`2017–2019` is 2017-01 to 2019-12). An open end (`heute`,
`Present`, `seit …`) is `None` and the entry is current.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

YearMonth = tuple[int, int]

MONTHS: dict[str, int] = {}
for _number, _names in enumerate(
    (
        "jan january januar jänner jän janv",
        "feb february februar feber fev févr",
        "mar march märz maerz mrz mär mars",
        "apr april avr",
        "may mai",
        "jun june juni juin",
        "jul july juli juil",
        "aug august aout août",
        "sep sept september",
        "oct october okt oktober",
        "nov november",
        "dec december dez dezember déc",
    ),
    start=1,
):
    for _name in _names.split():
        MONTHS[_name] = _number

_MONTH_NAMES = "|".join(sorted(MONTHS, key=len, reverse=True))
_OPEN_END = (
    r"present|current|currently|now|today|ongoing|date|heute|jetzt|aktuell|dato|"
    r"laufend|gegenwärtig|derzeit|momentan"
)
_YEAR = r"(?:19[5-9]\d|20[0-4]\d)"
# One date: month name + year, numeric month/year (either order), a full
# day.month.year, or a year alone. Named groups are read by `_date`.
DATE = (
    rf"(?:(?P<{{p}}mname>{_MONTH_NAMES})\.?,?\s+(?P<{{p}}myear>{_YEAR})"
    rf"|(?:\d{{{{1,2}}}}\.\s*)?(?P<{{p}}month>0?[1-9]|1[0-2])\s*[./]\s*(?P<{{p}}year>{_YEAR})"
    rf"|(?P<{{p}}iyear>{_YEAR})-(?P<{{p}}imonth>0[1-9]|1[0-2])(?!\d)"
    rf"|(?P<{{p}}yonly>{_YEAR}))"
)
_DASH = r"\s*(?:-|–|—|‒|―|to|until|till|bis|through)\s*"
_START = DATE.format(p="s")
_END = DATE.format(p="e")
RANGE = re.compile(
    rf"(?<![\w/.])(?:(?:since|seit|from|ab)\s+(?P<since>{_START.replace('(?P<s', '(?P<z')})"
    rf"|{_START}(?:{_DASH}(?:(?:bis\s+)?(?P<open>{_OPEN_END})|{_END}))?)(?![\w/])",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class DateRange:
    start: YearMonth | None
    end: YearMonth | None
    current: bool
    span: tuple[int, int]  # where it was found in the text
    single: bool = False  # one date only (no range): read as the end

    @property
    def start_text(self) -> str | None:
        return format_month(self.start)

    @property
    def end_text(self) -> str | None:
        return format_month(self.end)


def format_month(value: YearMonth | None) -> str | None:
    return None if value is None else f"{value[0]:04d}-{value[1]:02d}"


def _date(match: re.Match[str], prefix: str, *, end: bool) -> YearMonth | None:
    group = match.groupdict()
    if group.get(f"{prefix}mname"):
        return int(group[f"{prefix}myear"]), MONTHS[group[f"{prefix}mname"].lower()]
    if group.get(f"{prefix}month"):
        return int(group[f"{prefix}year"]), int(group[f"{prefix}month"])
    if group.get(f"{prefix}iyear"):
        return int(group[f"{prefix}iyear"]), int(group[f"{prefix}imonth"])
    if group.get(f"{prefix}yonly"):
        return int(group[f"{prefix}yonly"]), 12 if end else 1
    return None


def find_ranges(line: str) -> list[DateRange]:
    """Every date range (or lone date) in a line, left to right."""
    ranges = []
    for match in RANGE.finditer(line):
        if match.group("since"):
            start = _date(match, "z", end=False)
            ranges.append(DateRange(start, None, True, match.span()))
        elif match.group("open"):
            ranges.append(DateRange(_date(match, "s", end=False), None, True, match.span()))
        else:
            end = _date(match, "e", end=True)
            if end is None:
                lone = _date(match, "s", end=True)
                ranges.append(DateRange(None, lone, False, match.span(), single=True))
            else:
                ranges.append(DateRange(_date(match, "s", end=False), end, False, match.span()))
    return ranges


def months_between(start: YearMonth, end: YearMonth) -> int:
    """Months from `start` to `end`, both included."""
    return (end[0] * 12 + end[1]) - (start[0] * 12 + start[1]) + 1


def total_months(intervals: list[tuple[YearMonth, YearMonth]]) -> int:
    """Months covered by the intervals, overlaps counted once."""
    merged: list[list[int]] = []
    for start, end in sorted((s[0] * 12 + s[1], e[0] * 12 + e[1]) for s, e in intervals):
        if end < start:
            continue
        if merged and start <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return sum(end - start + 1 for start, end in merged)
