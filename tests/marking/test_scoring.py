"""Guide checks and the scoring rules of every question type, at their edges."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from backend.marking.guide import Question, duplicate_ids, warnings
from backend.marking.scoring import (
    Response,
    normalise_text,
    qa_counts,
    requires_review,
    score_question,
    total,
)


def q(**fields: Any) -> Question:
    return Question.model_validate({"id": "1", "max_marks": 2, **fields})


def marks(question: Question, value: Any, **response: Any) -> float:
    return score_question(question, Response(value=value, **response)).awarded


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"type": "mcq", "options": 4, "answer": "E"}, "question 1: answer must be one of"),
        ({"type": "mcq", "options": 1, "answer": "A"}, "needs 2-10 options"),
        ({"type": "mcq", "options": ["A", "C"], "answer": "A"}, "consecutive letters"),
        ({"type": "multi", "options": 3, "answer": ["A", "D"]}, "answer D is outside"),
        ({"type": "true_false", "answer": "yes"}, "true_false needs answer true or false"),
        ({"type": "numeric", "answer": 1, "tolerance": -1}, "tolerance must be 0 or more"),
        ({"type": "exact", "accepted": [" "]}, "at least one accepted"),
        ({"type": "keywords", "keywords": [{"terms": ["a"], "marks": 0}]}, "greater than 0"),
        ({"type": "mcq", "options": 4, "answer": "A", "max_marks": -1}, "max_marks must be"),
    ],
)
def test_invalid_questions_are_refused_naming_the_question(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        q(**fields)
    assert message in str(caught.value)
    assert "question 1" in str(caught.value)


def test_duplicate_ids_and_warnings() -> None:
    questions = [
        q(type="mcq", options=4, answer="a"),
        q(type="keywords", keywords=[{"terms": ["x"], "marks": 1}]),
        q(id="2", type="numeric", answer=9.81),
    ]
    assert questions[0].answer == "A"
    assert questions[0].options == ["A", "B", "C", "D"]
    assert duplicate_ids(questions) == ["1"]
    found = warnings(questions, 0)
    assert any("award at most 1 of 2" in w for w in found)
    assert any("decimal answer without tolerance" in w for w in found)
    assert any("every sheet passes" in w for w in found)


def test_mcq_and_true_false() -> None:
    mcq = q(type="mcq", options=4, answer="B")
    assert marks(mcq, "B") == 2
    assert marks(mcq, "C") == 0
    double = score_question(mcq, Response(value=None, raw=["B", "C"], flags=["multiple_marks"]))
    assert (double.awarded, double.flags, double.answer) == (0, ["multiple_marks"], ["B", "C"])
    blank = score_question(mcq, Response(value=None))
    assert (blank.awarded, blank.flags, blank.correct) == (0, ["blank"], False)
    tf = q(type="true_false", answer=False)
    assert marks(tf, False) == 2
    assert marks(tf, True) == 0


@pytest.mark.parametrize(
    ("chosen", "partial", "expected", "correct"),
    [
        (["A", "C", "D"], True, 2.0, True),
        (["A", "C"], True, 2 * 2 / 3, None),
        (["A", "C", "B"], True, 2 * 1 / 3, None),
        (["A", "B", "E"], True, 0.0, False),  # 1 right - 2 wrong: floored at 0
        (["B", "E"], True, 0.0, False),
        (["A", "C"], False, 0.0, False),  # all or nothing
        (["A", "C", "D"], False, 2.0, True),
    ],
)
def test_multi_partial_credit(
    chosen: list[str], partial: bool, expected: float, correct: bool | None
) -> None:
    question = q(type="multi", options=5, answer=["D", "A", "C"], partial=partial)
    result = score_question(question, Response(value=chosen))
    assert result.awarded == pytest.approx(expected, abs=1e-4)
    assert result.correct is correct


@pytest.mark.parametrize(
    ("value", "awarded"),
    [(9.81, 2), (9.86, 2), (9.76, 2), (9.8601, 0), (9.7599, 0), (-9.81, 0)],
)
def test_numeric_absolute_tolerance_is_inclusive(value: float, awarded: float) -> None:
    assert marks(q(type="numeric", answer=9.81, tolerance=0.05), value) == awarded


@pytest.mark.parametrize(("value", "awarded"), [(114, 2), (126, 2), (113.99, 0), (126.01, 0)])
def test_numeric_percent_tolerance(value: float, awarded: float) -> None:
    assert marks(q(type="numeric", answer=120, tolerance_percent=5), value) == awarded


def test_numeric_without_tolerance_is_exact() -> None:
    question = q(type="numeric", answer=3)
    assert marks(question, 3.0) == 2
    assert marks(question, 3.001) == 0


def test_exact_normalisation_and_fuzzy_threshold() -> None:
    question = q(type="exact", accepted=["Mitochondria", "mitochondrion"])
    assert normalise_text('  "MITOCHONDRIA."  ') == "mitochondria"
    assert marks(question, "  mitochondria!  ") == 2
    assert marks(question, "Mitochondira") == 2  # a transposition: 91.7 % similar
    strict = q(type="exact", accepted=["photosynthesis"], fuzzy=100)
    assert marks(strict, "Photosynthesis.") == 2
    assert marks(strict, "photosynthesys") == 0
    # rapidfuzz ratio of "photosynthesys" vs "photosynthesis" is 92.86: at 92 it counts, at 93 not
    assert marks(q(type="exact", accepted=["photosynthesis"], fuzzy=92), "photosynthesys") == 2
    assert marks(q(type="exact", accepted=["photosynthesis"], fuzzy=93), "photosynthesys") == 0


def test_keywords_groups_synonyms_and_cap() -> None:
    question = q(
        type="keywords",
        max_marks=3,
        keywords=[
            {"terms": ["photosynthesis"], "marks": 2},
            {"terms": ["chlorophyll", "chloroplast"], "marks": 1},
            {"terms": ["sunlight", "light"], "marks": 1},
        ],
    )
    all_found = score_question(
        question, Response(value="Plants do Photosynthesis in the chloroplast using light.")
    )
    assert all_found.awarded == 3  # 4 found, capped at max_marks
    assert "Capped at 3" in all_found.feedback
    assert marks(question, "They use sun light") == 1  # a two-word run matches 'sunlight'
    assert marks(question, "photosinthesis happens") == 2  # fuzzy 90: 92.9 % similar
    assert marks(question, "nothing relevant") == 0


def test_totals_review_and_counts() -> None:
    mcq = q(type="mcq", options=4, answer="B")
    results = [
        score_question(mcq, Response(value="B")),
        score_question(mcq.model_copy(update={"id": "2"}), Response(value=None)),
        score_question(mcq.model_copy(update={"id": "3"}), Response(value="B", confidence=0.5)),
    ]
    score = total(results, pass_percentage=66.67)
    assert (score.awarded, score.max, score.percentage, score.passed) == (4, 6, 66.67, True)
    assert total(results, 67).passed is False
    assert qa_counts(results, 0.8) == {
        "blank": 1,
        "multiple_marks": 0,
        "ambiguous": 0,
        "low_confidence": 1,
    }
    assert requires_review(results, 0.8)
    assert not requires_review(results[:1], 0.8)
