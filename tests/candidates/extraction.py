"""Text of a generated file through the platform's own extraction functions
(the ones `document.extract_text` runs), so accuracy is measured on what the
parser really receives."""

from __future__ import annotations

import tempfile
from pathlib import Path

from backend.worker.handlers.extract_text import (
    docx_text,
    ocr_frame,
    pdf_pages,
    plain_text,
    sniff_kind,
)


def extract(filename: str, data: bytes, mime_type: str = "application/octet-stream") -> str:
    with tempfile.TemporaryDirectory(prefix="cv-extract-") as folder:
        path = Path(folder) / filename
        path.write_bytes(data)
        kind = sniff_kind(data[:4096], mime_type)
        if kind == "pdf":
            count, page_text = pdf_pages(path)
            return "\n\f".join(page_text(index) for index in range(count))
        if kind == "docx":
            return docx_text(path)[0]
        if kind == "image":
            return ocr_frame(path, 0, "eng")
        return plain_text(path)
