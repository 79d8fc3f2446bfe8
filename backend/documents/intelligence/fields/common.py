"""What several document types share: currency, parties by legal form,
labelled names, and the result shape."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from backend.documents.intelligence.fields import normalise
from backend.documents.intelligence.fields.labels import (
    HEURISTIC,
    NEXT_LINE,
    SAME_LINE,
    Candidate,
    FieldSpec,
    company_names,
    first,
)


@dataclass(slots=True)
class Fields:
    """Extracted values and a confidence (0-1) for each."""

    data: dict[str, Any] = field(default_factory=dict)
    confidence: dict[str, float] = field(default_factory=dict)

    def put(self, name: str, value: Any, confidence: float) -> None:
        if value is None or value == [] or value == "":
            return
        self.data[name] = value
        self.confidence[name] = round(min(max(confidence, 0.0), 1.0), 2)

    def take(self, name: str, candidates: list[Candidate]) -> None:
        best = first(candidates)
        if best is not None:
            self.put(name, best.value, best.confidence)


def currency(text: str) -> tuple[str | None, float]:
    """The currency a document uses most, and how sure that is."""
    codes = normalise.find_currencies(text)
    if not codes:
        return None, 0.0
    counts = Counter(codes)
    code, count = counts.most_common(1)[0]
    return code, 0.95 if count == len(codes) else 0.75


_NAME_LABELS = re.compile(r"^[\w .\-/]{0,40}:\s*", re.U)


def labelled_name(lines: list[str], spec: FieldSpec) -> Candidate | None:
    """A name after a label (`Bill to: ACME Ltd`) or on the line under it
    (`Bill to` / `ACME Ltd`)."""
    for index, line in enumerate(lines):
        match = spec.pattern.search(line)
        if match is None or match.start() > 2:
            continue
        rest = line[match.end() :].strip(" :-")
        if rest and re.search(r"[^\W\d_]{2}", rest):
            return Candidate(_cut_at_label(rest), SAME_LINE, index, "same_line")
        for below in range(index + 1, min(index + 3, len(lines))):
            if lines[below].strip():
                return Candidate(_cut_at_label(lines[below]), NEXT_LINE, below, "next_line")
    return None


_INLINE_LABEL = re.compile(
    r"\s+(?:Invoice|Rechnung|Date|Datum|Order|Bestell|Customer|Kunden|Delivery|Liefer|VAT|USt|"
    r"Page|Seite|Tel|Phone|Telefon|E-?mail|No\.|Nr\.)\b.*$",
    re.I,
)


def _cut_at_label(text: str) -> str:
    return _INLINE_LABEL.sub("", text).strip(" ,;:")


def company_candidates(lines: list[str], skip: set[int]) -> list[Candidate]:
    return [
        Candidate(name, HEURISTIC + 0.2, index, "legal_form")
        for index, name in company_names(lines)
        if index not in skip
    ]


def first_line_name(lines: list[str], banned: re.Pattern[str]) -> Candidate | None:
    """The first line that reads like a name: letters, not a title or a date."""
    for index, line in enumerate(lines[:8]):
        if not line or banned.search(line) or normalise.find_dates(line):
            continue
        if re.search(r"\d{3,}", line) or len(line) > 60 or not re.search(r"[^\W\d_]{3}", line):
            continue
        return Candidate(line.strip(" ,"), HEURISTIC, index, "first_line")
    return None
