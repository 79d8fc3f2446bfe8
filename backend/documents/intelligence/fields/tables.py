"""Item tables: a header line naming the columns (description, quantity,
unit price, amount, in English or German), then one row per line until a
totals line or a gap. A row's numbers are read from the right; the header's
column order says which is which, and quantity x unit price = amount, when
all three are there, picks between readings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from backend.documents.intelligence.fields import normalise

DESCRIPTION = (
    r"description|item|article|product|service|beschreibung|bezeichnung|"
    r"artikel(?:bezeichnung)?|leistung|produkt"
)
QUANTITY = r"qty|quantity|quant\.|units|menge|anzahl|stk\.?|stück"
UNIT_PRICE = r"unit price|price|rate|unit cost|einzelpreis|e-?preis|preis"
AMOUNT = r"amount|line total|total|betrag|gesamtpreis|gesamt|summe"
_HEADER = {
    "description": re.compile(rf"(?<![\w])(?:{DESCRIPTION})(?![\w])", re.I),
    "quantity": re.compile(rf"(?<![\w])(?:{QUANTITY})(?![\w])", re.I),
    "unit_price": re.compile(rf"(?<![\w])(?:{UNIT_PRICE})(?![\w])", re.I),
    "amount": re.compile(rf"(?<![\w])(?:{AMOUNT})(?![\w])", re.I),
}
END = re.compile(
    r"^(?:sub-?total|net|total|tax|vat|zwischensumme|summe|netto|gesamt|mwst|ust|"
    r"nettobetrag|rechnungsbetrag|amount due|grand total|endbetrag|payment|zahlbar|"
    r"received|empfangen|signature|unterschrift|thank|vielen dank|bitte)\b",
    re.I,
)
_NUMBER = re.compile(
    r"(?:(?<=\s)|^)(?:[€$£]\s?)?-?\d[\d.,']*(?:\s?(?:[€$£]|EUR|USD|GBP|CHF))?(?=\s|$)", re.I
)
_UNIT_WORD = re.compile(
    r"^(?:x|pcs\.?|pc\.?|pieces|units?|stk\.?|st\.|stück|h|hrs?|std\.?|kg|m|l|pkt\.?|box(?:es)?)$",
    re.I,
)


@dataclass(slots=True)
class Header:
    line: int
    columns: list[str]
    numbered: bool = False  # a position column ("Pos.", "#", "No.") comes first


def find_header(lines: list[str], *, need_prices: bool) -> Header | None:
    for index, line in enumerate(lines):
        found = []
        for name, pattern in _HEADER.items():
            match = pattern.search(line)
            if match:
                found.append((match.start(), name))
        names = {name for _, name in found}
        if "description" not in names or "quantity" not in names:
            continue
        if need_prices and "amount" not in names and "unit_price" not in names:
            continue
        numbered = bool(re.match(r"\s*(?:pos\.?|position|#|no\.?|nr\.?)\s", line, re.I))
        return Header(index, [name for _, name in sorted(found)], numbered)
    return None


def _quantity(token: str) -> Decimal | None:
    token = token.strip()
    if not re.fullmatch(r"\d{1,6}(?:[.,]\d{1,3})?", token):
        return None
    return Decimal(token.replace(",", "."))


def _fmt_quantity(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


# A line of numbers only: the right-hand cells of a row that a text layer
# split off onto a line of their own (PDFium does when the gap is wide).
_NUMBERS_ONLY = re.compile(
    r"^(?:[€$£]\s?)?\d[\d.,']*(?:\s+(?:[€$£]\s?)?\d[\d.,']*|\s?[€$£]|\s(?:EUR|USD|GBP|CHF)|"
    r"\s(?:pcs\.?|stk\.?|units?|x))*$",
    re.I,
)


def parse_rows(lines: list[str], header: Header, *, prices: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    blank = 0
    body = lines[header.line + 1 :]
    index = 0
    while index < len(body):
        line = body[index]
        index += 1
        if not line.strip():
            blank += 1
            if blank >= 2 and rows:
                break
            continue
        blank = 0
        if END.search(line) or len(rows) >= 200:
            break
        row = _parse_row(line, header, prices=prices)
        if row is None and index < len(body) and _NUMBERS_ONLY.match(body[index]):
            row = _parse_row(f"{line} {body[index]}", header, prices=prices)
            index += 1
        if row is not None:
            rows.append(row)
        elif rows:
            break
    return rows


def _parse_row(line: str, header: Header, *, prices: bool) -> dict[str, Any] | None:
    tokens = line.split(" ")
    # A leading position number ("1", "1.", "01"; OCR may read "1" as "i" or "l")
    # when the header does not start with quantity.
    if (
        header.columns[0] != "quantity"
        and len(tokens) > 2
        and (re.fullmatch(r"\d{1,3}\.?", tokens[0]) or (header.numbered and len(tokens[0]) == 1))
    ):
        tokens = tokens[1:]
    amounts: list[Decimal] = []
    if prices:
        while tokens:
            text = tokens[-1]
            if re.fullmatch(r"[€$£]|EUR|USD|GBP|CHF", text, re.I) and len(tokens) > 1:
                tokens = tokens[:-1]
                continue
            value = normalise.find_amounts(text)
            if not value or not re.search(r"[.,]\d{2}$", text.rstrip("€$£")):
                break
            amounts.insert(0, value[0][1])
            tokens = tokens[:-1]
        if not amounts:
            return None
    quantity: Decimal | None = None
    if header.columns and header.columns[0] == "quantity":
        quantity = _quantity(tokens[0]) if tokens else None
        if quantity is not None:
            tokens = tokens[1:]
            if tokens and _UNIT_WORD.match(tokens[0]):
                tokens = tokens[1:]
    else:
        while tokens and _UNIT_WORD.match(tokens[-1]):
            tokens = tokens[:-1]
        if tokens:
            quantity = _quantity(tokens[-1])
            if quantity is not None:
                tokens = tokens[:-1]
        while tokens and _UNIT_WORD.match(tokens[-1]):
            tokens = tokens[:-1]
    description = " ".join(tokens).strip(" -|")
    if quantity is None or not re.search(r"[^\W\d_]{2}", description):
        return None
    row: dict[str, Any] = {"description": description, "quantity": _fmt_quantity(quantity)}
    if prices:
        unit_price, amount = _prices(quantity, amounts)
        if unit_price is not None:
            row["unit_price"] = normalise.money(unit_price)
        row["amount"] = normalise.money(amount)
    return row


def _prices(quantity: Decimal, amounts: list[Decimal]) -> tuple[Decimal | None, Decimal]:
    amount = amounts[-1]
    if len(amounts) >= 2:
        for unit in reversed(amounts[:-1]):
            if abs(unit * quantity - amount) <= Decimal("0.02"):
                return unit, amount
        return amounts[-2], amount
    return None, amount
