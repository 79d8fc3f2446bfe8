"""Classification and field extraction from a document's text, English or
German: `extract_fields(text, language)` answers the document type, its
fields and a confidence per field. OCR'd text lowers the confidences by the
text's own confidence."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backend.documents.intelligence.fields import contract, delivery_note, invoice, receipt
from backend.documents.intelligence.fields.classify import Classification, classify
from backend.documents.intelligence.fields.common import Fields

EXTRACTORS: dict[str, Callable[[str, str | None], Fields]] = {
    "invoice": invoice.extract,
    "receipt": receipt.extract,
    "delivery_note": delivery_note.extract,
    "contract": contract.extract,
}
DOCUMENT_TYPES = ("invoice", "receipt", "delivery_note", "contract", "cv", "other")
FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "invoice": (
        "invoice_number",
        "invoice_date",
        "due_date",
        "supplier_name",
        "supplier_vat_id",
        "supplier_iban",
        "customer_name",
        "order_number",
        "currency",
        "net_amount",
        "tax_amount",
        "tax_rate",
        "total_amount",
        "line_items",
    ),
    "receipt": (
        "merchant_name",
        "receipt_date",
        "currency",
        "total_amount",
        "tax_amount",
        "payment_method",
    ),
    "delivery_note": (
        "delivery_note_number",
        "delivery_date",
        "supplier_name",
        "order_number",
        "items",
    ),
    "contract": ("contract_number", "parties", "effective_date", "end_date"),
}


@dataclass(frozen=True, slots=True)
class ExtractedFields:
    document_type: str
    type_confidence: float
    data: dict[str, Any]
    confidence: dict[str, float]


def extract_fields(
    text: str,
    language: str | None = None,
    *,
    document_type: str | None = None,
    text_confidence: float | None = None,
) -> ExtractedFields:
    """Classify `text` (unless `document_type` is given) and read its fields."""
    classification: Classification | None = None
    if document_type is None:
        classification = classify(text)
        document_type = classification.document_type
    extractor = EXTRACTORS.get(document_type)
    fields = extractor(text, language) if extractor else Fields()
    scale = 1.0 if text_confidence is None else 0.5 + 0.5 * text_confidence
    confidence = {name: round(value * scale, 2) for name, value in fields.confidence.items()}
    return ExtractedFields(
        document_type=document_type,
        type_confidence=classification.confidence if classification else 1.0,
        data=fields.data,
        confidence=confidence,
    )
