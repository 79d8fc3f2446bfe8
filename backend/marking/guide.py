"""A marking guide's questions as data: the six question types, their checks
(an invalid guide is refused naming the question) and the warnings a valid
but doubtful guide earns. Used by the JSON API and by the import format."""

from __future__ import annotations

import math
import string
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

QuestionType = Literal["mcq", "multi", "true_false", "numeric", "exact", "keywords"]
BUBBLE_TYPES: frozenset[str] = frozenset({"mcq", "multi", "true_false"})
LETTERS = string.ascii_uppercase[:10]
MAX_QUESTIONS = 200
MAX_OPTIONS = 10
MIN_OPTIONS = 2

QuestionId = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$"
    ),
]


Term = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# Option or answer letters as a list: bounded like every request list.
Letters = Annotated[list[Annotated[str, StringConstraints(max_length=8)]], Field(max_length=26)]


def option_letters(count: int) -> list[str]:
    return list(LETTERS[:count])


class KeywordGroup(BaseModel):
    model_config = ConfigDict(extra="forbid")

    terms: list[Term] = Field(
        min_length=1, max_length=20, description="Synonyms: any one of them counts"
    )
    marks: float = Field(description="Marks awarded when the group is found (> 0)")


class Question(BaseModel):
    """One question. `options` may be given as a count (2-10) or as the
    letters themselves (`["A", "B", "C"]`); it is stored as letters."""

    model_config = ConfigDict(extra="forbid")

    id: QuestionId
    type: QuestionType
    max_marks: float
    text: str | None = Field(default=None, max_length=5000)
    options: Letters | int | None = None
    answer: str | Letters | bool | float | None = None
    partial: bool = False
    tolerance: float | None = None
    tolerance_percent: float | None = None
    accepted: list[Annotated[str, StringConstraints(max_length=500)]] | None = Field(
        default=None, max_length=50
    )
    fuzzy: float = 90
    keywords: list[KeywordGroup] | None = Field(default=None, max_length=50)

    @property
    def choices(self) -> list[str]:
        """The letters of this question's bubbles: its options, or T and F."""
        if self.type == "true_false":
            return ["T", "F"]
        return list(self.options) if isinstance(self.options, list) else []

    @model_validator(mode="after")
    def _rules(self) -> Question:
        name = f"question {self.id}"
        if not math.isfinite(self.max_marks) or self.max_marks <= 0:
            raise ValueError(f"{name}: max_marks must be greater than 0")
        if not 0 <= self.fuzzy <= 100:
            raise ValueError(f"{name}: fuzzy must be between 0 and 100")
        check = _CHECKS[self.type]
        check(self, name)
        return self


def _letters(question: Question, name: str) -> list[str]:
    given = question.options
    if isinstance(given, int):
        given = option_letters(given) if MIN_OPTIONS <= given <= MAX_OPTIONS else []
    options = [str(option).strip().upper() for option in given or []]
    if not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
        raise ValueError(f"{name}: {question.type} needs 2-10 options")
    if options != option_letters(len(options)):
        raise ValueError(f"{name}: options must be consecutive letters from A")
    question.options = options
    return options


def _check_mcq(question: Question, name: str) -> None:
    options = _letters(question, name)
    answer = question.answer
    if not isinstance(answer, str) or answer.strip().upper() not in options:
        raise ValueError(f"{name}: answer must be one of the options {options[0]}-{options[-1]}")
    question.answer = answer.strip().upper()


def _check_multi(question: Question, name: str) -> None:
    options = _letters(question, name)
    answer = question.answer
    if isinstance(answer, str):
        answer = [part for part in answer.replace(",", " ").split() if part]
    if not isinstance(answer, list) or not answer:
        raise ValueError(f"{name}: multi needs a non-empty list of answer letters")
    letters = [str(item).strip().upper() for item in answer]
    outside = [letter for letter in letters if letter not in options]
    if outside:
        raise ValueError(f"{name}: answer {', '.join(outside)} is outside the options")
    if len(set(letters)) != len(letters):
        raise ValueError(f"{name}: answer letters repeat")
    question.answer = sorted(letters)


def _check_true_false(question: Question, name: str) -> None:
    if not isinstance(question.answer, bool):
        raise ValueError(f"{name}: true_false needs answer true or false")
    question.options = None


def _check_numeric(question: Question, name: str) -> None:
    answer = question.answer
    if isinstance(answer, bool) or not isinstance(answer, int | float) or not math.isfinite(answer):
        raise ValueError(f"{name}: numeric needs a number as answer")
    question.answer = float(answer)
    for field in ("tolerance", "tolerance_percent"):
        value = getattr(question, field)
        if value is not None and (not math.isfinite(value) or value < 0):
            raise ValueError(f"{name}: {field} must be 0 or more")


def _check_exact(question: Question, name: str) -> None:
    accepted = [item.strip() for item in question.accepted or [] if item.strip()]
    if not accepted:
        raise ValueError(f"{name}: exact needs at least one accepted answer")
    question.accepted = accepted


def _check_keywords(question: Question, name: str) -> None:
    if not question.keywords:
        raise ValueError(f"{name}: keywords needs at least one keyword group")
    for group in question.keywords:
        if not math.isfinite(group.marks) or group.marks <= 0:
            raise ValueError(f"{name}: keyword group marks must be greater than 0")


_CHECKS = {
    "mcq": _check_mcq,
    "multi": _check_multi,
    "true_false": _check_true_false,
    "numeric": _check_numeric,
    "exact": _check_exact,
    "keywords": _check_keywords,
}


def duplicate_ids(questions: list[Question]) -> list[str]:
    seen: set[str] = set()
    duplicates: list[str] = []
    for question in questions:
        if question.id in seen and question.id not in duplicates:
            duplicates.append(question.id)
        seen.add(question.id)
    return duplicates


def total_marks(questions: list[Question]) -> float:
    return round(sum(question.max_marks for question in questions), 6)


def warnings(questions: list[Question], pass_percentage: float) -> list[str]:
    """Doubts about a valid guide: things that are allowed but likely a mistake."""
    found: list[str] = []
    if not questions:
        found.append("The guide has no questions")
    for question in questions:
        name = f"question {question.id}"
        if question.type == "keywords" and question.keywords:
            reachable = sum(group.marks for group in question.keywords)
            if reachable < question.max_marks:
                found.append(
                    f"{name}: the keyword groups award at most {reachable:g} of "
                    f"{question.max_marks:g} marks"
                )
        if question.type == "numeric":
            if question.tolerance is not None and question.tolerance_percent is not None:
                found.append(f"{name}: both tolerance and tolerance_percent given; either suffices")
            elif (
                question.tolerance is None
                and question.tolerance_percent is None
                and isinstance(question.answer, float)
                and not question.answer.is_integer()
            ):
                found.append(f"{name}: a decimal answer without tolerance must match exactly")
        if question.type in ("exact", "keywords") and question.fuzzy < 60:
            found.append(f"{name}: fuzzy {question.fuzzy:g} accepts loosely similar text")
        if (
            question.type == "multi"
            and isinstance(question.answer, list)
            and len(question.answer) == len(question.choices)
        ):
            found.append(f"{name}: every option is an answer")
        if question.type == "mcq" and question.partial:
            found.append(f"{name}: partial applies to multi questions only")
    if pass_percentage == 0:
        found.append("pass_percentage 0: every sheet passes")
    return found
