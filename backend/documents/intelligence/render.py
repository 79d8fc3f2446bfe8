"""Page previews: one page of a PDF or image document as a PNG of a given
width (blocking: the API runs it in a worker thread)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from backend.documents.intelligence.pages import (
    image_frame,
    image_frame_count,
    open_pdf,
    render_pdf_page,
)

MIN_WIDTH, MAX_WIDTH, DEFAULT_WIDTH = 64, 2000, 1024
MAX_HEIGHT = 6000


def render_page_png(path: Path, mime_type: str, number: int, width: int) -> bytes | None:
    """PNG bytes of page `number` (from 1), `width` pixels wide; None past the last page."""
    if mime_type == "application/pdf":
        with open_pdf(path) as document:
            if not 1 <= number <= len(document):
                return None
            page = document[number - 1]
            try:
                page_width, page_height = page.get_size()
            finally:
                page.close()
        dpi = 72 * width / max(page_width, 1)
        dpi = min(dpi, 72 * MAX_HEIGHT / max(page_height, 1))
        image = render_pdf_page(path, number - 1, dpi, grey=False)
    else:
        if not 1 <= number <= image_frame_count(path):
            return None
        image = image_frame(path, number - 1)
    height = max(1, min(MAX_HEIGHT, round(image.height * width / max(image.width, 1))))
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=False, compress_level=3)
    return buffer.getvalue()
