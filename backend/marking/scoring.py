"""Marks per question by the rules of its type, and a sheet's score.

A `Response` is what was read for one question (from bubbles or from text):
its value in the question type's terms, the reader's flags and confidence.
Scoring is pure: the same guide and responses give the same marks."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz

from backend.marking.guide import Question

BLANK = "blank"
MULTIPLE_MARKS = "multiple_marks"
AMBIGUOUS = "ambiguous"
FLAGS = (BLANK, MULTIPLE_MARKS, AMBIGUOUS)


@dataclass(slots=True)
class Response:
    """`value`: a letter (mcq), letters (multi), a bool (true_false), a
    number (numeric) or text (exact, keywords); `None` when nothing was read.
    `raw` is what was seen, for feedback (e.g. the letters of a double mark)."""

    value: Any = None
    raw: Any = None
    flags: list[str] = field(default_factory=list)
    confidence: float = 1.0
    handwritten: bool = False  # ink in a box of a printed sheet: a person reads it


@dataclass(slots=True)
class QuestionResult:
    id: str
    type: str
    answer: Any
    awarded: float
    max_marks: float
    correct: bool | None
    feedback: str
    flags: list[str]
    confidence: float
    overridden: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "answer": self.answer,
            "awarded": self.awarded,
            "max_marks": self.max_marks,
            "correct": self.correct,
            "feedback": self.feedback,
            "flags": list(self.flags),
            "confidence": self.confidence,
            "overridden": self.overridden,
        }


def _marks(value: float) -> float:
    return round(value, 4)


def _correctness(awarded: float, max_marks: float) -> bool | None:
    if awarded >= max_marks - 1e-9:
        return True
    if awarded <= 1e-9:
        return False
    return None


_SPACE = re.compile(r"\s+")


def normalise_text(value: str) -> str:
    """Case-folded, whitespace collapsed, outer punctuation dropped."""
    text = _SPACE.sub(" ", unicodedata.normalize("NFKC", value)).strip().casefold()
    start, end = 0, len(text)
    while start < end and _is_punctuation(text[start]):
        start += 1
    while end > start and _is_punctuation(text[end - 1]):
        end -= 1
    return text[start:end].strip()


def _is_punctuation(char: str) -> bool:
    return unicodedata.category(char)[0] in ("P", "S") or char.isspace()


def similarity(left: str, right: str) -> float:
    """0-100 similarity of two normalised strings (rapidfuzz's ratio)."""
    return float(fuzz.ratio(left, right))


def best_match(answer: str, accepted: Iterable[str]) -> tuple[str | None, float]:
    best, best_score = None, -1.0
    for candidate in accepted:
        score = similarity(answer, normalise_text(candidate))
        if score > best_score:
            best, best_score = candidate, score
    return best, best_score


def term_found(term: str, words: Sequence[str], threshold: float) -> bool:
    """Whether `term` (normalised, possibly several words) occurs in `words`:
    exactly, or a run of as many words (±1) at least `threshold` similar."""
    term_words = term.split()
    if not term_words:
        return False
    size = len(term_words)
    for width in {max(1, size - 1), size, size + 1}:
        for start in range(0, max(0, len(words) - width) + 1):
            window = " ".join(words[start : start + width])
            if window == term or similarity(window, term) >= threshold:
                return True
    return False


_WORD = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")


def words_of(text: str) -> list[str]:
    return _WORD.findall(normalise_text(text))


def score_question(question: Question, response: Response) -> QuestionResult:
    """The marks for one answer, with feedback naming the rule that applied."""
    flags = list(dict.fromkeys(response.flags))
    result = QuestionResult(
        id=question.id,
        type=question.type,
        answer=response.value,
        awarded=0.0,
        max_marks=question.max_marks,
        correct=False,
        feedback="",
        flags=flags,
        confidence=round(max(0.0, min(1.0, response.confidence)), 4),
    )
    if MULTIPLE_MARKS in flags and question.type in ("mcq", "true_false"):
        result.answer = response.raw if response.raw is not None else response.value
        result.feedback = "More than one answer marked: no marks."
        return result
    if response.handwritten:
        result.answer = None
        result.correct = None
        result.feedback = "Written answer on the printed sheet: to be marked by hand."
        result.confidence = 0.0
        return result
    if response.value is None or response.value == [] or response.value == "":
        unread = bool(flags) and BLANK not in flags
        if not flags:
            flags.append(BLANK)
        result.answer = None
        result.feedback = "The answer could not be read." if unread else "No answer."
        return result
    scorer = _SCORERS[question.type]
    awarded, feedback = scorer(question, response.value)
    awarded = _marks(max(0.0, min(question.max_marks, awarded)))
    result.awarded = awarded
    result.correct = _correctness(awarded, question.max_marks)
    result.feedback = feedback
    return result


def _score_mcq(question: Question, value: Any) -> tuple[float, str]:
    if value == question.answer:
        return question.max_marks, "Correct."
    return 0.0, f"Answered {value}; the answer is {question.answer}."


def _score_true_false(question: Question, value: Any) -> tuple[float, str]:
    expected = "true" if question.answer else "false"
    if bool(value) is question.answer:
        return question.max_marks, "Correct."
    return 0.0, f"The statement is {expected}."


def _score_multi(question: Question, value: Any) -> tuple[float, str]:
    answer = set(question.answer if isinstance(question.answer, list) else [])
    chosen = {str(letter) for letter in value}
    right = len(chosen & answer)
    wrong = len(chosen - answer)
    expected = ", ".join(sorted(answer))
    if chosen == answer:
        return question.max_marks, "Correct."
    if question.partial:
        fraction = max(0, right - wrong) / len(answer)
        return (
            question.max_marks * fraction,
            f"{right} of {len(answer)} right, {wrong} wrong (partial credit); "
            f"the answer is {expected}.",
        )
    return 0.0, f"The answer is {expected} (all or nothing)."


def _score_numeric(question: Question, value: Any) -> tuple[float, str]:
    expected = float(question.answer)  # type: ignore[arg-type]
    number = float(value)
    allowed = 0.0
    if question.tolerance is not None:
        allowed = max(allowed, question.tolerance)
    if question.tolerance_percent is not None:
        allowed = max(allowed, abs(expected) * question.tolerance_percent / 100)
    slack = 1e-9 * max(1.0, abs(expected))  # binary fractions: 9.86 - 9.81 > 0.05
    if math.isfinite(number) and abs(number - expected) <= allowed + slack:
        return question.max_marks, "Correct." if number == expected else "Within tolerance."
    bound = f" ± {allowed:g}" if allowed else ""
    return 0.0, f"The answer is {expected:g}{bound}."


def _score_exact(question: Question, value: Any) -> tuple[float, str]:
    text = normalise_text(str(value))
    match, score = best_match(text, question.accepted or [])
    if match is not None and (text == normalise_text(match) or score >= question.fuzzy):
        if text == normalise_text(match):
            return question.max_marks, "Correct."
        return question.max_marks, f"Accepted as {match!r} ({score:.0f}% similar)."
    accepted = " or ".join(repr(item) for item in question.accepted or [])
    return 0.0, f"Expected {accepted}."


def _score_keywords(question: Question, value: Any) -> tuple[float, str]:
    words = words_of(str(value))
    awarded = 0.0
    found: list[str] = []
    missing: list[str] = []
    for group in question.keywords or []:
        terms = [normalise_text(term) for term in group.terms]
        if any(term_found(term, words, question.fuzzy) for term in terms):
            awarded += group.marks
            found.append(group.terms[0])
        else:
            missing.append(group.terms[0])
    capped = min(awarded, question.max_marks)
    parts = []
    if found:
        parts.append("Found: " + ", ".join(found))
    if missing:
        parts.append("missing: " + ", ".join(missing))
    feedback = "; ".join(parts) + "."
    if awarded > question.max_marks:
        feedback += f" Capped at {question.max_marks:g}."
    return capped, feedback[0].upper() + feedback[1:]


_SCORERS = {
    "mcq": _score_mcq,
    "multi": _score_multi,
    "true_false": _score_true_false,
    "numeric": _score_numeric,
    "exact": _score_exact,
    "keywords": _score_keywords,
}


@dataclass(slots=True)
class Score:
    awarded: float
    max: float
    percentage: float
    passed: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "awarded": self.awarded,
            "max": self.max,
            "percentage": self.percentage,
            "passed": self.passed,
        }


def total(results: Iterable[QuestionResult], pass_percentage: float) -> Score:
    results = list(results)
    awarded = _marks(sum(result.awarded for result in results))
    maximum = _marks(sum(result.max_marks for result in results))
    percentage = round(100 * awarded / maximum, 2) if maximum else 0.0
    return Score(awarded, maximum, percentage, percentage >= pass_percentage)


def qa_counts(results: Iterable[QuestionResult], review_confidence: float) -> dict[str, int]:
    counts = {BLANK: 0, MULTIPLE_MARKS: 0, AMBIGUOUS: 0, "low_confidence": 0}
    for result in results:
        for flag in result.flags:
            if flag in counts:
                counts[flag] += 1
        if result.confidence < review_confidence:
            counts["low_confidence"] += 1
    return counts


def requires_review(results: Iterable[QuestionResult], review_confidence: float) -> bool:
    return any(
        (result.flags or result.confidence < review_confidence) and not result.overridden
        for result in results
    )
