"""The plain-text guide format (WORKLOADS.md §2), one question per line:

    # Title: Biology mid-term
    # Subject: Biology
    # Pass: 60
    1 [1] mcq A-D: B
    2b [2] multi A-E partial: B, D, E
    3 [1] true_false: true
    4 [2] numeric: 9.81 ± 0.05
    5 [2] numeric: 120 ± 5%
    6 [1] exact fuzzy=85: mitochondria | mitochondrion
    7 [4] keywords: photosynthesis=2; chlorophyll|chloroplast=1; sunlight|light=1

Headers: `Title`, `Subject`, `Pass`, `Digits` (student-id digits) and
`Instructions`. `±` may be written `+-`; blank lines, lines starting with
`//` and Markdown code fences are ignored, and a Markdown list marker
(`- `, `* `) before a question is allowed. Every bad line is reported by
number, all at once."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from backend.marking.guide import LETTERS, Question, duplicate_ids

MAX_IMPORT_LINES = 2000

_HEADER = re.compile(r"^#+\s*(?P<key>[A-Za-z _-]+?)\s*:\s*(?P<value>.*)$")
_QUESTION = re.compile(
    r"^(?P<id>[A-Za-z0-9_.-]+)\s*\[\s*(?P<marks>[^\]]*)\]\s*(?P<type>[A-Za-z_]+)"
    r"(?P<mods>[^:]*):\s*(?P<answer>.*)$"
)
_RANGE = re.compile(r"^([A-J])\s*-\s*([A-J])$", re.IGNORECASE)
_FUZZY = re.compile(r"^fuzzy\s*=\s*(\d+(?:\.\d+)?)$", re.IGNORECASE)
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_NUMERIC = re.compile(
    rf"^(?P<value>{_NUMBER})\s*(?:(?:±|\+-|\+/-)\s*(?P<tol>{_NUMBER})\s*(?P<pct>%)?)?$"
)
_LIST_MARKER = re.compile(r"^(?:[-*+]\s+)")
_TRUE = {"true", "t", "yes", "y"}
_FALSE = {"false", "f", "no", "n"}


@dataclass(slots=True)
class ParsedGuide:
    title: str | None = None
    subject: str | None = None
    instructions: str | None = None
    pass_percentage: float | None = None
    student_id_digits: int | None = None
    questions: list[Question] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def fields(self) -> dict[str, Any]:
        """The guide-create fields the file set (headers it did not name are absent)."""
        found: dict[str, Any] = {"questions": self.questions}
        for name in ("title", "subject", "instructions", "pass_percentage", "student_id_digits"):
            value = getattr(self, name)
            if value is not None:
                found[name] = value
        return found


def _error(line: int, message: str) -> dict[str, Any]:
    return {"loc": ["file", "line", line], "line": line, "msg": message, "type": "guide_format"}


def parse_guide(text: str) -> ParsedGuide:
    """The guide a text holds, and every bad line (`errors`, by line number)."""
    parsed = ParsedGuide()
    lines = text.splitlines()
    if len(lines) > MAX_IMPORT_LINES:
        parsed.errors.append(_error(MAX_IMPORT_LINES + 1, f"more than {MAX_IMPORT_LINES} lines"))
        return parsed
    seen_on: dict[str, list[int]] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip().replace("\u00a0", " ")
        if not line or line.startswith(("//", "```", "~~~")):
            continue
        if line.startswith("#"):
            problem = _header(parsed, line)
        else:
            question, problem = _question(_LIST_MARKER.sub("", line))
            if question is not None:
                seen_on.setdefault(question.id, []).append(number)
                parsed.questions.append(question)
        if problem:
            parsed.errors.append(_error(number, problem))
    for duplicate in duplicate_ids(parsed.questions):
        first, *repeats = seen_on[duplicate]
        for number in repeats:
            parsed.errors.append(_error(number, f"question id {duplicate!r} repeats line {first}"))
    if not parsed.questions and not parsed.errors:
        parsed.errors.append(_error(max(1, len(lines)), "the file holds no questions"))
    parsed.errors.sort(key=lambda error: int(error["line"]))
    return parsed


def _header(parsed: ParsedGuide, line: str) -> str | None:
    match = _HEADER.match(line)
    if match is None:
        return "a header reads '# Key: value' (Title, Subject, Pass, Digits, Instructions)"
    key, value = match["key"].strip().lower(), match["value"].strip()
    if key == "title":
        parsed.title = value[:500] or None
    elif key == "subject":
        parsed.subject = value[:200] or None
    elif key == "instructions":
        parsed.instructions = value[:5000] or None
    elif key in ("pass", "pass percentage", "pass_percentage"):
        number = _number(value.rstrip("%").strip())
        if number is None or not 0 <= number <= 100:
            return "Pass must be a number from 0 to 100"
        parsed.pass_percentage = number
    elif key in ("digits", "student id digits", "student_id_digits"):
        if not value.isdigit() or not 1 <= int(value) <= 12:
            return "Digits must be a whole number from 1 to 12"
        parsed.student_id_digits = int(value)
    else:
        return f"unknown header {match['key'].strip()!r}"
    return None


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def _question(line: str) -> tuple[Question | None, str | None]:
    match = _QUESTION.match(line)
    if match is None:
        return None, "expected '<id> [<marks>] <type>[ options]: <answer>'"
    marks = _number(match["marks"].strip())
    if marks is None:
        return None, f"marks {match['marks'].strip()!r} is not a number"
    kind = match["type"].lower()
    data: dict[str, Any] = {"id": match["id"], "type": kind, "max_marks": marks}
    answer = match["answer"].strip()
    modifiers = match["mods"].split()
    builder = _BUILDERS.get(kind)
    if builder is None:
        return None, f"unknown type {kind!r} (mcq, multi, true_false, numeric, exact, keywords)"
    problem = builder(data, modifiers, answer)
    if problem:
        return None, problem
    try:
        return Question.model_validate(data), None
    except ValidationError as exc:
        return None, "; ".join(_message(error) for error in exc.errors())


def _message(error: Any) -> str:
    message = str(error.get("msg", "invalid"))
    return message.removeprefix("Value error, ")


def _options(data: dict[str, Any], modifiers: list[str]) -> str | None:
    rest = []
    for modifier in modifiers:
        found = _RANGE.match(modifier)
        if found:
            first, last = found[1].upper(), found[2].upper()
            if first != "A" or last <= first:
                return f"options {modifier!r} must run from A to a later letter"
            data["options"] = list(LETTERS[: LETTERS.index(last) + 1])
        elif modifier.lower() == "partial" and data["type"] == "multi":
            data["partial"] = True
        else:
            rest.append(modifier)
    if rest:
        return f"unexpected {' '.join(rest)!r}"
    if "options" not in data:
        return "options missing: write the letters as a range, e.g. 'mcq A-D'"
    return None


def _build_mcq(data: dict[str, Any], modifiers: list[str], answer: str) -> str | None:
    problem = _options(data, modifiers)
    data["answer"] = answer.upper()
    return problem


def _build_multi(data: dict[str, Any], modifiers: list[str], answer: str) -> str | None:
    problem = _options(data, modifiers)
    data["answer"] = [part.strip().upper() for part in re.split(r"[,\s]+", answer) if part.strip()]
    return problem


def _build_true_false(data: dict[str, Any], modifiers: list[str], answer: str) -> str | None:
    if modifiers:
        return f"unexpected {' '.join(modifiers)!r}"
    word = answer.lower()
    if word not in _TRUE | _FALSE:
        return f"true_false answer {answer!r} is not true or false"
    data["answer"] = word in _TRUE
    return None


def _build_numeric(data: dict[str, Any], modifiers: list[str], answer: str) -> str | None:
    if modifiers:
        return f"unexpected {' '.join(modifiers)!r}"
    found = _NUMERIC.match(answer.replace(" ", ""))
    if found is None:
        return f"numeric answer {answer!r} reads '<number>', '<number> ± <tolerance>' or '… ± <n>%'"
    data["answer"] = float(found["value"])
    if found["tol"] is not None:
        key = "tolerance_percent" if found["pct"] else "tolerance"
        data[key] = float(found["tol"])
    return None


def _fuzzy(data: dict[str, Any], modifiers: list[str]) -> str | None:
    for modifier in modifiers:
        found = _FUZZY.match(modifier)
        if found is None:
            return f"unexpected {modifier!r} (only 'fuzzy=<0-100>')"
        data["fuzzy"] = float(found[1])
    return None


def _build_exact(data: dict[str, Any], modifiers: list[str], answer: str) -> str | None:
    data["accepted"] = [part.strip() for part in answer.split("|") if part.strip()]
    return _fuzzy(data, modifiers)


def _build_keywords(data: dict[str, Any], modifiers: list[str], answer: str) -> str | None:
    groups = []
    for chunk in (part.strip() for part in answer.split(";")):
        if not chunk:
            continue
        terms, equals, marks = chunk.rpartition("=")
        number = _number(marks.strip()) if equals else None
        if number is None:
            return f"keyword group {chunk!r} reads 'term|synonym=<marks>'"
        groups.append(
            {"terms": [t.strip() for t in terms.split("|") if t.strip()], "marks": number}
        )
    data["keywords"] = groups
    return _fuzzy(data, modifiers)


_BUILDERS = {
    "mcq": _build_mcq,
    "multi": _build_multi,
    "true_false": _build_true_false,
    "numeric": _build_numeric,
    "exact": _build_exact,
    "keywords": _build_keywords,
}
