"""Where everything on a printed answer sheet is: the one layout computation
that `sheet.pdf` draws, `sheet.json` describes and the OMR reader samples.

Coordinates are PDF points on A4 with the origin at the top left. Bubbles
are given by centre and radius; fiducials, page-code cells and boxes by their
top-left corner and size. Every page carries the four corner fiducials and,
between the top two, a page code: a start cell that is always black, three
bits of the page index (0-7) and an even-parity cell, so a reader knows which
page of the sheet it is looking at."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backend.marking.guide import BUBBLE_TYPES, Question

PAGE_WIDTH = 595.28
PAGE_HEIGHT = 841.89
MARGIN = 28.0
FIDUCIAL = 22.0
CONTENT_LEFT = 54.0
CONTENT_RIGHT = PAGE_WIDTH - 54.0
CONTENT_TOP = MARGIN + FIDUCIAL + 14.0
CONTENT_BOTTOM = PAGE_HEIGHT - MARGIN - FIDUCIAL - 14.0
ROW = 18.0
BUBBLE_R = 6.0
BUBBLE_PITCH = 17.0
LABEL_WIDTH = 34.0
COLUMN_GAP = 12.0
MIN_BOX_COLUMN = 150.0
MAX_COLUMNS = 4
ID_PITCH_X = 16.0
ID_PITCH_Y = 15.0
ID_R = 5.5
CODE_CELL = 10.0
CODE_BITS = 3
MAX_PAGES = 2**CODE_BITS
BOX_ROWS = {"numeric": 2, "exact": 2, "keywords": 4}


@dataclass(frozen=True, slots=True)
class Fiducial:
    page: int
    x: float
    y: float
    size: float

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.size / 2, self.y + self.size / 2


@dataclass(frozen=True, slots=True)
class Bubble:
    page: int
    question: str
    option: str
    x: float
    y: float
    r: float


@dataclass(frozen=True, slots=True)
class IdBubble:
    page: int
    position: int
    digit: int
    x: float
    y: float
    r: float


@dataclass(frozen=True, slots=True)
class Box:
    page: int
    question: str
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class CodeCell:
    page: int
    bit: int | None  # None: the start cell; 0..2: the page-index bits; 3: parity
    x: float
    y: float
    size: float
    filled: bool


@dataclass(frozen=True, slots=True)
class Label:
    page: int
    x: float
    y: float
    text: str
    size: float = 8.0
    bold: bool = False
    grey: bool = False
    align: str = "L"
    width: float = 0.0


@dataclass(slots=True)
class SheetLayout:
    pages: int
    fiducials: list[Fiducial] = field(default_factory=list)
    bubbles: list[Bubble] = field(default_factory=list)
    id_bubbles: list[IdBubble] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    code_cells: list[CodeCell] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    lines: list[tuple[int, float, float, float, float]] = field(default_factory=list)
    width: float = PAGE_WIDTH
    height: float = PAGE_HEIGHT

    def as_json(self) -> dict[str, Any]:
        """`sheet.json`: every mark a reader or a printer needs, in points."""
        return {
            "page": {"width": self.width, "height": self.height},
            "pages": [
                {
                    "number": page,
                    "code": [
                        {"bit": c.bit, "x": c.x, "y": c.y, "size": c.size, "filled": c.filled}
                        for c in self.code_cells
                        if c.page == page
                    ],
                }
                for page in range(1, self.pages + 1)
            ],
            "fiducials": [
                {"page": f.page, "x": f.x, "y": f.y, "size": f.size} for f in self.fiducials
            ],
            "bubbles": [
                {
                    "page": b.page,
                    "question": b.question,
                    "option": b.option,
                    "x": b.x,
                    "y": b.y,
                    "r": b.r,
                }
                for b in self.bubbles
            ],
            "student_id_bubbles": [
                {
                    "page": b.page,
                    "position": b.position,
                    "digit": b.digit,
                    "x": b.x,
                    "y": b.y,
                    "r": b.r,
                }
                for b in self.id_bubbles
            ],
            "boxes": [
                {
                    "page": b.page,
                    "question": b.question,
                    "x": b.x,
                    "y": b.y,
                    "width": b.width,
                    "height": b.height,
                }
                for b in self.boxes
            ],
        }


def page_bits(page_index: int) -> list[bool]:
    """The page code's cells after the start cell: index bits, then parity."""
    bits = [bool(page_index >> (CODE_BITS - 1 - i) & 1) for i in range(CODE_BITS)]
    return [*bits, sum(bits) % 2 == 1]


def _r(value: float) -> float:
    return round(value, 2)


def _frame(layout: SheetLayout, page: int, total_pages: int) -> None:
    right = PAGE_WIDTH - MARGIN - FIDUCIAL
    bottom = PAGE_HEIGHT - MARGIN - FIDUCIAL
    for x, y in ((MARGIN, MARGIN), (right, MARGIN), (MARGIN, bottom), (right, bottom)):
        layout.fiducials.append(Fiducial(page, _r(x), _r(y), FIDUCIAL))
    cells = [True, *page_bits(page - 1)]
    width = len(cells) * CODE_CELL * 2 - CODE_CELL
    left = (PAGE_WIDTH - width) / 2
    top = MARGIN + (FIDUCIAL - CODE_CELL) / 2
    for index, filled in enumerate(cells):
        layout.code_cells.append(
            CodeCell(
                page,
                None if index == 0 else index - 1,
                _r(left + index * 2 * CODE_CELL),
                _r(top),
                CODE_CELL,
                filled,
            )
        )
    layout.labels.append(
        Label(
            page,
            PAGE_WIDTH / 2 - 60,
            PAGE_HEIGHT - MARGIN - 14,
            f"Page {page} of {total_pages}",
            size=7,
            grey=True,
            align="C",
            width=120,
        )
    )


@dataclass(slots=True)
class _Item:
    question: Question
    rows: int


def _items(questions: list[Question]) -> list[_Item]:
    return [_Item(q, 1 if q.type in BUBBLE_TYPES else BOX_ROWS.get(q.type, 2)) for q in questions]


def _column_width(questions: list[Question]) -> float:
    widest = 0.0
    for question in questions:
        if question.type in BUBBLE_TYPES:
            count = len(question.choices)
            widest = max(widest, LABEL_WIDTH + count * BUBBLE_PITCH + COLUMN_GAP)
        else:
            widest = max(widest, MIN_BOX_COLUMN)
    return widest


def _header(
    layout: SheetLayout, title: str, subject: str | None, digits: int, student_id: str | None
) -> float:
    """Page one's header (title, name line, student-number grid); its bottom."""
    grid_width = digits * ID_PITCH_X
    grid_left = CONTENT_RIGHT - grid_width
    top = CONTENT_TOP + 16
    layout.labels.append(Label(1, grid_left, CONTENT_TOP, "Student number", size=8, bold=True))
    for position in range(digits):
        cx = grid_left + position * ID_PITCH_X + ID_PITCH_X / 2
        for digit in range(10):
            cy = top + 16 + digit * ID_PITCH_Y
            layout.id_bubbles.append(IdBubble(1, position, digit, _r(cx), _r(cy), ID_R))
        layout.lines.append((1, cx - 6, top + 8, cx + 6, top + 8))
    text_width = grid_left - CONTENT_LEFT - 16
    layout.labels.append(
        Label(1, CONTENT_LEFT, CONTENT_TOP, title[:90], size=14, bold=True, width=text_width)
    )
    y = CONTENT_TOP + 22
    if subject:
        layout.labels.append(Label(1, CONTENT_LEFT, y, subject[:90], size=10, width=text_width))
        y += 16
    layout.labels.append(Label(1, CONTENT_LEFT, y + 18, "Name:", size=10))
    layout.lines.append((1, CONTENT_LEFT + 36, y + 30, CONTENT_LEFT + text_width, y + 30))
    if student_id:
        layout.labels.append(
            Label(1, CONTENT_LEFT, y + 40, f"Student number: {student_id}", size=10, bold=True)
        )
    layout.labels.append(
        Label(
            1,
            CONTENT_LEFT,
            y + 64,
            "Fill one bubble per answer completely with a dark pen or pencil.",
            size=8,
            grey=True,
            width=text_width,
        )
    )
    return top + 16 + 10 * ID_PITCH_Y + 8


def compute_layout(
    questions: list[Question],
    *,
    title: str,
    subject: str | None = None,
    student_id_digits: int = 8,
    student_id: str | None = None,
) -> SheetLayout:
    """The sheet for a guide: columns as narrow as the widest row allows (at
    most four), filled top to bottom, then left to right, then a new page."""
    items = _items(questions)
    column_width = _column_width(questions) or MIN_BOX_COLUMN
    usable = CONTENT_RIGHT - CONTENT_LEFT
    columns = max(1, min(MAX_COLUMNS, int(usable // column_width)))
    column_width = usable / columns
    placements: list[tuple[int, int, float, _Item]] = []  # page, column, y, item
    header_layout = SheetLayout(pages=1)
    first_top = _header(header_layout, title, subject, student_id_digits, student_id)
    page, column, y = 1, 0, first_top
    for item in items:
        height = item.rows * ROW
        while y + height > CONTENT_BOTTOM:
            column += 1
            if column >= columns:
                page, column = page + 1, 0
            y = first_top if page == 1 else CONTENT_TOP + 18
            if page > MAX_PAGES:
                raise ValueError(f"the questions need more than {MAX_PAGES} pages")
        placements.append((page, column, y, item))
        y += height
    pages = max([1, *(placement[0] for placement in placements)])
    layout = SheetLayout(pages=pages)
    for number in range(1, pages + 1):
        _frame(layout, number, pages)
        if number > 1:
            layout.labels.append(
                Label(number, CONTENT_LEFT, CONTENT_TOP, title[:90], size=10, bold=True)
            )
    layout.labels.extend(header_layout.labels)
    layout.lines.extend(header_layout.lines)
    layout.id_bubbles.extend(header_layout.id_bubbles)
    for page, column, top, item in placements:
        _place(layout, item, page, CONTENT_LEFT + column * column_width, top, column_width)
    return layout


def _place(
    layout: SheetLayout, item: _Item, page: int, left: float, top: float, width: float
) -> None:
    question = item.question
    cy = top + ROW / 2
    layout.labels.append(
        Label(
            page, left, cy - 5, question.id[:8], size=9, bold=True, align="R", width=LABEL_WIDTH - 8
        )
    )
    if question.type in BUBBLE_TYPES:
        options = question.choices
        for index, option in enumerate(options):
            cx = left + LABEL_WIDTH + BUBBLE_R + index * BUBBLE_PITCH
            layout.bubbles.append(Bubble(page, question.id, option, _r(cx), _r(cy), BUBBLE_R))
        return
    height = item.rows * ROW - 6
    box_left = left + LABEL_WIDTH
    layout.boxes.append(
        Box(
            page,
            question.id,
            _r(box_left),
            _r(top + 2),
            _r(width - LABEL_WIDTH - COLUMN_GAP),
            _r(height),
        )
    )
