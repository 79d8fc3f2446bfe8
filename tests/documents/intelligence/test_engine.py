"""The engine without the API: OCR against known text (character error
rate), classification and field accuracy over the generated corpus (text
layers, and a few degraded scans), language detection on short text,
cleaning, normalisers, and a clear error without Tesseract."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.documents.intelligence import language, ocr
from backend.documents.intelligence.clean import clean_ocr_text
from backend.documents.intelligence.extract import extract_document
from backend.documents.intelligence.fields import extract_fields
from backend.documents.intelligence.fields.normalise import parse_amount, parse_date
from tests.documents.intelligence import corpus
from tests.documents.intelligence.accuracy import Scores

needs_tesseract = pytest.mark.skipif(
    not {"eng", "deu"} <= ocr.installed_languages(), reason="Tesseract eng+deu not installed"
)

CER_PAGES = {
    "en": [
        "The committee reviewed the annual report on Tuesday.",
        "Payment is due within fourteen days of the invoice date.",
        "Please keep this receipt for your records.",
    ],
    "de": [
        "Der Ausschuss prüfte am Dienstag den Jahresbericht.",
        "Die Zahlung ist innerhalb von vierzehn Tagen fällig.",
        "Bitte bewahren Sie diesen Beleg gut auf, Größe: 12 m².",
    ],
}


@functools.cache
def text_corpus() -> list[corpus.Sample]:
    return corpus.corpus(range(2))


@pytest.fixture
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="dossier-test-") as folder:
        yield Path(folder)


def _read(path: Path, data: bytes, mime: str, **options: object) -> corpus.Any:
    path.write_bytes(data)
    return extract_document(path, mime, **options)  # type: ignore[arg-type]


def test_field_accuracy_on_text_layer_corpus(workdir: Path) -> None:
    scores = Scores()
    for sample in text_corpus():
        result = _read(workdir / f"{sample.name}.pdf", sample.pdf, "application/pdf")
        assert [page.method for page in result.pages] == ["text"]
        assert result.confidence == 1.0
        assert result.language == sample.language
        fields = extract_fields(result.text, result.language)
        scores.add(
            sample.name, sample.document_type, sample.truth, fields.document_type, fields.data
        )
    print("\n" + scores.report("Text-layer corpus (4 types x 5 layouts x EN/DE)"))
    layouts = {(s.document_type, s.language, s.layout) for s in text_corpus()}
    assert len(layouts) == 40  # 4 types x 5 layouts x 2 languages (x 2 seeds)
    assert scores.classification >= 0.95
    assert scores.overall >= 0.95
    for name in scores.fields:
        assert scores.field_accuracy(name) >= 0.8, name


@needs_tesseract
def test_ocr_character_error_rate_on_clean_scans(workdir: Path) -> None:
    rates = []
    for lang, lines in CER_PAGES.items():
        pdf = corpus.text_page(lines)
        scan = corpus.png(corpus.render_pages(pdf)[0])
        result = _read(workdir / f"{lang}.png", scan, "image/png")
        assert [page.method for page in result.pages] == ["ocr"]
        rate = corpus.cer("\n".join(lines), result.text)
        rates.append(rate)
        print(f"\nOCR CER {lang}: {rate:.2%} (confidence {result.confidence})")
        assert result.language == lang
        assert 0.6 < (result.confidence or 0) <= 1
    assert max(rates) <= 0.03


@needs_tesseract
def test_field_accuracy_on_degraded_scans(workdir: Path) -> None:
    picks = [
        ("invoice", "de", 0),
        ("receipt", "en", 1),
        ("delivery_note", "de", 3),
        ("contract", "en", 1),
    ]
    scores = Scores()
    for kind, lang, layout in picks:
        sample = corpus.GENERATORS[kind](1, lang, layout)
        images = [corpus.degrade(image, seed=layout) for image in corpus.render_pages(sample.pdf)]
        result = _read(workdir / f"{sample.name}.pdf", corpus.image_pdf(images), "application/pdf")
        assert {page.method for page in result.pages} == {"ocr"}
        fields = extract_fields(result.text, result.language, text_confidence=result.confidence)
        scores.add(
            sample.name, sample.document_type, sample.truth, fields.document_type, fields.data
        )
        assert all(0 < value <= 1 for value in fields.confidence.values())
    print("\n" + scores.report("Degraded scans (rotation, blur, noise, JPEG)"))
    assert scores.classification == 1.0
    assert scores.overall >= 0.8


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The invoice is due next week, thank you.", "en"),
        ("Die Rechnung ist nächste Woche fällig.", "de"),
        ("La facture est payable la semaine prochaine.", "fr"),
        ("12.00 EUR 4711", None),
    ],
)
def test_language_of_short_text(text: str, expected: str | None) -> None:
    assert language.detect(text, ["eng", "deu"]) == expected


def test_cleaning_joins_hyphenation_and_ligatures_only_for_ocr(workdir: Path) -> None:
    assert (
        clean_ocr_text("Die Rech-\nnung ist ﬁnal und ofﬂine")
        == "Die Rechnung\nist final und offline"
    )
    assert clean_ocr_text("Name: Meyer-\nSchmidt") == "Name: Meyer-\nSchmidt"
    pdf = corpus.text_page(["A well-known line", "second-hand line-"])
    result = _read(workdir / "layer.pdf", pdf, "application/pdf")
    assert "second-hand line-" in result.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("01.12.2026", "2026-12-01"),
        ("1 December 2026", "2026-12-01"),
        ("December 1, 2026", "2026-12-01"),
        ("1. Dezember 2026", "2026-12-01"),
        ("2026-12-01", "2026-12-01"),
    ],
)
def test_dates(text: str, expected: str) -> None:
    assert parse_date(text, language="en") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.234,50 €", "1234.50"),
        ("$1,234.50", "1234.50"),
        ("EUR 12,5", "12.50"),
        ("-3.00", "-3.00"),
    ],
)
def test_amounts(text: str, expected: str) -> None:
    assert parse_amount(text) == expected


def test_missing_tesseract_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> None:
    monkeypatch.setattr(ocr, "installed_languages", lambda: frozenset())
    with pytest.raises(ocr.OcrUnavailable, match="not installed"):
        _read(
            workdir / "scan.pdf",
            corpus.image_pdf([corpus.render_pages(corpus.text_page(["x"]))[0]]),
            "application/pdf",
        )
    monkeypatch.setattr(ocr, "installed_languages", lambda: frozenset({"eng"}))
    with pytest.raises(ocr.OcrUnavailable, match="deu"):
        _read(
            workdir / "scan.png",
            corpus.png(corpus.render_pages(corpus.text_page(["x"]))[0]),
            "image/png",
            languages=["eng", "deu"],
        )
