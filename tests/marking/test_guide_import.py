"""The plain-text guide format: every example line of WORKLOADS.md, each
kind of bad line reported by number, and the text of DOCX and PDF files."""

from __future__ import annotations

import io

import docx
from fpdf import FPDF

from backend.documents.content import DOCX, PDF
from backend.marking.extraction import document_text
from backend.marking.guide_import import parse_guide

EXAMPLE = """# Title: Biology mid-term
# Subject: Biology
# Pass: 60
// comments and blank lines are ignored

1 [1] mcq A-D: B
2 [2] multi A-E: A, C
2b [2] multi A-E partial: B, D, E
3 [1] true_false: true
4 [2] numeric: 9.81 ± 0.05
5 [2] numeric: 120 +- 5%
6 [1] exact: mitochondria | mitochondrion
7 [4] keywords: photosynthesis=2; chlorophyll|chloroplast=1; sunlight|light=1
"""


def test_the_example_parses() -> None:
    parsed = parse_guide(EXAMPLE)
    assert parsed.errors == []
    assert (parsed.title, parsed.subject, parsed.pass_percentage) == (
        "Biology mid-term",
        "Biology",
        60,
    )
    by_id = {q.id: q for q in parsed.questions}
    assert list(by_id) == ["1", "2", "2b", "3", "4", "5", "6", "7"]
    assert (by_id["1"].options, by_id["1"].answer) == (["A", "B", "C", "D"], "B")
    assert (by_id["2"].answer, by_id["2"].partial) == (["A", "C"], False)
    assert (by_id["2b"].answer, by_id["2b"].partial) == (["B", "D", "E"], True)
    assert by_id["3"].answer is True
    assert (by_id["4"].answer, by_id["4"].tolerance) == (9.81, 0.05)
    assert (by_id["5"].answer, by_id["5"].tolerance_percent) == (120, 5)
    assert by_id["6"].accepted == ["mitochondria", "mitochondrion"]
    groups = by_id["7"].keywords or []
    assert [(g.terms, g.marks) for g in groups] == [
        (["photosynthesis"], 2),
        (["chlorophyll", "chloroplast"], 1),
        (["sunlight", "light"], 1),
    ]
    assert parsed.fields()["pass_percentage"] == 60


def test_markdown_list_markers_fences_and_fuzzy() -> None:
    text = "```\n- 1 [1] mcq A-C: c\n* 2 [1] exact fuzzy=80: Paris\n```\n# Digits: 6\n"
    parsed = parse_guide(text)
    assert parsed.errors == []
    assert [q.answer for q in parsed.questions] == ["C", None]
    assert parsed.questions[1].fuzzy == 80
    assert parsed.student_id_digits == 6


def test_every_bad_line_is_reported_by_number() -> None:
    text = "\n".join(
        [
            "# Title: Broken",  # 1
            "1 [1] mcq A-D: E",  # 2 answer outside the options
            "2 [x] mcq A-D: B",  # 3 marks not a number
            "3 [1] essay: anything",  # 4 unknown type
            "4 [2] numeric: about nine",  # 5
            "just some words",  # 6
            "1 [1] true_false: true",  # 7 valid: line 2 failed, so no repeat
            "5 [1] true_false: maybe",  # 8
            "6 [2] keywords: light; dark=1",  # 9
            "# Colour: blue",  # 10
            "7 [1] mcq: A",  # 11 options missing
            "7 [1] mcq A-B: A",  # 12
            "7 [1] mcq A-B: B",  # 13 duplicate of line 12
            "# Pass: 140",  # 14
        ]
    )
    parsed = parse_guide(text)
    lines = [error["line"] for error in parsed.errors]
    assert lines == [2, 3, 4, 5, 6, 8, 9, 10, 11, 13, 14]
    messages = {error["line"]: error["msg"] for error in parsed.errors}
    assert "answer must be one of the options A-D" in messages[2]
    assert "marks 'x' is not a number" in messages[3]
    assert "unknown type 'essay'" in messages[4]
    assert "repeats line 12" in messages[13]
    assert all(error["loc"] == ["file", "line", error["line"]] for error in parsed.errors)


def test_an_empty_file_is_an_error() -> None:
    parsed = parse_guide("// nothing\n")
    assert [e["msg"] for e in parsed.errors] == ["the file holds no questions"]


def test_docx_and_pdf_text() -> None:
    document = docx.Document()
    for line in EXAMPLE.splitlines():
        document.add_paragraph(line)
    buffer = io.BytesIO()
    document.save(buffer)
    parsed = parse_guide(document_text(buffer.getvalue(), DOCX))
    assert parsed.errors == []
    assert len(parsed.questions) == 8

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=10)
    for line in EXAMPLE.splitlines():
        pdf.cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    from_pdf = parse_guide(document_text(bytes(pdf.output()), PDF))
    assert from_pdf.errors == []
    assert [q.id for q in from_pdf.questions] == ["1", "2", "2b", "3", "4", "5", "6", "7"]
    assert from_pdf.questions[4].tolerance == 0.05
