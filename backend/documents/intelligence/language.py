"""Language of a text among the tenant's OCR languages plus a small common
set (lingua, offline models), and the full-text configuration it implies.

lingua holds on short text where n-gram guessers do not (a 40-character
English sentence is English, not French); it answers None rather than
guess when the candidates are too close, and so does `detect` for text with
too few letters."""

from __future__ import annotations

import re
from functools import lru_cache

from lingua import IsoCode639_3, Language, LanguageDetector, LanguageDetectorBuilder

# Always among the candidates, whatever the tenant reads.
COMMON = ("eng", "deu", "fra", "spa", "ita", "nld")
# Full-text configurations by ISO 639-1 code; other languages use `simple`.
REGCONFIGS = {"en": "english", "de": "german"}
MIN_LETTERS = 12
MIN_RELATIVE_DISTANCE = 0.1
SAMPLE_CHARS = 4000

_LETTERS = re.compile(r"[^\W\d_]", re.UNICODE)


def _language(code: str) -> Language | None:
    try:
        return Language.from_iso_code_639_3(IsoCode639_3.from_str(code))
    except (ValueError, AttributeError):
        return None


@lru_cache(maxsize=16)
def _detector(codes: tuple[str, ...]) -> LanguageDetector:
    languages = {language for code in codes if (language := _language(code)) is not None}
    return (
        LanguageDetectorBuilder.from_languages(*sorted(languages, key=lambda item: item.name))
        .with_minimum_relative_distance(MIN_RELATIVE_DISTANCE)
        .build()
    )


def candidates(ocr_languages: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Tesseract codes (`eng`, `deu`, `chi_sim`…) plus the common set, as
    ISO 639-3 codes lingua knows, in a stable order."""
    codes = {code.split("_", 1)[0].lower() for code in ocr_languages} | set(COMMON)
    return tuple(sorted(code for code in codes if _language(code) is not None))


def detect(text: str, ocr_languages: list[str] | tuple[str, ...] = ("eng", "deu")) -> str | None:
    """ISO 639-1 code of `text`'s language, or None when unsure."""
    sample = text[:SAMPLE_CHARS]
    if len(_LETTERS.findall(sample)) < MIN_LETTERS:
        return None
    language = _detector(candidates(ocr_languages)).detect_language_of(sample)
    if language is None:
        return None
    return str(language.iso_code_639_1.name.lower())


def document_language(pages: list[tuple[str | None, int]]) -> str | None:
    """A document's language from its pages' (language, characters): the
    language holding most characters, if it holds most of the detected text."""
    weights: dict[str, int] = {}
    for language, characters in pages:
        if language is not None:
            weights[language] = weights.get(language, 0) + characters
    if not weights:
        return None
    best = max(sorted(weights), key=lambda code: weights[code])
    return best if weights[best] * 2 > sum(weights.values()) else None


def regconfig(language: str | None) -> str:
    """The PostgreSQL text-search configuration for a document language."""
    if language is None:
        return "english"
    return REGCONFIGS.get(language, "simple")


def preload(ocr_languages: list[str] | tuple[str, ...] = ("eng", "deu")) -> None:
    """Load the models now (about 2 s) instead of inside the first job."""
    _detector(candidates(ocr_languages)).detect_language_of("warm up the detector")
