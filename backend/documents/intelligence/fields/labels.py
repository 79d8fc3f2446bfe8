"""Finding labelled values in a document's lines, whatever the layout:

- `Label: value` or `Label value` on one line (a value right of its label,
  cut where the next label on the line starts);
- a label alone on its line and the value on the next;
- a row of labels with a row of values under them (table columns): values
  are taken from the next line in the labels' order, each by its kind.

Each candidate keeps the way it was found; that sets its confidence."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from backend.documents.intelligence.fields import normalise

# Confidence of a value by how it was found.
SAME_LINE = 0.9
NEXT_LINE = 0.8
COLUMN = 0.8
HEURISTIC = 0.55


_UMLAUTS = {"ä": "[äa]", "ö": "[öo]", "ü": "[üu]", "ß": "(?:ß|ss)"}


def tolerant(pattern: str) -> str:
    """A pattern that also matches its words with umlauts lost (OCR reads
    `Fällig` as `Fallig` now and then)."""
    return "".join(_UMLAUTS.get(char, char) for char in pattern)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    kind: str  # id, date, amount, percent, text, vat, iban
    labels: tuple[str, ...]
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        alternatives = tolerant("|".join(self.labels))
        object.__setattr__(
            self,
            "pattern",
            re.compile(
                rf"(?<![\w-])(?:{alternatives})(?![\w-])\s*(?:[:#]|\bno\.?|\bnr\.?)?\s*", re.I
            ),
        )


@dataclass(slots=True)
class Candidate:
    value: Any
    confidence: float
    line: int
    how: str


@dataclass(slots=True)
class LabelHit:
    spec: FieldSpec
    start: int
    end: int


def split_lines(text: str) -> list[str]:
    return [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in re.split(r"[\n\f]", text)]


_ID = re.compile(r"[#:]?\s*([A-Z0-9][A-Z0-9\-/._]*\d[A-Z0-9\-/._]*|\d[A-Z0-9\-/._]*)", re.I)
_DATE_START = re.compile(r"^\W{0,3}")


def _id_value(text: str, *, anchored: bool) -> tuple[str, int] | None:
    match = _ID.match(text) if anchored else _ID.search(text)
    if match is None:
        return None
    value = match.group(1).rstrip("._/-")
    if len(value) < 2 or normalise.find_dates(value):
        return None
    return value, match.end()


def _date_value(text: str, *, anchored: bool, language: str | None) -> tuple[str, int] | None:
    for position, value in normalise.find_dates(text, language=language):
        if anchored and position > 3:
            return None
        return value.isoformat(), position + len(_date_text(text[position:]))
    return None


def _date_text(text: str) -> str:
    """The date's own characters at the start of `text` (for column consumption)."""
    match = re.match(
        r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./-]\s?\d{1,2}[./-]\s?\d{2,4}|"
        r"\d{1,2}(?:st|nd|rd|th)?\.?\s*(?:of\s+)?[A-Za-zäÄ]+\.?,?\s+\d{4}|[A-Za-zäÄ]+\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}",
        text,
    )
    return match.group(0) if match else text.split(" ", 1)[0]


_MONEY = re.compile(
    r"^\s*(?:[€$£]|EUR|USD|GBP|CHF)?\s*-?\s*\d[\d.,'\u00a0]*(?:\s?(?:[€$£]|EUR|USD|GBP|CHF))?", re.I
)


def _amount_value(text: str, *, anchored: bool) -> tuple[str, int] | None:
    if anchored:
        match = _MONEY.match(text)
        if match is None:
            return None
        value = normalise.parse_amount(match.group(0))
        return (value, match.end()) if value is not None else None
    value = normalise.parse_amount(text)
    return (value, len(text)) if value is not None else None


def _percent_value(text: str, *, anchored: bool) -> tuple[str, int] | None:
    match = re.search(r"(\d{1,2}(?:[.,]\d{1,2})?)\s?%", text)
    if match is None or (anchored and match.start() > 2):
        return None
    return normalise.money(Decimal(match.group(1).replace(",", "."))), match.end()


def _vat_value(text: str, *, anchored: bool) -> tuple[str, int] | None:
    for position, value, _valid in normalise.find_vat_ids(text):
        if anchored and position > 2:
            return None
        return value, position + len(value)
    return None


def _iban_value(text: str, *, anchored: bool) -> tuple[str, int] | None:
    for position, value, _valid in normalise.find_ibans(text):
        if anchored and position > 2:
            return None
        return value, len(text)
    return None


def _text_value(text: str, *, anchored: bool) -> tuple[str, int] | None:
    value = text.strip(" :-,;")
    if len(value) < 2 or not re.search(r"[^\W\d_]", value):
        return None
    return value, len(text)


def parse_value(
    kind: str, text: str, *, anchored: bool, language: str | None = None
) -> tuple[Any, int] | None:
    if kind == "date":
        return _date_value(text, anchored=anchored, language=language)
    parsers: dict[str, Callable[..., tuple[Any, int] | None]] = {
        "id": _id_value,
        "amount": _amount_value,
        "percent": _percent_value,
        "vat": _vat_value,
        "iban": _iban_value,
        "text": _text_value,
    }
    return parsers[kind](text, anchored=anchored)


def label_hits(line: str, specs: list[FieldSpec]) -> list[LabelHit]:
    """Label matches on a line, longest first where they overlap, in order."""
    hits: list[LabelHit] = []
    for spec in specs:
        for match in spec.pattern.finditer(line):
            hits.append(LabelHit(spec, match.start(), match.end()))
    hits.sort(key=lambda hit: (-(hit.end - hit.start), hit.start))
    kept: list[LabelHit] = []
    for hit in hits:
        if all(hit.end <= other.start or hit.start >= other.end for other in kept):
            kept.append(hit)
    return sorted(kept, key=lambda hit: hit.start)


def find_labelled(
    lines: list[str], specs: list[FieldSpec], *, language: str | None = None
) -> dict[str, list[Candidate]]:
    found: dict[str, list[Candidate]] = {spec.name: [] for spec in specs}
    for index, line in enumerate(lines):
        hits = label_hits(line, specs)
        if not hits:
            continue
        # A row of labels alone: values in the same order on the next line.
        between = [line[a.end : b.start] for a, b in itertools.pairwise(hits)]
        row_of_labels = (
            len(hits) >= 2
            and all(not part.strip() for part in between)
            and not line[hits[-1].end :].strip()
            and not line[: hits[0].start].strip()
        )
        if row_of_labels:
            below = _next_nonempty(lines, index)
            if below is not None:
                rest = lines[below]
                for hit in hits:
                    parsed = parse_value(hit.spec.kind, rest, anchored=True, language=language)
                    if parsed is None:
                        break
                    value, used = parsed
                    found[hit.spec.name].append(Candidate(value, COLUMN, below, "column"))
                    rest = rest[used:].lstrip(" ,;|")
            continue
        for position, hit in enumerate(hits):
            stop = hits[position + 1].start if position + 1 < len(hits) else len(line)
            rest = line[hit.end : stop]
            parsed = parse_value(hit.spec.kind, rest, anchored=False, language=language)
            if parsed is not None:
                found[hit.spec.name].append(Candidate(parsed[0], SAME_LINE, index, "same_line"))
                continue
            if rest.strip() or position + 1 < len(hits):
                continue
            below = _next_nonempty(lines, index)
            if below is None or label_hits(lines[below], specs):
                continue
            parsed = parse_value(hit.spec.kind, lines[below], anchored=False, language=language)
            if parsed is not None:
                found[hit.spec.name].append(Candidate(parsed[0], NEXT_LINE, below, "next_line"))
    return found


def _next_nonempty(lines: list[str], index: int, reach: int = 2) -> int | None:
    for below in range(index + 1, min(len(lines), index + 1 + reach)):
        if lines[below].strip():
            return below
    return None


def first(candidates: list[Candidate]) -> Candidate | None:
    """The most confident candidate, the earliest among equals."""
    if not candidates:
        return None
    return sorted(candidates, key=lambda item: (-item.confidence, item.line))[0]


def iso(value: date) -> str:
    return value.isoformat()


LEGAL_FORMS = (
    r"GmbH(?:\s*&\s*Co\.?\s*KG)?|AG|KG|OHG|UG(?:\s*\(haftungsbeschränkt\))?|e\.\s?K\.|e\.V\.|"
    r"Ltd\.?|Limited|LLC|L\.L\.C\.|Inc\.?|Corp\.?|Corporation|plc|LLP|S\.A\.|SE|B\.V\.|N\.V\.|"
    r"S\.?r\.?l\.?|Co\.|Company|Group"
)
COMPANY = re.compile(rf"^[A-ZÄÖÜ0-9][\w&.,'\u2019\- ]{{1,80}}?\b(?:{LEGAL_FORMS})(?=$|[\s,])", re.U)


def company_names(lines: list[str]) -> list[tuple[int, str]]:
    """Lines (or line starts) that name a company by its legal form."""
    names = []
    for index, line in enumerate(lines):
        match = COMPANY.match(line)
        if match:
            names.append((index, match.group(0).strip(" ,")))
    return names
