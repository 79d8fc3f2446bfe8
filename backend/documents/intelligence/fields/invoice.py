"""Invoice fields. Totals are chosen together: among the labelled
candidates for net, tax and total, a combination where net + tax = total
wins (and gains confidence) over the first-found values."""

from __future__ import annotations

import re
from decimal import Decimal
from itertools import product

from backend.documents.intelligence.fields import normalise
from backend.documents.intelligence.fields.common import (
    Fields,
    company_candidates,
    currency,
    first_line_name,
    labelled_name,
)
from backend.documents.intelligence.fields.labels import (
    Candidate,
    FieldSpec,
    find_labelled,
    first,
    split_lines,
)
from backend.documents.intelligence.fields.tables import find_header, parse_rows

SPECS = [
    FieldSpec(
        "invoice_number",
        "id",
        (
            r"invoice\s*(?:no\.?|number|num\.?|nr\.?|#|id)",
            r"invoice(?=\s*[:#])",
            r"rechnungs?-?\s*(?:nr\.?|nummer|no\.?)",
            r"rechnung\s*(?:nr\.?|nummer)",
            r"re\.?-?nr\.?",
            r"bill\s*(?:no\.?|number|#)",
        ),
    ),
    FieldSpec(
        "invoice_date",
        "date",
        (
            r"invoice\s*date",
            r"date\s*of\s*invoice",
            r"rechnungsdatum",
            r"date",
            r"datum",
            r"bill\s*date",
            r"issued(?:\s*on)?",
            r"ausgestellt\s*am",
        ),
    ),
    FieldSpec(
        "due_date",
        "date",
        (
            r"due\s*date",
            r"payment\s*due(?:\s*(?:date|by|on))?",
            r"due(?:\s*(?:by|on))?",
            r"pay\s*by",
            r"fällig(?:keitsdatum|\s*am|\s*bis)?",
            r"zahlbar\s*bis",
            r"zahlungsziel",
        ),
    ),
    FieldSpec(
        "order_number",
        "id",
        (
            r"(?:purchase\s*)?order\s*(?:no\.?|number|nr\.?|#|ref(?:erence)?)",
            r"purchase\s*order",
            r"p\.?o\.?\s*(?:no\.?|number|#)?",
            r"your\s*order",
            r"bestell-?\s*(?:nr\.?|nummer)",
            r"auftrags-?\s*(?:nr\.?|nummer)",
            r"ihre\s*bestellung",
        ),
    ),
    FieldSpec(
        "net_amount",
        "amount",
        (
            r"net\s*(?:amount|total)?",
            r"total\s*net",
            r"sub-?\s*total",
            r"amount\s*before\s*tax",
            r"nettobetrag",
            r"netto(?:summe|betrag)?",
            r"summe\s*netto",
            r"zwischensumme",
            r"gesamt\s*netto",
        ),
    ),
    FieldSpec(
        "tax_amount",
        "amount",
        (
            r"(?:plus\s*|zzgl\.?\s*|incl\.?\s*|inkl\.?\s*)?(?:vat|tax|sales\s*tax|mwst\.?|ust\.?|umsatzsteuer|mehrwertsteuer)(?:\s*\d{1,2}(?:[.,]\d{1,2})?\s?%)?(?:\s*(?:amount|betrag))?",
        ),
    ),
    FieldSpec(
        "total_amount",
        "amount",
        (
            r"total\s*(?:amount|due|gross|payable)?",
            r"grand\s*total",
            r"amount\s*(?:due|payable)",
            r"balance\s*due",
            r"gesamtbetrag",
            r"rechnungsbetrag",
            r"gesamtsumme",
            r"endbetrag",
            r"summe\s*brutto",
            r"brutto(?:betrag)?",
            r"zu\s*zahlen(?:der\s*betrag)?",
            r"gesamt",
        ),
    ),
    FieldSpec(
        "supplier_vat_id",
        "vat",
        (
            r"vat\s*(?:id|reg(?:istration)?\.?\s*(?:no\.?|number)?|no\.?|number)",
            r"ust\.?-?\s*id\.?-?\s*(?:nr\.?)?",
            r"umsatzsteuer-?\s*id(?:entifikationsnummer)?",
            r"uid(?:-nr\.?)?",
            r"tax\s*id",
        ),
    ),
    FieldSpec("supplier_iban", "iban", (r"iban",)),
]
SPEC = {spec.name: spec for spec in SPECS}
SUPPLIER_LABEL = FieldSpec(
    "supplier",
    "text",
    (
        r"from",
        r"supplier",
        r"seller",
        r"vendor",
        r"issued\s*by",
        r"lieferant",
        r"verkäufer",
        r"absender",
        r"rechnungssteller",
    ),
)
CUSTOMER_LABEL = FieldSpec(
    "customer",
    "text",
    (
        r"bill(?:ed)?\s*to",
        r"invoice\s*to",
        r"sold\s*to",
        r"customer(?!\s*(?:no|number|id))",
        r"client",
        r"rechnungsempfänger",
        r"rechnungsadresse",
        r"kunde(?!n-?nr)",
        r"an(?=\s*:)",
    ),
)
_TITLE = re.compile(r"^(?:tax\s+)?invoice\b|^rechnung\b|^faktura\b", re.I)


def extract(text: str, language: str | None) -> Fields:
    lines = split_lines(text)
    fields = Fields()
    found = find_labelled(lines, SPECS, language=language)
    for name in ("invoice_number", "invoice_date", "due_date", "order_number"):
        fields.take(name, found[name])
    if "invoice_date" not in fields.data:
        dates = [
            (index, d)
            for index, line in enumerate(lines)
            for _, d in normalise.find_dates(line, language=language)
        ]
        if dates:
            fields.put("invoice_date", dates[0][1].isoformat(), 0.5)
    _totals(fields, found, lines)
    _ids(fields, found, text)
    code, sure = currency(text)
    if code:
        fields.put("currency", code, sure)
    _parties(fields, lines)
    header = find_header(lines, need_prices=True)
    if header is not None:
        items = parse_rows(lines, header, prices=True)
        if items:
            fields.put("line_items", items, 0.8)
    return fields


def _totals(fields: Fields, found: dict[str, list[Candidate]], lines: list[str]) -> None:
    nets = [c for c in found["net_amount"] if Decimal(c.value) > 0]
    taxes = list(found["tax_amount"])
    totals = [c for c in found["total_amount"] if Decimal(c.value) > 0]
    best: tuple[Candidate, Candidate, Candidate] | None = None
    for net, tax, total in product(nets, taxes, totals):
        balanced = abs(Decimal(net.value) + Decimal(tax.value) - Decimal(total.value))
        if balanced <= Decimal("0.01") and (
            best is None or Decimal(total.value) > Decimal(best[2].value)
        ):
            best = (net, tax, total)
    if best is not None:
        for name, candidate in zip(("net_amount", "tax_amount", "total_amount"), best, strict=True):
            fields.put(name, candidate.value, 0.98)
    else:
        for name, pool in (("net_amount", nets), ("tax_amount", taxes), ("total_amount", totals)):
            if pool:
                # The largest labelled total is the gross; otherwise the first found.
                chosen = (
                    max(pool, key=lambda c: Decimal(c.value))
                    if name == "total_amount"
                    else first(pool)
                )
                assert chosen is not None
                fields.put(name, chosen.value, chosen.confidence - 0.15)
    tax_line = next(
        (
            lines[c.line]
            for c in ([best[1]] if best else taxes)
            if normalise.parse_percent(lines[c.line])
        ),
        None,
    )
    if tax_line is not None:
        rate = normalise.parse_percent(tax_line)
        fields.put("tax_rate", rate, 0.9)
    elif (
        "net_amount" in fields.data
        and "tax_amount" in fields.data
        and Decimal(fields.data["net_amount"])
    ):
        rate_value = Decimal(fields.data["tax_amount"]) * 100 / Decimal(fields.data["net_amount"])
        if abs(rate_value - rate_value.quantize(Decimal("0.1"))) < Decimal("0.05"):
            fields.put("tax_rate", normalise.money(rate_value), 0.7)


def _ids(fields: Fields, found: dict[str, list[Candidate]], text: str) -> None:
    valid_vats = [(p, v) for p, v, ok in normalise.find_vat_ids(text) if ok]
    labelled_vats = [
        c for c in found["supplier_vat_id"] if any(c.value == v for _, v in valid_vats)
    ]
    if labelled_vats:
        fields.take("supplier_vat_id", labelled_vats)
        fields.confidence["supplier_vat_id"] = 0.97
    elif valid_vats:
        fields.put("supplier_vat_id", valid_vats[0][1], 0.75)
    elif found["supplier_vat_id"]:
        best = first(found["supplier_vat_id"])
        assert best is not None
        fields.put("supplier_vat_id", best.value, 0.4)
    ibans = normalise.find_ibans(text)
    valid = [iban for _, iban, ok in ibans if ok]
    if valid:
        fields.put("supplier_iban", valid[0], 0.97)
    elif ibans:
        fields.put("supplier_iban", ibans[0][1], 0.4)


def _parties(fields: Fields, lines: list[str]) -> None:
    customer = labelled_name(lines, CUSTOMER_LABEL)
    if customer is not None:
        fields.put("customer_name", customer.value, customer.confidence)
    customer_lines = {customer.line} if customer else set()
    supplier = labelled_name(lines, SUPPLIER_LABEL)
    if supplier is None:
        companies = [
            c
            for c in company_candidates(lines, customer_lines)
            if c.value != (customer.value if customer else None)
        ]
        supplier = companies[0] if companies else first_line_name(lines, _TITLE)
    if supplier is not None:
        fields.put("supplier_name", supplier.value, supplier.confidence)
