"""The printed sheet: one layout for the PDF and the JSON, scaling to 100
questions over columns and pages, each page with fiducials and its code."""

from __future__ import annotations

import numpy as np
import pypdfium2 as pdfium
import pytest

from backend.marking.sheet_layout import (
    CONTENT_BOTTOM,
    CONTENT_LEFT,
    CONTENT_RIGHT,
    PAGE_HEIGHT,
    PAGE_WIDTH,
    compute_layout,
)
from backend.marking.sheet_pdf import render_sheet
from tests.marking.helpers import mixed_guide, question

DPI = 100


def render(pdf: bytes) -> list[np.ndarray]:
    document = pdfium.PdfDocument(pdf)
    pages = [
        document[i].render(scale=DPI / 72, grayscale=True).to_numpy() for i in range(len(document))
    ]
    return [page[..., 0] if page.ndim == 3 else page for page in pages]


def pixel(image: np.ndarray, x: float, y: float) -> int:
    return int(image[round(y * DPI / 72), round(x * DPI / 72)])


def test_the_pdf_draws_what_the_json_says() -> None:
    questions = mixed_guide(30)
    layout = compute_layout(questions, title="Quiz", student_id_digits=6, student_id="123456")
    sheet = layout.as_json()
    pdf = render_sheet(layout, title="Quiz")
    assert pdf.startswith(b"%PDF-")
    (page,) = render(pdf)
    assert sheet["page"] == {"width": PAGE_WIDTH, "height": PAGE_HEIGHT}
    assert len(sheet["fiducials"]) == 4
    for fiducial in sheet["fiducials"]:  # solid squares: dark at the centre and near corners
        for fx, fy in ((0.5, 0.5), (0.15, 0.15), (0.85, 0.85)):
            x, y = fiducial["x"] + fx * fiducial["size"], fiducial["y"] + fy * fiducial["size"]
            assert pixel(page, x, y) < 60
    for bubble in sheet["bubbles"] + sheet["student_id_bubbles"]:
        # the outline is drawn at radius r: dark on it, light just outside
        assert (
            min(
                pixel(page, bubble["x"] + dx * bubble["r"], bubble["y"] + dy * bubble["r"])
                for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))
            )
            < 200
        )
        assert pixel(page, bubble["x"] + 1.6 * bubble["r"], bubble["y"] - 1.3 * bubble["r"]) > 230
    assert len(sheet["student_id_bubbles"]) == 60
    options = {(b["question"], b["option"]) for b in sheet["bubbles"]}
    for q in questions:
        for letter in q.choices:
            assert (q.id, letter) in options
    boxes = {box["question"] for box in sheet["boxes"]}
    assert boxes == {"N1", "K1"}


def test_a_hundred_questions_take_columns_then_a_second_page() -> None:
    four = [
        question(id=str(i), type="mcq", max_marks=1, options=4, answer="A") for i in range(1, 101)
    ]
    layout = compute_layout(four, title="Hundred")
    assert layout.pages == 1
    assert len({b.x for b in layout.bubbles if b.option == "A"}) >= 3  # columns

    ten = [
        question(id=str(i), type="mcq", max_marks=1, options=10, answer="J") for i in range(1, 101)
    ]
    layout = compute_layout(ten, title="Hundred", student_id_digits=12)
    assert layout.pages == 2
    sheet = layout.as_json()
    assert [f["page"] for f in sheet["fiducials"]] == [1] * 4 + [2] * 4
    assert [p["number"] for p in sheet["pages"]] == [1, 2]
    # page codes: start cell, three bits of the index, parity
    assert [c["filled"] for c in sheet["pages"][0]["code"]] == [True, False, False, False, False]
    assert [c["filled"] for c in sheet["pages"][1]["code"]] == [True, False, False, True, True]
    for bubble in sheet["bubbles"]:
        assert bubble["x"] - bubble["r"] >= CONTENT_LEFT
        assert bubble["x"] + bubble["r"] <= CONTENT_RIGHT
        assert bubble["y"] + bubble["r"] <= CONTENT_BOTTOM
    rows = {b["question"]: (b["page"], b["y"]) for b in sheet["bubbles"]}
    assert len(set(rows.values())) < 100  # rows side by side in columns
    for bubble in sheet["bubbles"]:  # one row per question
        assert rows[bubble["question"]] == (bubble["page"], bubble["y"])
    for page in (1, 2):  # no two bubbles overlap
        centres = np.array([(b["x"], b["y"]) for b in sheet["bubbles"] if b["page"] == page])
        gaps = np.hypot(*(centres[:, None, :] - centres[None, :, :]).transpose(2, 0, 1))
        np.fill_diagonal(gaps, np.inf)
        assert gaps.min() >= 2 * bubble["r"]
    pages = render(render_sheet(layout, title="Hundred"))
    assert len(pages) == 2
    for fiducial in sheet["fiducials"]:
        image = pages[fiducial["page"] - 1]
        centre = (fiducial["x"] + fiducial["size"] / 2, fiducial["y"] + fiducial["size"] / 2)
        assert pixel(image, *centre) < 60


def test_too_many_rows_are_refused() -> None:
    many = [
        question(id=f"k{i}", type="keywords", max_marks=1, keywords=[{"terms": ["x"], "marks": 1}])
        for i in range(400)
    ]
    with pytest.raises(ValueError, match="more than 8 pages"):
        compute_layout(many, title="Essay")
