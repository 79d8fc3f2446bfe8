"""Receipt fields: the merchant (top of the slip, or a name with a legal
form), the date, the total, the tax and how it was paid."""

from __future__ import annotations

import re
from decimal import Decimal

from backend.documents.intelligence.fields import normalise
from backend.documents.intelligence.fields.common import (
    Fields,
    company_candidates,
    currency,
    first_line_name,
)
from backend.documents.intelligence.fields.labels import FieldSpec, find_labelled, split_lines

SPECS = [
    FieldSpec("receipt_date", "date", (r"date", r"datum", r"receipt\s*date", r"belegdatum")),
    FieldSpec(
        "total_amount",
        "amount",
        (
            r"total(?:\s*(?:amount|due|eur|usd|gbp))?",
            r"grand\s*total",
            r"amount\s*(?:due|paid)",
            r"summe",
            r"gesamt(?:betrag|summe)?",
            r"zu\s*zahlen",
            r"endbetrag",
            r"betrag",
        ),
    ),
    FieldSpec(
        "tax_amount",
        "amount",
        (
            r"(?:incl\.?\s*|inkl\.?\s*|includes\s*|enthaltene\s*|darin\s*)?(?:vat|tax|sales\s*tax|mwst\.?|ust\.?|umsatzsteuer)(?:\s*[A-C]?\s*\d{1,2}(?:[.,]\d{1,2})?\s?%)?",
        ),
    ),
]
PAYMENT = [
    (
        "card",
        re.compile(
            r"\b(?:card|credit|debit|visa|mastercard|maestro|amex|american express|girocard|"
            r"ec-?karte|kartenzahlung|karte|contactless|kontaktlos)\b",
            re.I,
        ),
    ),
    (
        "cash",
        re.compile(r"\b(?:cash|bar|barzahlung|bargeld|gegeben|given|change|rückgeld)\b", re.I),
    ),
    ("mobile", re.compile(r"\b(?:apple pay|google pay|paypal|mobile payment)\b", re.I)),
]
_TITLE = re.compile(
    r"^(?:receipt|kassenbon|kassenbeleg|quittung|beleg|bon)\b|^(?:tel|phone|fon|www\.|http)", re.I
)


def extract(text: str, language: str | None) -> Fields:
    lines = split_lines(text)
    fields = Fields()
    companies = company_candidates(lines, set())
    top = first_line_name(lines, _TITLE)
    if companies and companies[0].line <= 4:
        fields.put("merchant_name", companies[0].value, 0.85)
    elif top is not None:
        fields.put("merchant_name", top.value, 0.7)
    elif companies:
        fields.put("merchant_name", companies[0].value, 0.6)
    found = find_labelled(lines, SPECS, language=language)
    fields.take("receipt_date", found["receipt_date"])
    if "receipt_date" not in fields.data:
        dates = [d for line in lines for _, d in normalise.find_dates(line, language=language)]
        if dates:
            fields.put("receipt_date", dates[0].isoformat(), 0.75)
    totals = [c for c in found["total_amount"] if Decimal(c.value) > 0]
    taxes = [c for c in found["tax_amount"] if Decimal(c.value) > 0]
    if totals:
        # The first labelled total: later "Total" lines are usually payment and change.
        total = totals[0]
        fields.put("total_amount", total.value, total.confidence)
        smaller = [c for c in taxes if Decimal(c.value) < Decimal(total.value)]
        if smaller:
            fields.put("tax_amount", smaller[0].value, smaller[0].confidence)
    elif taxes:
        fields.put("tax_amount", taxes[0].value, taxes[0].confidence - 0.2)
    code, sure = currency(text)
    if code:
        fields.put("currency", code, sure)
    for name, pattern in PAYMENT:
        if pattern.search(text):
            fields.put("payment_method", name, 0.8)
            break
    return fields
