"""A generated corpus with ground truth: invoices, receipts, delivery notes
and contracts in English and German, five layouts per type (label: value,
value right of the label, a row of labels over a row of values, value under
its label, other label words and formats), as PDFs with a text layer; and
scans of them (rendered at 300 dpi, then rotated, blurred, noised and
JPEG-compressed) as image-only PDFs, PNGs or multi-page TIFFs.

Everything is seeded: the same call gives the same bytes."""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pypdfium2 as pdfium
from fpdf import FPDF
from PIL import Image, ImageFilter
from stdnum import iban as stdnum_iban
from stdnum.gb import vat as british_vat
from stdnum.iso7064 import mod_11_10

LAYOUTS = 5
LANGUAGES = ("en", "de")
TYPES = ("invoice", "receipt", "delivery_note", "contract")

EN_COMPANIES = [
    "Northwind Supplies Ltd",
    "Bluefield Trading Ltd",
    "Harbor Tools LLC",
    "Kestrel Office Products Inc.",
    "Granite Peak Services Ltd",
    "Silverline Components plc",
]
DE_COMPANIES = [
    "Müller Bürobedarf GmbH",
    "Schneider Technik AG",
    "Becker & Söhne KG",
    "Hoffmann Logistik GmbH",
    "Weber Elektro GmbH",
    "Krause Maschinenbau GmbH",
]
EN_ITEMS = [
    "Printer paper A4",
    "Ballpoint pens",
    "Desk lamp",
    "USB-C cable",
    "Office chair",
    "Consulting hours",
    "Stapler",
    "Monitor stand",
]
DE_ITEMS = [
    "Druckerpapier A4",
    "Kugelschreiber",
    "Schreibtischlampe",
    "USB-C Kabel",
    "Bürostuhl",
    "Beratungsstunden",
    "Hefter",
    "Monitorständer",
]
EN_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
DE_MONTHS = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
]


@dataclass
class Sample:
    """One generated document: its file, the text it holds, and the truth."""

    name: str
    document_type: str
    language: str
    layout: int
    pdf: bytes
    truth: dict[str, Any]
    lines: list[str] = field(default_factory=list)


def money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def fmt_amount(value: Decimal, language: str, style: int) -> str:
    text = f"{value.quantize(Decimal('0.01')):,.2f}"
    if language == "de":
        text = text.replace(",", "X").replace(".", ",").replace("X", ".")
        return f"{text} €" if style % 2 == 0 else f"{text} EUR"
    return [f"£{text}", f"{text} GBP", f"£ {text}"][style % 3]


def fmt_date(value: date, language: str, style: int) -> str:
    if language == "de":
        return [
            f"{value:%d.%m.%Y}",
            f"{value.day}. {DE_MONTHS[value.month - 1]} {value.year}",
            f"{value:%d.%m.%Y}",
            f"{value:%Y-%m-%d}",
            f"{value.day}.{value.month}.{value.year}",
        ][style % 5]
    return [
        f"{value.day} {EN_MONTHS[value.month - 1]} {value.year}",
        f"{EN_MONTHS[value.month - 1]} {value.day}, {value.year}",
        f"{value:%Y-%m-%d}",
        f"{value.day} {EN_MONTHS[value.month - 1][:3]} {value.year}",
        f"{value:%d.%m.%Y}",
    ][style % 5]


def de_vat(rng: random.Random) -> str:
    base = str(rng.randint(10_000_000, 99_999_999))
    return "DE" + base + mod_11_10.calc_check_digit(base)


def gb_vat(rng: random.Random) -> str:
    while True:
        number = "GB" + str(rng.randint(100_000_000, 999_999_999))
        if british_vat.is_valid(number):
            return number


def iban(rng: random.Random, country: str) -> str:
    if country == "DE":
        bban = "".join(str(rng.randint(0, 9)) for _ in range(18))
    else:
        bban = "NWBK" + "".join(str(rng.randint(0, 9)) for _ in range(14))
    check = stdnum_iban.calc_check_digits(f"{country}00{bban}")
    number = f"{country}{check}{bban}"
    assert stdnum_iban.is_valid(number)
    return number


def spaced(value: str, every: int = 4) -> str:
    return " ".join(value[i : i + every] for i in range(0, len(value), every))


class Doc:
    """A page writer on fpdf2, tracking the lines it wrote."""

    def __init__(self, width: float = 210, height: float = 297) -> None:
        self.pdf = FPDF(unit="mm", format=(width, height))
        self.pdf.set_auto_page_break(False)
        # A core font in Windows-1252: €, umlauts and German quotes, and no
        # font file to parse (a TrueType font costs ~0.3 s per document).
        self.pdf.core_fonts_encoding = "windows-1252"
        self.pdf.add_page()
        self.width = width
        self.y = 15.0
        self.lines: list[str] = []

    def text(self, x: float, y: float, value: str, size: float = 10, bold: bool = False) -> None:
        self.pdf.set_font("Helvetica", "B" if bold else "", size)
        self.pdf.text(x, y, value)

    def line(
        self, value: str, size: float = 10, bold: bool = False, x: float = 15, gap: float = 6
    ) -> None:
        self.text(x, self.y, value, size, bold)
        self.lines.append(value)
        self.y += gap

    def row(
        self, cells: list[tuple[float, str]], size: float = 10, bold: bool = False, gap: float = 6
    ) -> None:
        for x, value in cells:
            self.text(x, self.y, value, size, bold)
        self.lines.append(" ".join(value for _, value in cells))
        self.y += gap

    def skip(self, amount: float = 4) -> None:
        self.y += amount

    def new_page(self) -> None:
        self.pdf.add_page()
        self.y = 15.0

    def bytes(self) -> bytes:
        return bytes(self.pdf.output())


def fields_block(doc: Doc, pairs: list[tuple[str, str]], layout: int, x: float = 15) -> None:
    """Label/value pairs in one of the layouts."""
    if layout == 0:
        for label, value in pairs:
            doc.line(f"{label}: {value}", x=x)
    elif layout == 1:
        for label, value in pairs:
            doc.row([(x, label), (x + 55, value)])
    elif layout == 2:
        width = (doc.width - 2 * x) / len(pairs)
        doc.row(
            [(x + i * width, label) for i, (label, _) in enumerate(pairs)], size=8, bold=True, gap=5
        )
        doc.row([(x + i * width, value) for i, (_, value) in enumerate(pairs)], size=9)
    elif layout == 3:
        for label, value in pairs:
            doc.line(label, size=8, bold=True, gap=4.5, x=x)
            doc.line(value, gap=7, x=x)
    else:
        for label, value in pairs:
            doc.row([(x, f"{label}"), (x + 45, value)])


LABELS = {
    "en": [
        {
            "title": "INVOICE",
            "number": "Invoice No.",
            "date": "Invoice Date",
            "due": "Due Date",
            "order": "Order No.",
            "bill": "Bill to",
            "net": "Subtotal",
            "tax": "VAT",
            "total": "Total",
            "vat": "VAT ID",
            "desc": "Description",
            "qty": "Qty",
            "unit": "Unit price",
            "amount": "Amount",
        },
        {
            "title": "Invoice",
            "number": "Invoice number",
            "date": "Date",
            "due": "Payment due",
            "order": "Purchase order",
            "bill": "Invoice to",
            "net": "Net amount",
            "tax": "VAT",
            "total": "Total due",
            "vat": "VAT Reg. No.",
            "desc": "Item",
            "qty": "Quantity",
            "unit": "Price",
            "amount": "Total",
        },
        {
            "title": "TAX INVOICE",
            "number": "Invoice #",
            "date": "Invoice date",
            "due": "Due date",
            "order": "PO Number",
            "bill": "Customer",
            "net": "Net total",
            "tax": "Tax",
            "total": "Amount due",
            "vat": "VAT number",
            "desc": "Description",
            "qty": "Qty",
            "unit": "Rate",
            "amount": "Amount",
        },
        {
            "title": "INVOICE",
            "number": "Invoice Number",
            "date": "Issued",
            "due": "Due by",
            "order": "Your order",
            "bill": "Billed to",
            "net": "Subtotal",
            "tax": "Sales tax",
            "total": "Grand total",
            "vat": "VAT ID",
            "desc": "Service",
            "qty": "Units",
            "unit": "Unit cost",
            "amount": "Line total",
        },
        {
            "title": "Invoice",
            "number": "Invoice no",
            "date": "Date of invoice",
            "due": "Pay by",
            "order": "Order number",
            "bill": "Sold to",
            "net": "Amount before tax",
            "tax": "VAT",
            "total": "Balance due",
            "vat": "VAT No.",
            "desc": "Product",
            "qty": "Qty",
            "unit": "Unit price",
            "amount": "Amount",
        },
    ],
    "de": [
        {
            "title": "RECHNUNG",
            "number": "Rechnungsnummer",
            "date": "Rechnungsdatum",
            "due": "Fällig am",
            "order": "Bestellnummer",
            "bill": "Rechnungsempfänger",
            "net": "Nettobetrag",
            "tax": "MwSt.",
            "total": "Gesamtbetrag",
            "vat": "USt-IdNr.",
            "desc": "Beschreibung",
            "qty": "Menge",
            "unit": "Einzelpreis",
            "amount": "Betrag",
        },
        {
            "title": "Rechnung",
            "number": "Rechnungs-Nr.",
            "date": "Datum",
            "due": "Zahlbar bis",
            "order": "Ihre Bestellung",
            "bill": "Kunde",
            "net": "Zwischensumme",
            "tax": "USt.",
            "total": "Rechnungsbetrag",
            "vat": "USt-IdNr.",
            "desc": "Bezeichnung",
            "qty": "Anzahl",
            "unit": "Preis",
            "amount": "Gesamt",
        },
        {
            "title": "RECHNUNG",
            "number": "Rechnung Nr.",
            "date": "Rechnungsdatum",
            "due": "Fälligkeitsdatum",
            "order": "Auftragsnummer",
            "bill": "Rechnungsadresse",
            "net": "Summe netto",
            "tax": "Umsatzsteuer",
            "total": "Summe brutto",
            "vat": "Umsatzsteuer-ID",
            "desc": "Artikel",
            "qty": "Menge",
            "unit": "E-Preis",
            "amount": "Betrag",
        },
        {
            "title": "Rechnung",
            "number": "Re.-Nr.",
            "date": "Datum",
            "due": "Zahlungsziel",
            "order": "Bestell-Nr.",
            "bill": "Rechnungsempfänger",
            "net": "Netto",
            "tax": "zzgl. MwSt.",
            "total": "Zu zahlen",
            "vat": "USt-IdNr.",
            "desc": "Leistung",
            "qty": "Menge",
            "unit": "Einzelpreis",
            "amount": "Gesamtpreis",
        },
        {
            "title": "RECHNUNG",
            "number": "Rechnungsnummer",
            "date": "Datum",
            "due": "Fällig bis",
            "order": "Bestellnummer",
            "bill": "An",
            "net": "Gesamt netto",
            "tax": "MwSt.",
            "total": "Endbetrag",
            "vat": "UID-Nr.",
            "desc": "Bezeichnung",
            "qty": "Menge",
            "unit": "Einzelpreis",
            "amount": "Summe",
        },
    ],
}


def _items(rng: random.Random, language: str, count: int) -> list[tuple[str, int, Decimal]]:
    names = rng.sample(EN_ITEMS if language == "en" else DE_ITEMS, count)
    return [(name, rng.randint(1, 12), Decimal(rng.randint(150, 25_000)) / 100) for name in names]


def invoice(seed: int, language: str, layout: int) -> Sample:
    rng = random.Random(f"invoice-{seed}-{language}-{layout}")
    labels = LABELS[language][layout]
    companies = EN_COMPANIES if language == "en" else DE_COMPANIES
    supplier, customer = rng.sample(companies, 2)
    country = "GB" if language == "en" else "DE"
    vat_id = gb_vat(rng) if language == "en" else de_vat(rng)
    account = iban(rng, country)
    number = rng.choice(["INV-", "RE-", "", "2026/"]) + str(rng.randint(1000, 99999))
    order = rng.choice(["PO-", "B-", "ORD"]) + str(rng.randint(10000, 999999))
    issued = date(2026, 1, 1) + timedelta(days=rng.randint(0, 330))
    due = issued + timedelta(days=rng.choice([14, 30]))
    rate = Decimal(20 if language == "en" else rng.choice([19, 7]))
    items = _items(rng, language, rng.randint(2, 4))
    net = sum((qty * price for _, qty, price in items), Decimal(0))
    tax = (net * rate / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    total = net + tax
    style = seed + layout
    doc = Doc()
    doc.line(supplier, size=14, bold=True)
    doc.line(
        "12 High Street, London" if language == "en" else "Hauptstraße 12, 10115 Berlin", size=9
    )
    doc.skip()
    doc.line(labels["title"], size=16, bold=True, gap=9)
    fields = [
        (labels["number"], number),
        (labels["date"], fmt_date(issued, language, style)),
        (labels["due"], fmt_date(due, language, style)),
        (labels["order"], order),
    ]
    fields_block(doc, fields, layout)
    doc.skip()
    if layout in (2, 3):
        doc.line(labels["bill"], size=8, bold=True, gap=4.5)
        doc.line(customer)
    else:
        doc.line(f"{labels['bill']}: {customer}")
    doc.line("45 Market Road, Leeds" if language == "en" else "Gartenweg 3, 80331 München", size=9)
    doc.skip(6)
    qty_first = layout == 4
    if qty_first:
        head = [
            (15, labels["qty"]),
            (35, labels["desc"]),
            (120, labels["unit"]),
            (160, labels["amount"]),
        ]
    else:
        head = [
            (15, labels["desc"]),
            (100, labels["qty"]),
            (125, labels["unit"]),
            (160, labels["amount"]),
        ]
    doc.row(head, bold=True)
    for name, qty, price in items:
        cells = [fmt_amount(price, language, style), fmt_amount(qty * price, language, style)]
        if qty_first:
            doc.row([(15, str(qty)), (35, name), (120, cells[0]), (160, cells[1])])
        else:
            doc.row([(15, name), (100, str(qty)), (125, cells[0]), (160, cells[1])])
    doc.skip()
    rate_text = f"{rate}%" if language == "en" else f"{rate} %"
    doc.row([(110, labels["net"]), (160, fmt_amount(net, language, style))])
    doc.row([(110, f"{labels['tax']} {rate_text}"), (160, fmt_amount(tax, language, style))])
    doc.row([(110, labels["total"]), (160, fmt_amount(total, language, style))], bold=True)
    doc.skip(10)
    doc.line(
        f"{labels['vat']}: {vat_id[:2]} {vat_id[2:]}"
        if layout % 2
        else f"{labels['vat']}: {vat_id}",
        size=8,
        gap=4.5,
    )
    doc.line(f"IBAN: {spaced(account)}", size=8, gap=4.5)
    truth = {
        "invoice_number": number,
        "invoice_date": issued.isoformat(),
        "due_date": due.isoformat(),
        "supplier_name": supplier,
        "supplier_vat_id": vat_id,
        "supplier_iban": account,
        "customer_name": customer,
        "order_number": order,
        "currency": "GBP" if language == "en" else "EUR",
        "net_amount": money(net),
        "tax_amount": money(tax),
        "tax_rate": money(rate),
        "total_amount": money(total),
        "line_items": [
            {
                "description": name,
                "quantity": qty,
                "unit_price": money(price),
                "amount": money(qty * price),
            }
            for name, qty, price in items
        ],
    }
    return Sample(
        f"invoice-{language}-{layout}-{seed}",
        "invoice",
        language,
        layout,
        doc.bytes(),
        truth,
        doc.lines,
    )


RECEIPT_LABELS = {
    "en": [
        ("RECEIPT", "TOTAL", "incl. VAT 20%", "Date"),
        ("Sales receipt", "Total", "VAT 20%", "Date"),
        ("RECEIPT", "Amount due", "Tax 20%", "Date"),
        ("Thank you", "TOTAL GBP", "VAT 20%", "Receipt date"),
        ("RECEIPT", "Grand total", "includes VAT 20%", "Date"),
    ],
    "de": [
        ("KASSENBON", "SUMME", "inkl. MwSt. 19%", "Datum"),
        ("Kassenbeleg", "Gesamt", "MwSt. 19 %", "Datum"),
        ("QUITTUNG", "Zu zahlen", "enthaltene MwSt. 19%", "Datum"),
        ("Bon-Nr. 4711", "SUMME EUR", "USt. 19%", "Datum"),
        ("KASSENBON", "Gesamtbetrag", "darin MwSt. 19%", "Belegdatum"),
    ],
}


def receipt(seed: int, language: str, layout: int) -> Sample:
    rng = random.Random(f"receipt-{seed}-{language}-{layout}")
    title, total_label, tax_label, date_label = RECEIPT_LABELS[language][layout]
    merchant = rng.choice(
        ["Corner Café Ltd", "Greenleaf Market Ltd", "City Books Ltd"]
        if language == "en"
        else ["Bäckerei Schmidt GmbH", "Frischmarkt Nord GmbH", "Buchhandlung Lange e.K."]
    )
    when = date(2026, 1, 1) + timedelta(days=rng.randint(0, 330))
    items = _items(rng, language, rng.randint(2, 4))
    items = [(name, qty % 3 + 1, price / 10) for name, qty, price in items]
    items = [(name, qty, price.quantize(Decimal("0.01"))) for name, qty, price in items]
    total = sum((qty * price for _, qty, price in items), Decimal(0))
    rate = Decimal(20 if language == "en" else 19)
    tax = (total * rate / (100 + rate)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    method = rng.choice(["card", "cash"])
    style = seed + layout
    doc = Doc(width=90, height=160)
    doc.line(merchant, size=11, bold=True, x=6)
    doc.line(
        "1 Station Road, York" if language == "en" else "Bahnhofstr. 5, 50667 Köln",
        size=8,
        x=6,
        gap=5,
    )
    doc.line(title, size=11, bold=True, x=6)
    if layout % 2:
        doc.row([(6, date_label), (40, fmt_date(when, language, style))], size=8)
    else:
        doc.line(
            f"{date_label}: {fmt_date(when, language, style)} 14:{rng.randint(10, 59)}", size=8, x=6
        )
    doc.skip(2)
    for name, qty, price in items:
        doc.row(
            [(6, f"{name}"), (50, f"{qty} x {money(price)}"), (72, money(qty * price))],
            size=8,
            gap=5,
        )
    doc.skip(2)
    doc.row([(6, total_label), (66, fmt_amount(total, language, style))], size=10, bold=True)
    doc.row([(6, tax_label), (66, fmt_amount(tax, language, style))], size=8, gap=5)
    paid = {
        "en": {"card": "Paid by card (Visa)", "cash": "Cash"},
        "de": {"card": "Kartenzahlung girocard", "cash": "Bar"},
    }[language][method]
    doc.row([(6, paid), (66, fmt_amount(total, language, style))], size=8, gap=5)
    doc.line(
        "Thank you for shopping with us" if language == "en" else "Vielen Dank für Ihren Einkauf",
        size=8,
        x=6,
    )
    truth = {
        "merchant_name": merchant,
        "receipt_date": when.isoformat(),
        "currency": "GBP" if language == "en" else "EUR",
        "total_amount": money(total),
        "tax_amount": money(tax),
        "payment_method": method,
    }
    return Sample(
        f"receipt-{language}-{layout}-{seed}",
        "receipt",
        language,
        layout,
        doc.bytes(),
        truth,
        doc.lines,
    )


DELIVERY_LABELS = {
    "en": [
        ("DELIVERY NOTE", "Delivery note no.", "Delivery date", "Order No."),
        ("Delivery Note", "Delivery No.", "Date", "Your order"),
        ("PACKING SLIP", "Packing slip no.", "Ship date", "PO Number"),
        ("Delivery note", "Delivery note number", "Delivered on", "Order number"),
        ("DELIVERY NOTE", "Delivery note #", "Dispatch date", "Purchase order"),
    ],
    "de": [
        ("LIEFERSCHEIN", "Lieferschein-Nr.", "Lieferdatum", "Bestellnummer"),
        ("Lieferschein", "Lieferscheinnummer", "Datum", "Ihre Bestellung"),
        ("LIEFERSCHEIN", "Liefer-Nr.", "Liefertermin", "Auftragsnummer"),
        ("Lieferschein", "Lieferschein Nr.", "Versanddatum", "Bestell-Nr."),
        ("LIEFERSCHEIN", "Lieferscheinnummer", "Lieferdatum", "Auftrags-Nr."),
    ],
}


def delivery_note(seed: int, language: str, layout: int) -> Sample:
    rng = random.Random(f"delivery-{seed}-{language}-{layout}")
    title, number_label, date_label, order_label = DELIVERY_LABELS[language][layout]
    companies = EN_COMPANIES if language == "en" else DE_COMPANIES
    supplier, recipient = rng.sample(companies, 2)
    number = rng.choice(["DN-", "LS-", ""]) + str(rng.randint(10000, 999999))
    order = rng.choice(["PO-", "B-"]) + str(rng.randint(10000, 999999))
    when = date(2026, 1, 1) + timedelta(days=rng.randint(0, 330))
    items = [(name, qty) for name, qty, _ in _items(rng, language, rng.randint(2, 5))]
    style = seed + layout
    doc = Doc()
    doc.line(supplier, size=14, bold=True)
    doc.line(
        "Unit 4, Dock Road, Bristol" if language == "en" else "Industriestraße 8, 70173 Stuttgart",
        size=9,
    )
    doc.skip()
    doc.line(title, size=16, bold=True, gap=9)
    fields_block(
        doc,
        [
            (number_label, number),
            (date_label, fmt_date(when, language, style)),
            (order_label, order),
        ],
        layout,
    )
    doc.skip()
    doc.line(("Ship to" if language == "en" else "Lieferadresse") + f": {recipient}")
    doc.skip(6)
    qty_label = (
        ["Qty", "Quantity", "Qty", "Units", "Quantity"][layout]
        if language == "en"
        else ["Menge", "Anzahl", "Menge", "Menge", "Stück"][layout]
    )
    desc_label = (
        ["Description", "Item", "Article", "Description", "Product"][layout]
        if language == "en"
        else ["Bezeichnung", "Artikel", "Beschreibung", "Artikelbezeichnung", "Bezeichnung"][layout]
    )
    unit = "pcs" if language == "en" else "Stk."
    if layout in (1, 3):
        doc.row([(15, "Pos."), (30, desc_label), (150, qty_label)], bold=True)
        for index, (name, qty) in enumerate(items, 1):
            doc.row([(15, str(index)), (30, name), (150, f"{qty} {unit}")])
    elif layout == 4:
        doc.row([(15, qty_label), (40, desc_label)], bold=True)
        for name, qty in items:
            doc.row([(15, str(qty)), (40, name)])
    else:
        doc.row([(15, desc_label), (150, qty_label)], bold=True)
        for name, qty in items:
            doc.row([(15, name), (150, str(qty))])
    doc.skip(8)
    doc.line(
        "Received by: ____________" if language == "en" else "Ware erhalten: ____________", size=9
    )
    truth = {
        "delivery_note_number": number,
        "delivery_date": when.isoformat(),
        "supplier_name": supplier,
        "order_number": order,
        "items": [{"description": name, "quantity": qty} for name, qty in items],
    }
    return Sample(
        f"delivery-{language}-{layout}-{seed}",
        "delivery_note",
        language,
        layout,
        doc.bytes(),
        truth,
        doc.lines,
    )


def contract(seed: int, language: str, layout: int) -> Sample:
    rng = random.Random(f"contract-{seed}-{language}-{layout}")
    companies = EN_COMPANIES if language == "en" else DE_COMPANIES
    first, second = rng.sample(companies, 2)
    number = rng.choice(["C-", "V-", "AGR-"]) + str(rng.randint(1000, 99999))
    start = date(2026, 1, 1) + timedelta(days=rng.randint(0, 200))
    end = start + timedelta(days=365 * rng.choice([1, 2]) - 1)
    style = seed + layout
    s, e = fmt_date(start, language, style), fmt_date(end, language, style)
    doc = Doc()
    if language == "en":
        title = [
            "SERVICE AGREEMENT",
            "Consulting Contract",
            "MAINTENANCE AGREEMENT",
            "Supply Agreement",
            "LICENCE AGREEMENT",
        ][layout]
        doc.line(title, size=16, bold=True, gap=9)
        number_label = [
            "Contract No.",
            "Contract number",
            "Agreement No.",
            "Reference",
            "Contract ID",
        ][layout]
        doc.line(f"{number_label}: {number}")
        doc.skip()
        if layout in (0, 2):
            doc.line("This agreement is made between")
            doc.line(f'{first} (hereinafter "Client")')
            doc.line("and")
            doc.line(f'{second} (hereinafter "Contractor").')
        elif layout == 1:
            doc.line(f"This contract is entered into between {first} and {second}.")
        else:
            doc.line(f"Client: {first}")
            doc.line(f"Contractor: {second}")
        doc.skip()
        doc.line("1. Subject", bold=True)
        doc.line("The Contractor provides the services described in Annex 1 to the Client.")
        doc.line("2. Term", bold=True)
        if layout in (0, 3):
            doc.line(f"Effective date: {s}")
            doc.line(f"End date: {e}")
        elif layout == 1:
            doc.line(f"This contract commences on {s} and ends on {e}.")
        else:
            doc.line(f"The agreement shall commence on {s} and terminates on {e}.")
        doc.line("3. Termination", bold=True)
        doc.line("Either party may terminate this agreement with three months' notice.")
        doc.line("4. Governing law", bold=True)
        doc.line("This agreement is governed by the laws of England and Wales.")
    else:
        title = [
            "DIENSTLEISTUNGSVERTRAG",
            "Beratungsvertrag",
            "WARTUNGSVERTRAG",
            "Liefervertrag",
            "LIZENZVERTRAG",
        ][layout]
        doc.line(title, size=16, bold=True, gap=9)
        number_label = [
            "Vertragsnummer",
            "Vertrags-Nr.",
            "Vertragsnummer",
            "Vertrag Nr.",
            "Aktenzeichen",
        ][layout]
        doc.line(f"{number_label}: {number}")
        doc.skip()
        if layout in (0, 2):
            doc.line("Dieser Vertrag wird geschlossen zwischen")
            doc.line(f"{first} (nachfolgend „Auftraggeber“)")
            doc.line("und")
            doc.line(f"{second} (nachfolgend „Auftragnehmer“).")
        elif layout == 1:
            doc.line(f"Vertrag zwischen der {first} und der {second}.")
        else:
            doc.line(f"Auftraggeber: {first}")
            doc.line(f"Auftragnehmer: {second}")
        doc.skip()
        doc.line("§ 1 Vertragsgegenstand", bold=True)
        doc.line("Der Auftragnehmer erbringt die in Anlage 1 beschriebenen Leistungen.")
        doc.line("§ 2 Laufzeit", bold=True)
        if layout in (0, 3):
            doc.line(f"Vertragsbeginn: {s}")
            doc.line(f"Vertragsende: {e}")
        elif layout == 1:
            doc.line(f"Der Vertrag beginnt am {s} und endet am {e}.")
        else:
            doc.line(f"Der Vertrag ist gültig ab {s} und läuft bis {e}.")
        doc.line("§ 3 Kündigung", bold=True)
        doc.line("Jede Partei kann den Vertrag mit einer Frist von drei Monaten kündigen.")
        doc.line("§ 4 Gerichtsstand", bold=True)
        doc.line("Gerichtsstand ist Berlin.")
    truth = {
        "contract_number": number,
        "parties": [first, second],
        "effective_date": start.isoformat(),
        "end_date": end.isoformat(),
    }
    return Sample(
        f"contract-{language}-{layout}-{seed}",
        "contract",
        language,
        layout,
        doc.bytes(),
        truth,
        doc.lines,
    )


GENERATORS = {
    "invoice": invoice,
    "receipt": receipt,
    "delivery_note": delivery_note,
    "contract": contract,
}


def corpus(seeds: range = range(1)) -> list[Sample]:
    """Every type x language x layout, for each seed."""
    return [
        GENERATORS[kind](seed, language, layout)
        for seed in seeds
        for kind in TYPES
        for language in LANGUAGES
        for layout in range(LAYOUTS)
    ]


# --------------------------------------------------------------------- scans
def render_pages(pdf: bytes, dpi: int = 300) -> list[Image.Image]:
    document = pdfium.PdfDocument(pdf)
    try:
        return [
            document[i].render(scale=dpi / 72, grayscale=True).to_pil().copy()
            for i in range(len(document))
        ]
    finally:
        document.close()


def degrade(image: Image.Image, seed: int, *, strength: float = 1.0) -> Image.Image:
    """A scanner's marks: a small rotation, blur, noise and JPEG artefacts."""
    rng = random.Random(seed)
    image = image.convert("L")
    angle = rng.uniform(-1.2, 1.2) * strength
    image = image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=255)
    image = image.filter(ImageFilter.GaussianBlur(0.6 * strength))
    noise = Image.effect_noise(image.size, 18 * strength)
    image = Image.blend(image, noise, 0.08 * strength)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=int(70 - 20 * strength))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("L")


def image_pdf(images: list[Image.Image], dpi: int = 300) -> bytes:
    """An image-only PDF (no text layer), one page per image."""
    pdf = FPDF(unit="pt")
    pdf.set_auto_page_break(False)
    for image in images:
        width, height = image.width * 72 / dpi, image.height * 72 / dpi
        pdf.add_page(format=(width, height))
        pdf.image(image, 0, 0, width, height)
    return bytes(pdf.output())


def tiff(images: list[Image.Image], dpi: int = 300) -> bytes:
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        "TIFF",
        save_all=True,
        append_images=images[1:],
        dpi=(dpi, dpi),
        compression="tiff_lzw",
    )
    return buffer.getvalue()


def png(image: Image.Image, dpi: int = 300) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", dpi=(dpi, dpi))
    return buffer.getvalue()


def text_page(
    lines: list[str], *, width: float = 148, height: float = 105, size: float = 12
) -> bytes:
    """A small page of plain lines (for character error rates)."""
    doc = Doc(width=width, height=height)
    doc.y = 14
    for value in lines:
        doc.line(value, size=size, x=8, gap=size * 0.6)
    return doc.bytes()


def cer(expected: str, actual: str) -> float:
    """Character error rate: edit distance / expected length (whitespace collapsed)."""
    a, b = " ".join(expected.split()), " ".join(actual.split())
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1] / max(len(a), 1)


def merge_pdfs(parts: list[bytes]) -> bytes:
    """One PDF holding the pages of `parts` in order."""
    merged = pdfium.PdfDocument.new()
    sources = [pdfium.PdfDocument(part) for part in parts]
    try:
        for source in sources:
            merged.import_pages(source)
        buffer = io.BytesIO()
        merged.save(buffer)
        return buffer.getvalue()
    finally:
        for source in sources:
            source.close()
        merged.close()
