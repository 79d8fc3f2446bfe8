"""Class statistics over the scored sheets of a batch."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

HISTOGRAM_BINS = 10


def histogram(percentages: Sequence[float]) -> list[dict[str, Any]]:
    """Ten bins of 10 percentage points; 100 % falls in the last bin."""
    counts = [0] * HISTOGRAM_BINS
    for value in percentages:
        index = min(HISTOGRAM_BINS - 1, max(0, int(value // (100 / HISTOGRAM_BINS))))
        counts[index] += 1
    width = 100 // HISTOGRAM_BINS
    return [
        {"from": i * width, "to": (i + 1) * width, "count": count} for i, count in enumerate(counts)
    ]


def batch_statistics(
    scores: Sequence[Mapping[str, Any]],
    questions: Sequence[Mapping[str, Any]],
    question_ids: Sequence[str],
    max_marks: Mapping[str, float],
) -> dict[str, Any]:
    """`scores`: each sheet's `{awarded, max, percentage, passed}`;
    `questions`: each sheet's `{question id: awarded}`. `stdev` is the sample
    standard deviation (0 for fewer than two sheets)."""
    percentages = [float(score["percentage"]) for score in scores]
    count = len(percentages)
    per_question = []
    for question_id in question_ids:
        awarded = [float(sheet[question_id]) for sheet in questions if question_id in sheet]
        mean = statistics.fmean(awarded) if awarded else 0.0
        maximum = max_marks.get(question_id, 0.0)
        per_question.append(
            {
                "id": question_id,
                "mean_awarded": round(mean, 4),
                "facility": round(mean / maximum, 4) if maximum and awarded else None,
            }
        )
    if not count:
        return {
            "count": 0,
            "mean": None,
            "median": None,
            "min": None,
            "max": None,
            "stdev": None,
            "pass_rate": None,
            "histogram": histogram([]),
            "questions": per_question,
        }
    return {
        "count": count,
        "mean": round(statistics.fmean(percentages), 4),
        "median": round(statistics.median(percentages), 4),
        "min": min(percentages),
        "max": max(percentages),
        "stdev": round(statistics.stdev(percentages), 4) if count > 1 else 0.0,
        "pass_rate": round(sum(bool(score["passed"]) for score in scores) / count, 4),
        "histogram": histogram(percentages),
        "questions": per_question,
    }
