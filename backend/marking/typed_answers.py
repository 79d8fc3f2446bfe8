"""Answers from a document's text (typed, or OCR'd), one line per answer:

    Name: Ada Lovelace
    Student number: 12345678
    1. B
    2) A, C
    Q4: 9.8
    7 - Plants use light to make sugar
        and release oxygen.

A line starts with a question id followed by `.`, `)`, `:` or ` -` (OCR's
`4-A` too); the id
may carry a `Q` or `Question` prefix (`Q4` is question `4` unless the guide
has a question literally called `Q4`). A line without an id continues the
previous answer (for text answers; a letter, truth value or number is read
from its own line). Lines before the first answer may name the student."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from backend.marking.guide import Question
from backend.marking.scoring import AMBIGUOUS, BLANK, MULTIPLE_MARKS, Response

_TRUE = {"true", "t", "yes", "y", "correct", "right", "wahr", "richtig", "ja"}
_FALSE = {"false", "f", "no", "n", "incorrect", "wrong", "falsch", "nein"}
_TOKEN_SPLIT = re.compile(r"[\s,;/&+]+")
_NUMBER = re.compile(
    r"[-+\u2212]?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?|[.,]\d+)(?:[eE][-+]?\d+)?"
)
_STUDENT = re.compile(
    r"^\s*(?:student\s*(?:id|number|no\.?|#)?|matriculation(?:\s*number)?|id)\s*[:#=-]?\s*"
    r"(?P<id>[A-Za-z0-9-]{1,32})\s*$",
    re.IGNORECASE,
)
_NAME = re.compile(r"^\s*(?:student\s*)?name\s*[:=-]\s*(?P<name>.{1,200}?)\s*$", re.IGNORECASE)


@dataclass(slots=True)
class TypedReading:
    responses: dict[str, Response]
    student_id: str | None = None
    student_name: str | None = None
    raw: dict[str, str] = field(default_factory=dict)


def _id_pattern(ids: Sequence[str], prefixed: bool) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
    prefix = r"(?:question|q)\s*" if prefixed else ""
    return re.compile(
        rf"^\s*{prefix}(?P<id>{alternatives})\s*"
        # `-` separates unless a number follows it (`4 -9.8` is no answer line);
        # OCR often drops the spaces around it (`4-A`).
        rf"(?:[.):]|-(?=\s|$)|-(?=[^\d\s.-]))\s*(?P<rest>.*)$",
        re.IGNORECASE,
    )


def split_answers(text: str, questions: Sequence[Question]) -> TypedReading:
    """The raw answer text per question id, and the student named above them."""
    ids = [question.id for question in questions]
    by_lower = {i.lower(): i for i in ids}
    literal = _id_pattern(ids, prefixed=False)
    prefixed = _id_pattern(ids, prefixed=True)
    reading = TypedReading(responses={})
    repeated: set[str] = set()
    current: str | None = None
    for line in text.splitlines():
        match = literal.match(line) or prefixed.match(line)
        if match:
            question_id = by_lower[match["id"].lower()]
            if question_id in reading.raw:
                repeated.add(question_id)
                current = None
                continue
            reading.raw[question_id] = match["rest"].strip()
            current = question_id
        elif current is not None:
            if line.strip():
                reading.raw[current] = (reading.raw[current] + "\n" + line.strip()).strip()
        else:
            student = _STUDENT.match(line)
            name = _NAME.match(line)
            if student and reading.student_id is None:
                reading.student_id = student["id"]
            elif name and reading.student_name is None:
                reading.student_name = name["name"]
    for question in questions:
        response = parse_answer(question, reading.raw.get(question.id))
        if question.id in repeated and AMBIGUOUS not in response.flags:
            response.flags.append(AMBIGUOUS)
            response.confidence = min(response.confidence, 0.5)
        reading.responses[question.id] = response
    return reading


def _first_line(raw: str) -> str:
    return raw.split("\n", 1)[0].strip()


def _letters(raw: str, options: Sequence[str]) -> list[str]:
    """The option letters the answer's line starts with (`B`, `A, C`, `(b)`)."""
    letters: list[str] = []
    for token in _TOKEN_SPLIT.split(_first_line(raw)):
        token = token.strip("()[]{}.:'\"")
        if not token or token.lower() in ("and", "und", "or"):
            continue
        if token.upper() not in options:
            break
        letters.append(token.upper())
    return list(dict.fromkeys(letters))


def parse_number(raw: str) -> float | None:
    """The answer's number: after the last `=` if there is one, else the
    first; `1,200` is twelve hundred, `9,81` is a decimal comma."""
    line = _first_line(raw)
    if "=" in line:
        line = line.rsplit("=", 1)[1]
    found = _NUMBER.search(line)
    if found is None:
        return None
    token = found.group(0).replace("\u2212", "-")
    if re.fullmatch(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?:[eE][-+]?\d+)?", token):
        token = token.replace(",", "")
    else:
        token = token.replace(",", ".")
    try:
        return float(token)
    except ValueError:
        return None


def parse_answer(question: Question, raw: str | None) -> Response:
    """One question's response from its answer text."""
    if raw is None or not raw.strip():
        return Response(value=None, raw=raw, flags=[BLANK])
    text = raw.strip()
    if question.type in ("mcq", "multi"):
        letters = _letters(text, question.choices)
        if not letters:
            return Response(value=None, raw=text, flags=[AMBIGUOUS], confidence=0.3)
        if question.type == "multi":
            return Response(value=sorted(letters), raw=text)
        if len(letters) > 1:
            return Response(value=None, raw=sorted(letters), flags=[MULTIPLE_MARKS])
        return Response(value=letters[0], raw=text)
    if question.type == "true_false":
        words = [w.strip(".:!()").lower() for w in _TOKEN_SPLIT.split(_first_line(text)) if w]
        seen = {True for w in words[:3] if w in _TRUE} | {False for w in words[:3] if w in _FALSE}
        if len(seen) > 1:
            return Response(value=None, raw=text, flags=[MULTIPLE_MARKS])
        if not seen:
            return Response(value=None, raw=text, flags=[AMBIGUOUS], confidence=0.3)
        return Response(value=seen.pop(), raw=text)
    if question.type == "numeric":
        number = parse_number(text)
        if number is None:
            return Response(value=None, raw=text, flags=[AMBIGUOUS], confidence=0.3)
        return Response(value=number, raw=text)
    return Response(value=text, raw=text)
