"""Synthetic filled answer sheets with ground truth, for the marking tests and
the marking benchmark: render `sheet.pdf` (pypdfium2), fill bubbles as a pen
would (slightly off-centre, a little small or large), then degrade the image
as a scanner or a phone does (rotation, scale, perspective, uneven light,
noise, JPEG)."""

from __future__ import annotations

import io
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pypdfium2 as pdfium
from PIL import Image, ImageDraw

from backend.marking.guide import Question
from backend.marking.omr import homography
from backend.marking.sheet_layout import SheetLayout

DARK = 0.85  # a pencil fill: darker than 0.45, lighter than printed black
FAINT = 0.3


@dataclass(slots=True)
class Filled:
    """What was drawn on one sheet, and what a reader should report."""

    marks: dict[str, dict[str, float]] = field(default_factory=dict)  # question -> option -> ink
    student_id: str | None = None

    def expected(self, question: Question) -> tuple[object, set[str]]:
        """(value, flags) a correct reader reports for this question."""
        marks = self.marks.get(question.id, {})
        dark = sorted(option for option, ink in marks.items() if ink >= 0.6)
        faint = sorted(option for option, ink in marks.items() if ink < 0.6)
        flags: set[str] = set()
        if faint:
            flags.add("ambiguous")
        if question.type == "multi":
            if not dark and not faint:
                flags.add("blank")
            return dark, flags
        if len(dark) > 1:
            flags.add("multiple_marks")
            return None, flags
        chosen = dark[0] if dark else (faint[0] if len(faint) == 1 else None)
        if chosen is None and not faint:
            flags.add("blank")
        if question.type == "true_false" and chosen is not None:
            return chosen == "T", flags
        return chosen, flags


@dataclass(frozen=True, slots=True)
class _Mark:
    page: int
    x: float
    y: float
    r: float
    question: str = ""
    option: str = ""
    position: int = 0
    digit: int = 0


@dataclass(slots=True)
class JsonLayout:
    """The bubbles of a `sheet.json` answer, shaped like a `SheetLayout` for `fill`."""

    bubbles: list[_Mark]
    id_bubbles: list[_Mark]

    @classmethod
    def of(cls, sheet: Mapping[str, Any]) -> JsonLayout:
        return cls(
            [
                _Mark(b["page"], b["x"], b["y"], b["r"], question=b["question"], option=b["option"])
                for b in sheet["bubbles"]
            ],
            [
                _Mark(b["page"], b["x"], b["y"], b["r"], position=b["position"], digit=b["digit"])
                for b in sheet["student_id_bubbles"]
            ],
        )


def render_pages(pdf: bytes, dpi: int = 200) -> list[Image.Image]:
    document = pdfium.PdfDocument(pdf)
    try:
        return [
            document[index].render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
            for index in range(len(document))
        ]
    finally:
        document.close()


def fill(
    pages: Sequence[Image.Image],
    layout: SheetLayout | JsonLayout,
    filled: Filled,
    dpi: int = 200,
    rng: random.Random | None = None,
) -> list[Image.Image]:
    """Copies of the rendered pages with the bubbles of `filled` inked in."""
    rng = rng or random.Random(0)
    scale = dpi / 72
    out = [page.copy() for page in pages]
    draws = [ImageDraw.Draw(page) for page in out]
    for bubble in layout.bubbles:
        ink = filled.marks.get(bubble.question, {}).get(bubble.option)
        if ink is not None:
            _blot(draws[bubble.page - 1], bubble.x, bubble.y, bubble.r, ink, scale, rng)
    if filled.student_id:
        for position, digit in enumerate(filled.student_id):
            for id_bubble in layout.id_bubbles:
                if id_bubble.position == position and id_bubble.digit == int(digit):
                    _blot(
                        draws[id_bubble.page - 1],
                        id_bubble.x,
                        id_bubble.y,
                        id_bubble.r,
                        DARK,
                        scale,
                        rng,
                    )
    return out


def _blot(
    draw: ImageDraw.ImageDraw,
    x: float,
    y: float,
    r: float,
    ink: float,
    scale: float,
    rng: random.Random,
) -> None:
    radius = r * rng.uniform(0.8, 1.05) * scale
    cx = (x + rng.uniform(-0.12, 0.12) * r) * scale
    cy = (y + rng.uniform(-0.12, 0.12) * r) * scale
    level = round(255 * (1 - ink * rng.uniform(0.93, 1.0)))
    draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=level)


@dataclass(frozen=True, slots=True)
class Degradation:
    rotation: float = 0.0  # degrees
    scale: float = 1.0
    perspective: float = 0.0  # keystone: share of the width the top edge shrinks
    gradient: float = 0.0  # 0..1: how much darker the dim side is
    noise: float = 0.0  # sd of Gaussian noise, 0..1 of full scale
    jpeg_quality: int | None = None

    @classmethod
    def random(cls, rng: random.Random) -> Degradation:
        return cls(
            rotation=rng.uniform(-5, 5),
            scale=rng.uniform(0.9, 1.1),
            perspective=rng.uniform(0, 0.03),
            gradient=rng.uniform(0.15, 0.4),
            noise=rng.uniform(0.02, 0.05),
            jpeg_quality=rng.randint(55, 85),
        )


def degrade(image: Image.Image, how: Degradation, seed: int = 0) -> Image.Image:
    out = image.convert("L")
    if how.scale != 1.0:
        out = out.resize(
            (round(out.width * how.scale), round(out.height * how.scale)),
            Image.Resampling.BILINEAR,
        )
    if how.perspective:
        width, height = out.size
        shrink = how.perspective * width
        # A projective keystone, as a camera tilted forward sees the page: the
        # output's corners come from these source points (top edge widened).
        corners = [(0, 0), (width, 0), (0, height), (width, height)]
        sources = [(-shrink, 0), (width + shrink, 0), (0, height), (width, height)]
        matrix = homography(corners, sources)
        coefficients = tuple(float(value) for value in matrix.ravel()[:8])
        out = out.transform(
            out.size,
            Image.Transform.PERSPECTIVE,
            coefficients,
            Image.Resampling.BILINEAR,
            fillcolor=240,
        )
    if how.rotation:
        out = out.rotate(how.rotation, Image.Resampling.BILINEAR, expand=True, fillcolor=240)
    pixels = np.asarray(out, dtype=np.float32) / 255.0
    if how.gradient:
        height, width = pixels.shape
        ramp = np.linspace(1.0 - how.gradient, 1.0, width, dtype=np.float32)
        vertical = np.linspace(1.0, 1.0 - how.gradient / 2, height, dtype=np.float32)
        pixels = pixels * ramp[None, :] * vertical[:, None]
    if how.noise:
        noise = np.random.default_rng(seed).normal(0, how.noise, pixels.shape)
        pixels = pixels + noise.astype(np.float32)
    out = Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8), mode="L")
    if how.jpeg_quality:
        buffer = io.BytesIO()
        out.save(buffer, format="JPEG", quality=how.jpeg_quality)
        out = Image.open(io.BytesIO(buffer.getvalue()))
        out.load()
    return out


def random_marks(
    questions: Sequence[Question], rng: random.Random, *, special: bool = True
) -> dict[str, dict[str, float]]:
    """A plausible student's marks: mostly one answer per question, and (with
    `special`) a double mark, a blank and a faint mark somewhere."""
    marks: dict[str, dict[str, float]] = {}
    bubble_questions = [q for q in questions if q.type in ("mcq", "multi", "true_false")]
    for question in bubble_questions:
        options = question.choices
        if question.type == "multi":
            chosen = rng.sample(options, rng.randint(1, min(3, len(options))))
        else:
            chosen = [rng.choice(options)]
        marks[question.id] = dict.fromkeys(chosen, DARK)
    if special and len(bubble_questions) >= 4:
        picks = rng.sample([q for q in bubble_questions if q.type != "multi"], 3)
        double, blank, faint = picks
        options = double.choices
        marks[double.id] = dict.fromkeys(rng.sample(options, 2), DARK)
        marks[blank.id] = {}
        options = faint.choices
        marks[faint.id] = {rng.choice(options): FAINT}
    return marks


def to_bytes(image: Image.Image, kind: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=kind, **options)
    return buffer.getvalue()


def bubble_accuracy(
    questions: Sequence[Question],
    filled: Filled,
    fills: Mapping[str, Mapping[str, float]],
    filled_threshold: float,
    empty_threshold: float,
) -> tuple[int, int]:
    """(right, total) over every bubble: a dark mark read as filled, an
    untouched bubble read as empty, a faint mark read as neither."""
    right = total = 0
    for question in questions:
        drawn = filled.marks.get(question.id, {})
        for option, level in fills.get(question.id, {}).items():
            ink = drawn.get(option)
            total += 1
            if ink is None:
                right += level < empty_threshold
            elif ink >= 0.6:
                right += level >= filled_threshold
            else:
                right += empty_threshold <= level < filled_threshold
    return right, total


def mixed_guide(count: int = 24, seed: int = 0) -> list[Question]:
    """`count` bubble questions (mcq of 4 and 5 options, multi, true_false),
    then one numeric and one keywords question (written boxes)."""
    rng = random.Random(seed)
    items: list[dict[str, Any]] = []
    for index in range(1, count + 1):
        kind = rng.choice(["mcq", "mcq", "mcq", "multi", "true_false"])
        base: dict[str, Any] = {"id": str(index), "type": kind, "max_marks": 1}
        if kind == "mcq":
            options = rng.choice([4, 5])
            items.append({**base, "options": options, "answer": "ABCDE"[rng.randrange(options)]})
        elif kind == "multi":
            items.append(
                {**base, "max_marks": 2, "options": 5, "answer": ["A", "C"], "partial": True}
            )
        else:
            items.append({**base, "answer": rng.random() < 0.5})
    items.append({"id": "N1", "type": "numeric", "max_marks": 2, "answer": 9.81, "tolerance": 0.05})
    items.append(
        {
            "id": "K1",
            "type": "keywords",
            "max_marks": 2,
            "keywords": [{"terms": ["light"], "marks": 2}],
        }
    )
    return [Question.model_validate(item) for item in items]
