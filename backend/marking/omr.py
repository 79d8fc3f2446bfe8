"""Reading a filled answer sheet from a scan or a photo (numpy only).

1. Light: the paper's brightness is estimated per region (the brightest
   pixels of coarse blocks, spread to their neighbours, smoothed), and every
   pixel becomes a darkness 0..1 relative to its local paper, so a brightness
   gradient across a photo does not read as ink.
2. Fiducials: in each quadrant the position where a square of the expected
   size is darkest inside and lightest around it (box sums over an integral
   image, on a downsampled copy), refined to the centroid of its ink.
3. Geometry: the homography from the four fiducial centres on the page to
   those in the image corrects rotation, scale and perspective. The page code
   between the top fiducials says which page this is; a sheet upside down is
   recognised by it and turned.
4. Bubbles: each bubble's mean darkness over its inner disc, placed on the
   sheet's own scale: 0 is the typical empty bubble of this image, 1 the
   printed ink of the fiducials. At or above `FILLED` a bubble is marked,
   below `EMPTY` it is empty, between it is faint (ambiguous).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pypdfium2 as pdfium
from numpy.typing import NDArray
from PIL import Image, ImageOps

from backend.marking.guide import Question
from backend.marking.scoring import AMBIGUOUS, BLANK, MULTIPLE_MARKS, Response
from backend.marking.sheet_layout import CodeCell, SheetLayout, page_bits

Array = NDArray[np.float32]
Grey = NDArray[np.uint8]  # a page image: 0 black .. 255 white

RENDER_DPI = 200
MAX_PIXELS = 80_000_000  # a 48-megapixel phone photo passes; a decompression bomb does not
MAX_WORKING_WIDTH = 2000  # px across the page: ~240 dpi on A4, plenty for 12 pt bubbles
FILLED = 0.45
EMPTY = 0.2
BOX_INK = 0.004  # share of a box's inner pixels that are ink before it counts as written
_MIDDLE = (FILLED + EMPTY) / 2
_HALF = (FILLED - EMPTY) / 2


class SheetUnreadable(Exception):
    """The image is not a readable page of this sheet (no fiducials, a page
    of another layout, a missing page)."""


# ---------------------------------------------------------------- input pages


def page_count(data: bytes) -> int:
    """Pages of a PDF, or frames of an image file."""
    if data.startswith(b"%PDF-"):
        document = pdfium.PdfDocument(data)
        try:
            return len(document)
        finally:
            document.close()
    with Image.open(io.BytesIO(data)) as image:
        return int(getattr(image, "n_frames", 1))


def pages_from_bytes(
    data: bytes, *, dpi: int = RENDER_DPI, first: int = 0, count: int | None = None
) -> list[Grey]:
    """Grey pages of a PDF (rendered) or an image file; `first` and `count`
    choose a run of pages (a sheet cut from a longer scan)."""
    if data.startswith(b"%PDF-"):
        return pdf_pages(data, dpi=dpi, first=first, count=count)
    return image_pages(data, first=first, count=count)


def pdf_pages(
    data: bytes, *, dpi: int = RENDER_DPI, first: int = 0, count: int | None = None
) -> list[Grey]:
    document = pdfium.PdfDocument(data)
    try:
        pages = []
        last = len(document) if count is None else min(len(document), first + count)
        for index in range(first, last):
            page = document[index]
            scanned = _scanned_jpeg(page, dpi)
            if scanned is not None:
                pages.append(scanned)
            else:
                # An odd page size (a poster) is rendered no wider than the working width.
                scale = min(dpi / 72, MAX_WORKING_WIDTH * 1.5 / max(page.get_width(), 1.0))
                bitmap = page.render(scale=scale, grayscale=True)
                pages.append(_grey(bitmap.to_numpy()))
            page.close()
        return pages
    finally:
        document.close()


def _scanned_jpeg(page: pdfium.PdfPage, dpi: int) -> Grey | None:
    """A scanner's page: one upright JPEG covering the page. Its pixels are
    decoded directly (at a reduced JPEG scale when finer than `dpi`), three
    times faster than rendering the page; anything else is rendered."""
    if page.get_rotation():
        return None
    objects = list(page.get_objects(max_depth=1))
    if len(objects) != 1 or not isinstance(objects[0], pdfium.PdfImage):
        return None
    image = objects[0]
    if image.get_filters() != ["DCTDecode"]:
        return None
    a, b, c, d, _, _ = image.get_matrix().get()
    width, height = page.get_size()
    if b or c or a < width * 0.98 or d < height * 0.98:
        return None
    buffer = io.BytesIO()
    image.extract(buffer)
    with Image.open(io.BytesIO(buffer.getvalue())) as decoded:
        target = (round(width * dpi / 72), round(height * dpi / 72))
        decoded.draft("L", target)
        return image_array(decoded)


def image_pages(data: bytes, *, first: int = 0, count: int | None = None) -> list[Grey]:
    with Image.open(io.BytesIO(data)) as image:
        if image.width * image.height > MAX_PIXELS:
            raise SheetUnreadable(f"the image has more than {MAX_PIXELS} pixels")
        if image.format == "JPEG" and image.width > 2 * MAX_WORKING_WIDTH:
            # Decode a large photo at a reduced DCT scale: faster, and as sharp as needed.
            image.draft("L", (MAX_WORKING_WIDTH, image.height * MAX_WORKING_WIDTH // image.width))
        frames = []
        total = int(getattr(image, "n_frames", 1))
        last = total if count is None else min(total, first + count)
        for index in range(first, last):
            image.seek(index)
            frame = ImageOps.exif_transpose(image) or image
            frames.append(image_array(frame))
        return frames


def image_array(image: Image.Image) -> Grey:
    grey = image.convert("L")
    if grey.width > MAX_WORKING_WIDTH:
        height = round(grey.height * MAX_WORKING_WIDTH / grey.width)
        grey = grey.resize((MAX_WORKING_WIDTH, height), Image.Resampling.BOX)
    return _grey(np.asarray(grey))


def _grey(pixels: NDArray[np.generic]) -> Grey:
    array = np.asarray(pixels)
    if array.ndim == 3:
        array = array[..., :3].mean(axis=2)
    return np.ascontiguousarray(array, dtype=np.uint8)


# ---------------------------------------------------------------- light


def _shrink(grey: Grey, step: int) -> Array:
    """Brightness 0..1: means of step x step blocks (a partial last block dropped)."""
    height, width = grey.shape[0] // step, grey.shape[1] // step
    image = Image.fromarray(grey).resize(
        (width, height), Image.Resampling.BOX, box=(0, 0, width * step, height * step)
    )
    return np.asarray(image, dtype=np.float32) / np.float32(255)


class Light:
    """The paper's brightness across the image, on a coarse grid: the
    brightest (noise-averaged) pixels of each block larger than any printed
    solid area, spread to the neighbouring blocks, read bilinearly. Darkness
    is computed only where it is needed."""

    STEP = 4

    def __init__(self, grey: Grey, block: int) -> None:
        self.grey = grey
        small = _shrink(grey, self.STEP)
        tile = max(2, block // self.STEP)
        rows, cols = math.ceil(small.shape[0] / tile), math.ceil(small.shape[1] / tile)
        padded = np.pad(
            small, ((0, rows * tile - small.shape[0]), (0, cols * tile - small.shape[1])), "edge"
        )
        paper = padded.reshape(rows, tile, cols, tile).max(axis=(1, 3))
        spread = np.pad(paper, 1, mode="edge")
        self.paper = np.maximum(
            np.max(
                [spread[dy : dy + rows, dx : dx + cols] for dy in range(3) for dx in range(3)],
                axis=0,
            ),
            0.05,
        ).astype(np.float32)
        self.block = tile * self.STEP

    def paper_at(self, xs: NDArray[np.float64], ys: NDArray[np.float64]) -> NDArray[np.float32]:
        rows, cols = self.paper.shape
        gx = np.clip(xs / self.block - 0.5, 0, cols - 1)
        gy = np.clip(ys / self.block - 0.5, 0, rows - 1)
        x0, y0 = np.floor(gx).astype(np.intp), np.floor(gy).astype(np.intp)
        x1, y1 = np.minimum(x0 + 1, cols - 1), np.minimum(y0 + 1, rows - 1)
        fx, fy = (gx - x0).astype(np.float32), (gy - y0).astype(np.float32)
        top = self.paper[y0, x0] * (1 - fx) + self.paper[y0, x1] * fx
        bottom = self.paper[y1, x0] * (1 - fx) + self.paper[y1, x1] * fx
        result: NDArray[np.float32] = top * (1 - fy) + bottom * fy
        return result

    def darkness_at(self, xs: NDArray[np.float64], ys: NDArray[np.float64]) -> NDArray[np.float32]:
        """Darkness (0 paper .. 1 black) at image points (nearest pixel)."""
        height, width = self.grey.shape
        px = np.clip(np.rint(xs).astype(np.intp), 0, width - 1)
        py = np.clip(np.rint(ys).astype(np.intp), 0, height - 1)
        values = 1.0 - self.grey[py, px] / (255 * self.paper_at(xs, ys))
        clipped: NDArray[np.float32] = np.clip(values, 0.0, 1.0).astype(np.float32)
        return clipped

    def window(self, left: int, top: int, right: int, bottom: int) -> Array:
        """Darkness of every pixel of a window."""
        ys, xs = np.mgrid[top:bottom, left:right]
        return self.darkness_at(xs.astype(np.float64), ys.astype(np.float64))

    def shrunk(self, step: int) -> Array:
        """Darkness of the image shrunk by `step` (block means)."""
        small = _shrink(self.grey, step)
        ys, xs = np.mgrid[0 : small.shape[0], 0 : small.shape[1]]
        paper = self.paper_at((xs + 0.5) * step, (ys + 0.5) * step)
        clipped: Array = np.clip(1.0 - small / paper, 0.0, 1.0).astype(np.float32)
        return clipped


# ---------------------------------------------------------------- fiducials


def _box_sums(integral: NDArray[np.float64], size: int) -> NDArray[np.float64]:
    """Sum of every size x size window (top-left indexed)."""
    return (
        integral[size:, size:]
        - integral[:-size, size:]
        - integral[size:, :-size]
        + integral[:-size, :-size]
    )


def find_fiducials(light: Light, size_px: float) -> list[tuple[float, float]]:
    """Centres (x, y) of the four corner squares: TL, TR, BL, BR."""
    step = max(1, int(size_px // 10))
    small = light.shrunk(step)
    inner = max(3, round(size_px / step * 0.8))
    outer = inner + 2 * max(2, round(size_px / step * 0.35))
    integral = np.zeros((small.shape[0] + 1, small.shape[1] + 1))
    integral[1:, 1:] = small.cumsum(0).cumsum(1)
    inner_sum = _box_sums(integral, inner)
    outer_sum = _box_sums(integral, outer)
    offset = (outer - inner) // 2
    inner_aligned = inner_sum[
        offset : offset + outer_sum.shape[0], offset : offset + outer_sum.shape[1]
    ]
    ring = (outer_sum - inner_aligned) / (outer * outer - inner * inner)
    score = inner_aligned / (inner * inner) - ring
    rows, cols = score.shape
    centres = []
    for top, left in ((0, 0), (0, 1), (1, 0), (1, 1)):
        region = score[
            top * rows // 2 : (top + 1) * rows // 2 or rows,
            left * cols // 2 : (left + 1) * cols // 2 or cols,
        ]
        index = int(np.argmax(region))
        r, c = divmod(index, region.shape[1])
        if region[r, c] < 0.35:
            raise SheetUnreadable("the four corner squares were not found")
        y = (top * rows // 2 + r + offset + inner / 2) * step
        x = (left * cols // 2 + c + offset + inner / 2) * step
        centres.append(_refine(light, x, y, size_px))
    return centres


def _refine(light: Light, x: float, y: float, size_px: float) -> tuple[float, float]:
    height, width = light.grey.shape
    for _ in range(2):
        half = size_px * 0.85
        top, left = max(0, int(y - half)), max(0, int(x - half))
        window = light.window(
            left, top, min(width, int(x + half) + 1), min(height, int(y + half) + 1)
        )
        mask = window > 0.5
        count = int(mask.sum())
        if count < 0.3 * size_px * size_px:
            raise SheetUnreadable("a corner square is too faint or too small")
        ys, xs = np.nonzero(mask)
        x, y = left + float(xs.mean()), top + float(ys.mean())
    return x, y


# ---------------------------------------------------------------- geometry


def homography(
    source: Sequence[tuple[float, float]], target: Sequence[tuple[float, float]]
) -> NDArray[np.float64]:
    """The 3x3 projective map taking the four `source` points to `target`."""
    rows = []
    for (x, y), (u, v) in zip(source, target, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y, -u])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y, -v])
    _, _, vt = np.linalg.svd(np.asarray(rows, dtype=np.float64))
    matrix: NDArray[np.float64] = vt[-1].reshape(3, 3)
    normalised: NDArray[np.float64] = matrix / matrix[2, 2]
    return normalised


def project(matrix: NDArray[np.float64], points: NDArray[np.float64]) -> NDArray[np.float64]:
    ones = np.ones((points.shape[0], 1))
    mapped: NDArray[np.float64] = np.hstack([points, ones]) @ matrix.T
    return mapped[:, :2] / mapped[:, 2:3]


@dataclass(slots=True)
class PageView:
    """One image seen as a page of the sheet."""

    light: Light
    matrix: NDArray[np.float64]
    page: int
    ink: float
    scale: float

    def sample(
        self, centres: NDArray[np.float64], radius: float, fraction: float = 0.7
    ) -> NDArray[np.float64]:
        """Mean darkness of a disc of `radius` * `fraction` around each centre."""
        span = radius * fraction
        steps = max(5, min(15, int(span * self.scale)))
        grid = np.linspace(-span, span, steps)
        dx, dy = np.meshgrid(grid, grid)
        inside = dx**2 + dy**2 <= span**2
        offsets = np.stack([dx[inside], dy[inside]], axis=1)
        points = (centres[:, None, :] + offsets[None, :, :]).reshape(-1, 2)
        mapped = project(self.matrix, points)
        values = self.light.darkness_at(mapped[:, 0], mapped[:, 1]).reshape(len(centres), -1)
        means: NDArray[np.float64] = values.mean(axis=1).astype(np.float64)
        return means

    def ink_share(self, x: float, y: float, width: float, height: float) -> float:
        """Share of ink pixels inside a rectangle of the page (inset by 4 pt)."""
        inset = 4.0
        xs = np.linspace(
            x + inset, x + width - inset, max(4, int((width - 2 * inset) * self.scale / 2))
        )
        ys = np.linspace(
            y + inset, y + height - inset, max(4, int((height - 2 * inset) * self.scale / 2))
        )
        gx, gy = np.meshgrid(xs, ys)
        mapped = project(self.matrix, np.stack([gx.ravel(), gy.ravel()], axis=1))
        return float((self.light.darkness_at(mapped[:, 0], mapped[:, 1]) > 0.5).mean())


def locate_page(grey: Grey, layout: SheetLayout) -> PageView:
    """Find the fiducials and the page code of one image of this sheet."""
    width = grey.shape[1]
    first = [f for f in layout.fiducials if f.page == 1]
    # The page may be scaled, rotated or framed with a margin: judge the size
    # of a corner square from the image width, which holds about a page.
    scale = width / layout.width
    size_px = first[0].size * scale
    light = Light(grey, block=math.ceil(size_px * 1.6))
    found = find_fiducials(light, size_px)
    page_points = [f.centre for f in first]
    # TL, TR, BL, BR as laid out; the image corners in the same order, or
    # turned half way round for a sheet fed upside down.
    for order in ((0, 1, 2, 3), (3, 2, 1, 0)):
        image_points = [found[i] for i in order]
        matrix = homography(page_points, image_points)
        local = _local_scale(matrix, layout)
        view = PageView(light, matrix, 0, 1.0, local)
        centres = np.asarray([f.centre for f in first], dtype=np.float64)
        view.ink = float(np.median(view.sample(centres, first[0].size / 2, 0.6)))
        page = _read_code(view, layout)
        if page is not None:
            view.page = page
            return view
    raise SheetUnreadable("the page code between the top corner squares is unreadable")


def _local_scale(matrix: NDArray[np.float64], layout: SheetLayout) -> float:
    corners = np.asarray([[0, 0], [layout.width, 0], [0, layout.height]], dtype=np.float64)
    mapped = project(matrix, corners)
    across = float(np.hypot(*(mapped[1] - mapped[0]))) / layout.width
    down = float(np.hypot(*(mapped[2] - mapped[0]))) / layout.height
    return (across + down) / 2


def _read_code(view: PageView, layout: SheetLayout) -> int | None:
    cells: list[CodeCell] = [c for c in layout.code_cells if c.page == 1]
    centres = np.asarray([(c.x + c.size / 2, c.y + c.size / 2) for c in cells], dtype=np.float64)
    values = view.sample(centres, cells[0].size / 2, 0.6) / max(view.ink, 0.05)
    marks = [bool(value > 0.5) for value in values]
    if not marks[0] or any(0.25 < value < 0.6 for value in values):
        return None
    bits = marks[1 : 1 + len(page_bits(0)) - 1]
    parity = marks[len(page_bits(0))]
    if (sum(bits) % 2 == 1) != parity:
        return None
    page = sum(int(bit) << (len(bits) - 1 - i) for i, bit in enumerate(bits)) + 1
    return page if page <= layout.pages else None


# ---------------------------------------------------------------- reading


@dataclass(slots=True)
class SheetReading:
    responses: dict[str, Response]
    student_id: str | None
    student_id_confidence: float
    pages: int
    fills: dict[str, dict[str, float]] = field(default_factory=dict)


def confidence(fill: float) -> float:
    """1 far from the undecided band, falling to 0 in its middle."""
    return round(min(1.0, abs(fill - _MIDDLE) / _HALF * 0.8), 4)


def _fill_levels(view: PageView, raw: NDArray[np.float64], empty: float) -> NDArray[np.float64]:
    span = max(view.ink - empty, 0.15)
    return np.clip((raw - empty) / span, 0.0, 1.5)


def read_sheet(
    images: Iterable[Grey], layout: SheetLayout, questions: Sequence[Question]
) -> SheetReading:
    """Every question's response and the student number, from the sheet's pages."""
    views: dict[int, PageView] = {}
    for grey in images:
        view = locate_page(grey, layout)
        views.setdefault(view.page, view)
    missing = [page for page in range(1, layout.pages + 1) if page not in views]
    if missing:
        raise SheetUnreadable(f"page {missing[0]} of the sheet is missing")
    fills: dict[str, dict[str, float]] = {}
    id_fills: dict[tuple[int, int], float] = {}
    box_ink: dict[str, float] = {}
    for page, view in views.items():
        bubbles = [b for b in layout.bubbles if b.page == page]
        ids = [b for b in layout.id_bubbles if b.page == page]
        raw_all = []
        if bubbles:
            raw_all.append(
                view.sample(
                    np.asarray([(b.x, b.y) for b in bubbles], dtype=np.float64), bubbles[0].r
                )
            )
        if ids:
            raw_all.append(
                view.sample(np.asarray([(b.x, b.y) for b in ids], dtype=np.float64), ids[0].r)
            )
        if not raw_all:
            continue
        joined = np.concatenate(raw_all)
        empty = float(np.percentile(joined, 30))
        levels = _fill_levels(view, joined, empty)
        for bubble, level in zip(bubbles, levels[: len(bubbles)], strict=True):
            fills.setdefault(bubble.question, {})[bubble.option] = round(float(level), 4)
        for id_bubble, level in zip(ids, levels[len(bubbles) :], strict=True):
            id_fills[(id_bubble.position, id_bubble.digit)] = float(level)
        for box in (b for b in layout.boxes if b.page == page):
            box_ink[box.question] = view.ink_share(box.x, box.y, box.width, box.height)
    responses = {q.id: _response(q, fills.get(q.id, {}), box_ink.get(q.id)) for q in questions}
    student_id, id_confidence = _student_id(id_fills)
    return SheetReading(responses, student_id, id_confidence, len(views), fills)


def _response(question: Question, fills: dict[str, float], ink: float | None) -> Response:
    if not fills:
        if ink is not None and ink >= BOX_INK:
            return Response(value=None, raw="written", flags=[], confidence=0.0, handwritten=True)
        return Response(value=None, flags=[BLANK], confidence=1.0)
    marked = [option for option, level in fills.items() if level >= FILLED]
    faint = [option for option, level in fills.items() if EMPTY <= level < FILLED]
    certainty = min(confidence(level) for level in fills.values())
    flags: list[str] = []
    if faint:
        flags.append(AMBIGUOUS)
    if question.type == "multi":
        if not marked and not faint:
            flags.append(BLANK)
        return Response(
            value=sorted(marked), raw=sorted(marked + faint), flags=flags, confidence=certainty
        )
    if len(marked) > 1:
        flags.append(MULTIPLE_MARKS)
        return Response(value=None, raw=sorted(marked), flags=flags, confidence=certainty)
    chosen = marked[0] if marked else (faint[0] if len(faint) == 1 else None)
    if chosen is None and not faint:
        flags.append(BLANK)
    value: str | bool | None = chosen
    if question.type == "true_false" and chosen is not None:
        value = chosen == "T"
    return Response(value=value, raw=chosen, flags=flags, confidence=certainty)


def _student_id(id_fills: dict[tuple[int, int], float]) -> tuple[str | None, float]:
    """The number in the grid: one digit per position; trailing positions may
    stay empty (shorter numbers are written from the left)."""
    if not id_fills:
        return None, 0.0
    positions = sorted({position for position, _ in id_fills})
    digits: list[str] = []
    certainty = 1.0
    ended = False
    for position in positions:
        levels = {digit: id_fills[(position, digit)] for digit in range(10)}
        certainty = min(certainty, *(confidence(level) for level in levels.values()))
        marked = [digit for digit, level in levels.items() if level >= FILLED]
        if len(marked) > 1:
            return None, 0.0
        if not marked:
            ended = True
            continue
        if ended:
            return None, 0.0
        digits.append(str(marked[0]))
    return ("".join(digits) or None), certainty
