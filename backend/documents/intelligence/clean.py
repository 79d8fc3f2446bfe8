"""Cleaning of OCR output. Text layers are stored as the PDF holds them;
only text read by Tesseract is cleaned: ligatures normalised, words split
by a hyphen at a line end joined, stray whitespace trimmed."""

from __future__ import annotations

import re

LIGATURES = {
    "\ufb00": "ff",
    "\ufb01": "fi",
    "\ufb02": "fl",
    "\ufb03": "ffi",
    "\ufb04": "ffl",
    "\ufb05": "st",
    "\ufb06": "st",
    "\u0132": "IJ",
    "\u0133": "ij",
    "\u0152": "OE",
    "\u0153": "oe",
}
_LIGATURES = str.maketrans(LIGATURES)
# "Rech-\nnung" -> "Rechnung\n": a lower-case letter, a hyphen at the line's
# end, then a word starting lower case on the next line.
_HYPHENATED = re.compile(r"(\w*[^\W\d_])[-\u00ad\u2010]\n[ \t]*([a-zäöüß]\w*)([ \t]?)")
_SPACES = re.compile(r"[ \t]+\n")
_BLANK_LINES = re.compile(r"\n{3,}")


def clean_ocr_text(text: str) -> str:
    text = text.translate(_LIGATURES).replace("\u00ad\n", "-\n")
    text = _HYPHENATED.sub(lambda match: f"{match.group(1)}{match.group(2)}\n", text)
    text = _SPACES.sub("\n", text)
    return _BLANK_LINES.sub("\n\n", text).strip()
