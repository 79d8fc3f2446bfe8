"""Answers from typed or OCR'd text in the documented line format."""

from __future__ import annotations

from backend.marking.scoring import score_question
from backend.marking.typed_answers import parse_answer, parse_number, split_answers
from tests.marking.helpers import question

GUIDE = [
    question(id="1", type="mcq", max_marks=1, options=4, answer="B"),
    question(id="2", type="multi", max_marks=2, options=5, answer=["A", "C"], partial=True),
    question(id="3", type="true_false", max_marks=1, answer=True),
    question(id="4", type="numeric", max_marks=2, answer=9.81, tolerance=0.05),
    question(id="6", type="exact", max_marks=1, accepted=["mitochondria"]),
    question(
        id="7",
        type="keywords",
        max_marks=4,
        keywords=[
            {"terms": ["photosynthesis"], "marks": 2},
            {"terms": ["light", "sunlight"], "marks": 2},
        ],
    ),
    question(id="Q8", type="mcq", max_marks=1, options=3, answer="C"),
]

TEXT = """Name: Ada Lovelace
Student number: 12345678

1. b
2) A, C
Question 3: True
Q4: g = 9.8 m/s²
6 - Mitochondria.
7 - Plants use light
   to do photosynthesis.
Q8: C
"""


def test_the_documented_lines() -> None:
    reading = split_answers(TEXT, GUIDE)
    assert (reading.student_name, reading.student_id) == ("Ada Lovelace", "12345678")
    values = {key: response.value for key, response in reading.responses.items()}
    assert values == {
        "1": "B",
        "2": ["A", "C"],
        "3": True,
        "4": 9.8,
        "6": "Mitochondria.",
        "7": "Plants use light\nto do photosynthesis.",
        "Q8": "C",
    }
    marks = {q.id: score_question(q, reading.responses[q.id]).awarded for q in GUIDE}
    assert marks == {"1": 1, "2": 2, "3": 1, "4": 2, "6": 1, "7": 4, "Q8": 1}
    assert all(not r.flags for r in reading.responses.values())


def test_prefix_rule_blanks_doubles_and_repeats() -> None:
    guide = [*GUIDE[:1], question(id="Q1", type="mcq", max_marks=1, options=4, answer="A")]
    reading = split_answers("Q1: A\n1) C, D\n1. B\n", guide)
    assert reading.responses["Q1"].value == "A"  # the literal id wins over the prefix
    first = reading.responses["1"]
    assert (first.value, first.raw, sorted(first.flags)) == (
        None,
        ["C", "D"],
        ["ambiguous", "multiple_marks"],
    )
    missing = split_answers("nothing here", GUIDE).responses["3"]
    assert (missing.value, missing.flags) == (None, ["blank"])


def test_parsing_per_type() -> None:
    mcq, tf, numeric = GUIDE[0], GUIDE[2], GUIDE[3]
    assert parse_answer(mcq, "B because cells divide").value == "B"
    assert parse_answer(mcq, "I think it is the second").flags == ["ambiguous"]
    assert parse_answer(tf, "falsch").value is False
    assert parse_answer(tf, "true or false").flags == ["multiple_marks"]
    assert parse_answer(numeric, "9,81").value == 9.81
    assert parse_answer(numeric, "1,200 m").value == 1200
    assert parse_answer(numeric, "-.5").value == -0.5
    assert parse_answer(numeric, "v = 3 * 4 = 12").value == 12
    assert parse_answer(numeric, "no idea").flags == ["ambiguous"]
    assert parse_number("\u22123.5e2") == -350


def test_ocr_spacing_and_dashes() -> None:
    reading = split_answers("1.B\n2)A,C\n4-9.8\n6-Mitochondria\n7 -light\n", GUIDE)
    values = {key: r.value for key, r in reading.responses.items()}
    assert (values["1"], values["2"], values["6"], values["7"]) == (
        "B",
        ["A", "C"],
        "Mitochondria",
        "light",
    )
    assert values["4"] is None  # '4-9.8' is not an answer line: the dash is a minus
