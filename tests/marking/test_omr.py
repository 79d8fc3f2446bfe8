"""The OMR reader on generated sheets with ground truth: rendered from the
real sheet.pdf, filled as a pen would, then degraded as a scan or a photo.
Clean sheets must be read without a single wrong bubble; on degraded ones the
bubble accuracy is printed (run with -s) and held to a floor."""

from __future__ import annotations

import random
import time

import pytest
from PIL import Image, ImageFilter

from backend.marking import omr
from backend.marking.guide import Question
from backend.marking.sheet_layout import SheetLayout, compute_layout
from backend.marking.sheet_pdf import render_sheet
from bench import marking_synth as synth
from tests.marking.helpers import mixed_guide, question

CORPUS = 20
DEGRADED_FLOOR = 0.995  # share of bubbles read right on degraded sheets


@pytest.fixture(scope="module")
def sheet() -> tuple[list[Question], SheetLayout, list[Image.Image]]:
    questions = mixed_guide(40, seed=3)
    layout = compute_layout(questions, title="Corpus", student_id_digits=8)
    return questions, layout, synth.render_pages(render_sheet(layout, title="Corpus"))


def check(questions: list[Question], filled: synth.Filled, reading: omr.SheetReading) -> list[str]:
    wrong = []
    for q in questions:
        response = reading.responses[q.id]
        if q.type in ("numeric", "keywords"):
            if response.flags != ["blank"]:
                wrong.append(f"box {q.id}: {response}")
            continue
        value, flags = filled.expected(q)
        if (response.value, set(response.flags)) != (value, flags):
            wrong.append(f"{q.id}: read {response.value} {response.flags}, drew {value} {flags}")
    if reading.student_id != filled.student_id:
        wrong.append(f"student id {reading.student_id} != {filled.student_id}")
    return wrong


def test_clean_corpus_every_bubble_right(sheet) -> None:  # type: ignore[no-untyped-def]
    questions, layout, pages = sheet
    rng = random.Random(7)
    right = total = 0
    started = time.perf_counter()
    for index in range(CORPUS):
        filled = synth.Filled(synth.random_marks(questions, rng), f"{rng.randrange(10**8):08d}")
        image = synth.fill(pages, layout, filled, rng=rng)[0]
        reading = omr.read_sheet([omr.image_array(image)], layout, questions)
        assert check(questions, filled, reading) == [], f"sheet {index}"
        good, count = synth.bubble_accuracy(questions, filled, reading.fills, omr.FILLED, omr.EMPTY)
        right, total = right + good, total + count
    elapsed = time.perf_counter() - started
    print(
        f"\nOMR clean: {right}/{total} bubbles right over {CORPUS} sheets "
        f"({CORPUS / elapsed:.1f} sheets/s incl. filling)"
    )
    assert right == total


def test_degraded_corpus_accuracy(sheet) -> None:  # type: ignore[no-untyped-def]
    questions, layout, pages = sheet
    rng = random.Random(11)
    right = total = sheets_exact = ids = 0
    for index in range(CORPUS):
        filled = synth.Filled(synth.random_marks(questions, rng), f"{rng.randrange(10**8):08d}")
        image = synth.fill(pages, layout, filled, rng=rng)[0]
        how = synth.Degradation.random(rng)
        degraded = synth.degrade(image, how, seed=index)
        reading = omr.read_sheet([omr.image_array(degraded)], layout, questions)
        good, count = synth.bubble_accuracy(questions, filled, reading.fills, omr.FILLED, omr.EMPTY)
        right, total = right + good, total + count
        sheets_exact += not check(questions, filled, reading)
        ids += reading.student_id == filled.student_id
    accuracy = right / total
    print(
        f"\nOMR degraded (±5°, 90-110 %, keystone ≤3 %, light gradient 15-40 %, noise, JPEG "
        f"55-85): bubbles {right}/{total} = {accuracy:.4%}; sheets read exactly "
        f"{sheets_exact}/{CORPUS}; student numbers {ids}/{CORPUS}"
    )
    assert accuracy >= DEGRADED_FLOOR
    assert ids >= CORPUS - 1


def test_double_blank_and_faint_marks_and_extremes(sheet) -> None:  # type: ignore[no-untyped-def]
    questions, layout, pages = sheet
    mcq = [q for q in questions if q.type == "mcq"]
    marks = synth.random_marks(questions, random.Random(5), special=False)
    marks[mcq[0].id] = {"A": synth.DARK, "B": synth.DARK}
    marks[mcq[1].id] = {}
    marks[mcq[2].id] = {"C": synth.FAINT}
    filled = synth.Filled(marks, "00420077")
    image = synth.fill(pages, layout, filled, rng=random.Random(1))[0]
    for how in (
        synth.Degradation(rotation=5, scale=0.9, gradient=0.4, noise=0.05, jpeg_quality=55),
        synth.Degradation(
            rotation=-5, scale=1.1, perspective=0.03, gradient=0.4, noise=0.04, jpeg_quality=60
        ),
    ):
        reading = omr.read_sheet([omr.image_array(synth.degrade(image, how))], layout, questions)
        assert check(questions, filled, reading) == []
        first, second, third = (reading.responses[q.id] for q in mcq[:3])
        assert (first.value, first.raw, first.flags) == (None, ["A", "B"], ["multiple_marks"])
        assert (second.value, second.flags) == (None, ["blank"])
        assert (third.value, third.flags) == ("C", ["ambiguous"])
        assert third.confidence < 0.8
        assert reading.student_id == "00420077"


def test_upside_down_pdf_input_and_unreadable_images(sheet) -> None:  # type: ignore[no-untyped-def]
    questions, layout, pages = sheet
    filled = synth.Filled(synth.random_marks(questions, random.Random(2)), "12345678")
    image = synth.fill(pages, layout, filled, rng=random.Random(2))[0]
    turned = image.rotate(180)
    reading = omr.read_sheet([omr.image_array(turned)], layout, questions)
    assert check(questions, filled, reading) == []
    pdf = synth.to_bytes(image.convert("RGB"), "PDF", resolution=200)
    (grey,) = omr.pages_from_bytes(pdf)
    assert check(questions, filled, omr.read_sheet([grey], layout, questions)) == []
    blank = Image.new("L", (1240, 1754), 255)
    with pytest.raises(omr.SheetUnreadable):
        omr.read_sheet([omr.image_array(blank)], layout, questions)


def test_two_page_sheet_in_any_order_and_a_missing_page() -> None:
    questions = [
        question(id=str(i), type="mcq", max_marks=1, options=10, answer="C") for i in range(1, 101)
    ]
    layout = compute_layout(questions, title="Long", student_id_digits=4)
    assert layout.pages == 2
    pages = synth.render_pages(render_sheet(layout, title="Long"))
    filled = synth.Filled(synth.random_marks(questions, random.Random(4)), "2026")
    images = synth.fill(pages, layout, filled, rng=random.Random(4))
    degraded = [
        synth.degrade(im, synth.Degradation(rotation=2, noise=0.03, jpeg_quality=75))
        for im in images
    ]
    reading = omr.read_sheet([omr.image_array(im) for im in reversed(degraded)], layout, questions)
    assert reading.pages == 2
    assert check(questions, filled, reading) == []
    with pytest.raises(omr.SheetUnreadable, match="page 2 of the sheet is missing"):
        omr.read_sheet([omr.image_array(degraded[0])], layout, questions)


def test_a_large_phone_photo_is_decoded_at_a_reduced_scale(sheet) -> None:  # type: ignore[no-untyped-def]
    questions, layout, pages = sheet
    filled = synth.Filled(synth.random_marks(questions, random.Random(9)), "87654321")
    image = synth.fill(pages, layout, filled, rng=random.Random(9))[0]
    photo = synth.degrade(
        image, synth.Degradation(rotation=3, scale=2.5, gradient=0.3, noise=0.03, jpeg_quality=80)
    )
    assert photo.width > 4000
    (grey,) = omr.pages_from_bytes(synth.to_bytes(photo, "JPEG", quality=85))
    assert grey.shape[1] <= omr.MAX_WORKING_WIDTH
    assert check(questions, filled, omr.read_sheet([grey], layout, questions)) == []


def test_a_photo_on_a_dark_desk_and_a_blurred_harsh_scan(sheet) -> None:  # type: ignore[no-untyped-def]
    questions, layout, pages = sheet
    filled = synth.Filled(synth.random_marks(questions, random.Random(12)), "31415926")
    image = synth.fill(pages, layout, filled, rng=random.Random(12))[0]
    desk = Image.new("L", (image.width + 300, image.height + 300), 50)
    desk.paste(image, (120, 190))
    photo = synth.degrade(
        desk, synth.Degradation(rotation=-4, scale=0.8, gradient=0.3, noise=0.04, jpeg_quality=70)
    )
    harsh = synth.degrade(
        image.filter(ImageFilter.GaussianBlur(1.2)),
        synth.Degradation(
            rotation=5, scale=0.9, perspective=0.04, gradient=0.5, noise=0.08, jpeg_quality=40
        ),
    )
    for degraded in (photo, harsh):
        reading = omr.read_sheet([omr.image_array(degraded)], layout, questions)
        assert check(questions, filled, reading) == []
