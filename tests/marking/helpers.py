"""Guides for the marking tests (`mixed_guide` lives with the synthetic sheets)."""

from __future__ import annotations

from typing import Any

from backend.marking.guide import Question
from bench.marking_synth import mixed_guide


def question(**fields: Any) -> Question:
    return Question.model_validate(fields)


__all__ = ["mixed_guide", "question"]
