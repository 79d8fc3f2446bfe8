"""Delivery note fields: number, date, supplier, order and the delivered items."""

from __future__ import annotations

import re

from backend.documents.intelligence.fields.common import (
    Fields,
    company_candidates,
    first_line_name,
    labelled_name,
)
from backend.documents.intelligence.fields.labels import FieldSpec, find_labelled, split_lines
from backend.documents.intelligence.fields.tables import find_header, parse_rows

SPECS = [
    FieldSpec(
        "delivery_note_number",
        "id",
        (
            r"delivery\s*note\s*(?:no\.?|number|nr\.?|#)",
            r"delivery\s*note(?=\s*[:#])",
            r"delivery\s*(?:no\.?|number|#)",
            r"packing\s*slip\s*(?:no\.?|number|#)",
            r"dispatch\s*note\s*(?:no\.?|number|#)",
            r"lieferschein-?\s*(?:nr\.?|nummer|no\.?)",
            r"lieferschein(?=\s*[:#])",
            r"liefer-?\s*(?:nr\.?|nummer)",
        ),
    ),
    FieldSpec(
        "delivery_date",
        "date",
        (
            r"delivery\s*date",
            r"date\s*of\s*delivery",
            r"delivered\s*on",
            r"ship(?:ping|ped)?\s*date",
            r"dispatch\s*date",
            r"lieferdatum",
            r"liefertermin",
            r"versanddatum",
            r"date",
            r"datum",
        ),
    ),
    FieldSpec(
        "order_number",
        "id",
        (
            r"(?:purchase\s*)?order\s*(?:no\.?|number|nr\.?|#|ref(?:erence)?)",
            r"purchase\s*order",
            r"p\.?o\.?\s*(?:no\.?|number|#)",
            r"your\s*order",
            r"bestell-?\s*(?:nr\.?|nummer)",
            r"auftrags-?\s*(?:nr\.?|nummer)",
            r"ihre\s*bestellung",
        ),
    ),
]
SUPPLIER_LABEL = FieldSpec(
    "supplier",
    "text",
    (
        r"from",
        r"supplier",
        r"shipper",
        r"sender",
        r"vendor",
        r"lieferant",
        r"absender",
        r"versender",
    ),
)
RECIPIENT_LABEL = FieldSpec(
    "recipient",
    "text",
    (
        r"ship\s*to",
        r"deliver\s*to",
        r"delivery\s*address",
        r"recipient",
        r"consignee",
        r"lieferadresse",
        r"empfänger",
        r"lieferanschrift",
        r"warenempfänger",
    ),
)
_TITLE = re.compile(r"^(?:delivery\s*note|lieferschein|packing\s*slip|dispatch\s*note)\b", re.I)


def extract(text: str, language: str | None) -> Fields:
    lines = split_lines(text)
    fields = Fields()
    found = find_labelled(lines, SPECS, language=language)
    for name in ("delivery_note_number", "delivery_date", "order_number"):
        fields.take(name, found[name])
    supplier = labelled_name(lines, SUPPLIER_LABEL)
    if supplier is None:
        recipient = labelled_name(lines, RECIPIENT_LABEL)
        skip = {recipient.line} if recipient else set()
        companies = [
            c
            for c in company_candidates(lines, skip)
            if not recipient or c.value != recipient.value
        ]
        supplier = companies[0] if companies else first_line_name(lines, _TITLE)
    if supplier is not None:
        fields.put("supplier_name", supplier.value, supplier.confidence)
    header = find_header(lines, need_prices=False)
    if header is not None:
        items = [
            {"description": row["description"], "quantity": row["quantity"]}
            for row in parse_rows(lines, header, prices=False)
        ]
        if items:
            fields.put("items", items, 0.8)
    return fields
