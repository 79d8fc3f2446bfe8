"""Guides for the marking tests."""

from __future__ import annotations

import random
from typing import Any

from backend.marking.guide import Question


def question(**fields: Any) -> Question:
    return Question.model_validate(fields)


def mixed_guide(count: int = 24, seed: int = 0) -> list[Question]:
    """mcq of 4 and 5 options, multi, true_false, and one of each box type."""
    rng = random.Random(seed)
    questions = []
    for index in range(1, count + 1):
        kind = rng.choice(["mcq", "mcq", "mcq", "multi", "true_false"])
        if kind == "mcq":
            options = rng.choice([4, 5])
            answer: Any = "ABCDE"[rng.randrange(options)]
            questions.append(
                question(id=str(index), type="mcq", max_marks=1, options=options, answer=answer)
            )
        elif kind == "multi":
            questions.append(
                question(
                    id=str(index),
                    type="multi",
                    max_marks=2,
                    options=5,
                    answer=["A", "C"],
                    partial=True,
                )
            )
        else:
            questions.append(
                question(id=str(index), type="true_false", max_marks=1, answer=rng.random() < 0.5)
            )
    questions.append(question(id="N1", type="numeric", max_marks=2, answer=9.81, tolerance=0.05))
    questions.append(
        question(id="K1", type="keywords", max_marks=2, keywords=[{"terms": ["light"], "marks": 2}])
    )
    return questions
