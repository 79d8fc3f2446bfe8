"""Batch statistics against values computed here, and the report formats."""

from __future__ import annotations

import io
import statistics

import pypdfium2 as pdfium
from pypdf import PdfReader

from backend.marking.reports import render_html, render_pdf
from backend.marking.statistics import batch_statistics, histogram


def test_batch_statistics() -> None:
    percentages = [100.0, 45.0, 62.5, 90.0, 10.0]
    scores = [{"percentage": p, "passed": p >= 50} for p in percentages]
    per_sheet = [
        {"1": 1.0, "2": 2.0},
        {"1": 0.0, "2": 1.0},
        {"1": 1.0},
        {"1": 1.0, "2": 0.0},
        {"1": 0.0, "2": 0.5},
    ]
    result = batch_statistics(scores, per_sheet, ["1", "2"], {"1": 1.0, "2": 2.0})
    assert result["count"] == 5
    assert result["mean"] == round(statistics.fmean(percentages), 4)
    assert result["median"] == 62.5
    assert (result["min"], result["max"]) == (10.0, 100.0)
    assert result["stdev"] == round(statistics.stdev(percentages), 4)
    assert result["pass_rate"] == 0.6
    assert [b["count"] for b in result["histogram"]] == [0, 1, 0, 0, 1, 0, 1, 0, 0, 2]
    assert result["questions"] == [
        {"id": "1", "mean_awarded": 0.6, "facility": 0.6},
        {"id": "2", "mean_awarded": 0.875, "facility": 0.4375},
    ]
    empty = batch_statistics([], [], ["1"], {"1": 1.0})
    assert (empty["count"], empty["mean"], empty["questions"][0]["facility"]) == (0, None, None)
    assert histogram([0, 9.99, 10, 99.9, 100])[0]["count"] == 2


REPORT = {
    "guide": {"title": "Biology <mid-term>", "subject": "Biology"},
    "sheet_id": "s1",
    "student_id": "12345678",
    "student_name": "Zoë <script>",
    "score": {"awarded": 3.5, "max": 5.0, "percentage": 70.0, "passed": True},
    "requires_review": True,
    "qa": {"blank": 1, "multiple_marks": 0, "ambiguous": 0, "low_confidence": 0},
    "marked_at": "2026-12-03T12:00:00Z",
    "questions": [
        {
            "id": "1",
            "type": "mcq",
            "answer": "B",
            "awarded": 1.0,
            "max_marks": 1.0,
            "correct": True,
            "feedback": "Correct.",
            "flags": [],
            "confidence": 1.0,
            "overridden": False,
        },
        {
            "id": "2",
            "type": "multi",
            "answer": ["A", "C"],
            "awarded": 2.5,
            "max_marks": 3.0,
            "correct": None,
            "feedback": "Partly right.",
            "flags": [],
            "confidence": 1.0,
            "overridden": True,
        },
        {
            "id": "3",
            "type": "exact",
            "answer": None,
            "awarded": 0.0,
            "max_marks": 1.0,
            "correct": False,
            "feedback": "No answer.",
            "flags": ["blank"],
            "confidence": 1.0,
            "overridden": False,
        },
    ],
}


def test_html_report_escapes_and_shows_everything() -> None:
    html = render_html(REPORT)
    assert "Biology &lt;mid-term&gt;" in html
    assert "<script>" not in html
    assert "Zoë &lt;script&gt; (12345678)" in html
    assert "3.5 / 5" in html
    assert "A, C" in html
    assert "(marked by hand)" in html
    assert "blank" in html


def test_pdf_report_is_a_printable_pdf() -> None:
    pdf = render_pdf(REPORT)
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Score: 3.5 / 5 (70 %) - passed" in text
    assert "12345678" in text
    assert "Partly right. (marked by hand)" in text
    assert len(pdfium.PdfDocument(pdf)) == 1
