"""Issue 9, document intelligence: OCR throughput of the worker's path next
to the `tesseract` command line on the same page images (target >= 0.8x),
text-layer extraction pages/s next to bare PDFium, field extraction
documents/s (no OCR), and page-preview latency for a cached and an uncached
page."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pypdfium2 as pdfium
from fpdf import FPDF
from PIL import Image

from backend.documents.intelligence import language as languages_
from backend.documents.intelligence.extract import PageReader
from backend.documents.intelligence.fields import extract_fields
from backend.documents.intelligence.ocr import (
    OCR_DPI,
    child_environment,
    ocr_image,
    tesseract_command,
)
from backend.documents.intelligence.pages import render_pdf_page
from bench.context import BenchContext
from bench.registry import CustomScenario, HttpScenario, Measurement, Request, RunOptions, register

LANGUAGES = ["eng", "deu"]
OCR_PAGES = 3
TEXT_PAGES = 40
PREVIEW_WIDTH = 1024

INVOICE_EN = """Northwind Supplies Ltd
12 High Street, London
INVOICE
Invoice No.: INV-{n}
Invoice Date: 3 March 2026
Due Date: 17 March 2026
Order No.: PO-{n}7
Bill to: Bluefield Trading Ltd
Description Qty Unit price Amount
Printer paper A4 4 £12.50 £50.00
Desk lamp 2 £40.00 £80.00
Subtotal £130.00
VAT 20% £26.00
Total £156.00
VAT ID: GB980780684
IBAN: GB33 BUKB 2020 1555 5555 55"""
INVOICE_DE = """Müller Bürobedarf GmbH
Hauptstraße 12, 10115 Berlin
RECHNUNG
Rechnungsnummer: RE-{n}
Rechnungsdatum: 01.12.2026
Fällig am: 15.12.2026
Rechnungsempfänger: Weber Elektro GmbH
Beschreibung Menge Einzelpreis Betrag
Kugelschreiber 10 1,50 € 15,00 €
Bürostuhl 1 185,00 € 185,00 €
Nettobetrag 200,00 €
MwSt. 19 % 38,00 €
Gesamtbetrag 238,00 €
USt-IdNr.: DE136695976
IBAN: DE89 3704 0044 0532 0130 00"""


def _pdf(pages: int, lines: int = 30) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_font("Helvetica", size=11)
    for page in range(pages):
        pdf.add_page()
        for line in range(lines):
            text = f"Page {page + 1} line {line + 1}: the committee reviewed the annual report."
            pdf.cell(0, 8, text, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _page_images(context: BenchContext) -> list[Path]:
    """`OCR_PAGES` A4 pages at 300 dpi, grey, as uncompressed PGM files."""
    found: list[Path] | None = context.state.get("docintel.images")
    if found is not None:
        return found
    pdf_path = context.work_dir / "ocr-pages.pdf"
    pdf_path.write_bytes(_pdf(OCR_PAGES, lines=25))
    paths = []
    for index in range(OCR_PAGES):
        image = render_pdf_page(pdf_path, index, OCR_DPI)
        path = context.work_dir / f"ocr-page-{index}.pgm"
        image.save(path)
        paths.append(path)
    context.state["docintel.images"] = paths
    return paths


def _cli(path: Path) -> None:
    command = tesseract_command(str(path), LANGUAGES, OCR_DPI, "txt")[:-1]  # plain text out
    subprocess.run(command, capture_output=True, check=True, env=child_environment())


def _worker(path: Path) -> None:
    with Image.open(path) as image:
        page = image.copy()
    ocr_image(page, LANGUAGES, OCR_DPI)


async def _pages_per_second(
    context: BenchContext, options: RunOptions, read: Any, label: str
) -> Measurement:
    if shutil.which("tesseract") is None:
        raise RuntimeError("tesseract is not installed")
    paths = _page_images(context)
    await asyncio.to_thread(read, paths[0])  # warm the page cache and the models
    count, started = 0, time.perf_counter()
    latencies = []
    while time.perf_counter() - started < options.duration or count < len(paths):
        begun = time.perf_counter()
        await asyncio.to_thread(read, paths[count % len(paths)])
        latencies.append((time.perf_counter() - begun) * 1000)
        count += 1
    elapsed = time.perf_counter() - started
    latencies.sort()
    return Measurement(
        throughput=count / elapsed,
        unit="pages/s",
        count=count,
        duration_s=elapsed,
        p50_ms=latencies[len(latencies) // 2],
        details={"path": label, "languages": LANGUAGES, "dpi": OCR_DPI},
    )


async def ocr_cli(context: BenchContext, options: RunOptions) -> Measurement:
    return await _pages_per_second(context, options, _cli, "tesseract CLI, txt output")


async def ocr_worker(context: BenchContext, options: RunOptions) -> Measurement:
    return await _pages_per_second(
        context, options, _worker, "ocr_image: PGM temp file, TSV, confidences, cleaning"
    )


def _text_pdf(context: BenchContext) -> Path:
    path = context.work_dir / "text-layer.pdf"
    if not path.exists():
        path.write_bytes(_pdf(TEXT_PAGES))
    return path


def _bare_text(path: Path) -> int:
    document = pdfium.PdfDocument(str(path))
    try:
        for index in range(len(document)):
            document[index].get_textpage().get_text_range()
        return len(document)
    finally:
        document.close()


def _reader_text(path: Path) -> int:
    reader = PageReader(path, "application/pdf", ocr="never", languages=LANGUAGES)
    count = reader.count()
    reader.finish([reader.page(index) for index in range(count)])
    return count


async def _text_rate(context: BenchContext, options: RunOptions, read: Any) -> Measurement:
    path = _text_pdf(context)
    languages_.preload(LANGUAGES)
    pages, started = 0, time.perf_counter()
    while time.perf_counter() - started < options.duration:
        pages += await asyncio.to_thread(read, path)
    elapsed = time.perf_counter() - started
    return Measurement(throughput=pages / elapsed, unit="pages/s", count=pages, duration_s=elapsed)


async def text_bare(context: BenchContext, options: RunOptions) -> Measurement:
    return await _text_rate(context, options, _bare_text)


async def text_layer(context: BenchContext, options: RunOptions) -> Measurement:
    return await _text_rate(context, options, _reader_text)


async def fields(context: BenchContext, options: RunOptions) -> Measurement:
    texts = [
        template.format(n=1000 + n) for n in range(10) for template in (INVOICE_EN, INVOICE_DE)
    ]
    assert extract_fields(texts[0], "en").data["total_amount"] == "156.00"
    documents, started = 0, time.perf_counter()
    while time.perf_counter() - started < options.duration:
        for text in texts:
            extract_fields(text, "de" if "RECHNUNG" in text else "en")
        documents += len(texts)
    elapsed = time.perf_counter() - started
    return Measurement(
        throughput=documents / elapsed, unit="docs/s", count=documents, duration_s=elapsed
    )


async def _preview_document(context: BenchContext) -> None:
    if "docintel.document" in context.state:
        return
    headers = await context.owner_headers()
    content = _pdf(2) + os.urandom(8).hex().encode()
    async with httpx.AsyncClient(base_url=context.app_url, headers=headers, timeout=120) as http:
        answer = await http.post(
            "/api/v1/documents",
            files={"file": ("preview.pdf", content, "application/pdf")},
        )
        if answer.status_code != 201:
            raise RuntimeError(f"upload answered {answer.status_code}: {answer.text[:300]}")
    context.state["docintel.document"] = answer.json()["id"]


async def _cached(context: BenchContext) -> str:
    document_id = context.state["docintel.document"]
    return f"/api/v1/documents/{document_id}/pages/1/image?width={PREVIEW_WIDTH}"


async def _uncached(context: BenchContext) -> list[Request]:
    headers = await context.owner_headers()
    base = f"/api/v1/documents/{context.state['docintel.document']}/pages"
    # Every width once: each request renders (no two share a cache entry).
    return [
        Request(f"{base}/{1 + width % 2}/image?width={width}", headers=headers)
        for width in range(2000, 63, -1)
    ]


register(
    CustomScenario(
        "docintel-ocr-cli", ocr_cli, description="tesseract CLI on A4 300-dpi pages (eng+deu)"
    ),
    CustomScenario(
        "docintel-ocr-worker",
        ocr_worker,
        baseline="docintel-ocr-cli",
        target_ratio=0.8,
        description="the worker's OCR of the same pages (confidences, cleaning)",
    ),
    CustomScenario(
        "docintel-text-bare", text_bare, description="bare PDFium text of a 40-page PDF"
    ),
    CustomScenario(
        "docintel-text-layer",
        text_layer,
        baseline="docintel-text-bare",
        description="text-layer extraction per page (language per page and document)",
    ),
    CustomScenario(
        "docintel-fields", fields, description="classification + fields, EN/DE invoices, no OCR"
    ),
    HttpScenario(
        "docintel-preview-cached",
        path=_cached,
        headers=lambda context: context.owner_headers(),
        setup=_preview_document,
        description="GET page image, the same page again (rendered once, then cached)",
    ),
    HttpScenario(
        "docintel-preview-uncached",
        requests=_uncached,
        setup=_preview_document,
        description="GET page image, a new width each time (rendered per request)",
    ),
)
