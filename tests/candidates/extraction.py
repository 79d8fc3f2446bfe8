"""Text of a generated file through the platform's own extraction functions
(the ones `document.extract_text` runs), so accuracy is measured on what the
parser really receives."""

from __future__ import annotations

import subprocess
import tempfile
from functools import cache
from pathlib import Path

from backend.documents.intelligence.extract import docx_text, ocr_frame, pdf_pages, plain_text
from backend.documents.intelligence.pages import sniff_kind


@cache
def ocr_languages() -> str:
    """`eng+deu` where Tesseract has German (accents in names), else `eng`."""
    listed = subprocess.run(
        ["tesseract", "--list-langs"], capture_output=True, text=True, check=False
    ).stdout.split()
    return "eng+deu" if "deu" in listed else "eng"


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
            return ocr_frame(path, 0, ocr_languages())
        return plain_text(path)
