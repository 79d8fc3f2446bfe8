"""Values as the API stores them: ISO dates, decimal amounts with two
decimals, ISO 4217 currencies, IBANs and VAT ids compact and upper case.
Each parser finds values inside a piece of text and answers None when there
is none."""

from __future__ import annotations

import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from stdnum import iban as stdnum_iban
from stdnum.ch import vat as swiss_vat
from stdnum.eu import vat as stdnum_vat
from stdnum.gb import vat as british_vat

MONTHS: dict[str, int] = {}
for number, names in enumerate(
    [
        ("january", "jan", "januar", "jänner", "jän"),
        ("february", "feb", "februar"),
        ("march", "mar", "märz", "maerz", "mrz"),
        ("april", "apr"),
        ("may", "mai"),
        ("june", "jun", "juni"),
        ("july", "jul", "juli"),
        ("august", "aug"),
        ("september", "sep", "sept"),
        ("october", "oct", "oktober", "okt"),
        ("november", "nov"),
        ("december", "dec", "dezember", "dez"),
    ],
    start=1,
):
    for name in names:
        MONTHS[name] = number

_MONTH = "|".join(sorted((re.escape(name) for name in MONTHS), key=len, reverse=True))
_DATE_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"), "ymd"),
    (re.compile(r"\b(\d{1,2})\.\s?(\d{1,2})\.\s?(\d{4}|\d{2})\b"), "dmy"),
    (re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b"), "slash"),
    (re.compile(r"\b(\d{1,2})-(\d{1,2})-(\d{4})\b"), "dmy"),
    (
        re.compile(
            rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\.?\s*(?:of\s+)?({_MONTH})\.?,?\s+(\d{{4}})\b", re.I
        ),
        "d_month_y",
    ),
    (re.compile(rf"\b(\d{{1,2}})-({_MONTH})-(\d{{4}})\b", re.I), "d_month_y"),
    (
        re.compile(rf"\b({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.I),
        "month_d_y",
    ),
]


def _make_date(year: int, month: int, day: int) -> date | None:
    if year < 100:
        year += 2000
    try:
        return date(year, month, day)
    except ValueError:
        return None


def find_dates(text: str, *, language: str | None = None) -> list[tuple[int, date]]:
    """Every date in `text` with its position, in order of appearance.
    `dd/mm/yyyy` versus `mm/dd/yyyy`: unambiguous values decide; otherwise
    English text reads month first and other text day first."""
    found: dict[int, date] = {}
    taken: list[tuple[int, int]] = []
    for pattern, kind in _DATE_PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(start < stop and end > begin for begin, stop in taken):
                continue
            a, b, c = match.groups()
            value: date | None
            if kind == "ymd":
                value = _make_date(int(a), int(b), int(c))
            elif kind == "dmy":
                value = _make_date(int(c), int(b), int(a))
            elif kind == "slash":
                first, second = int(a), int(b)
                month_first = language == "en" if first <= 12 and second <= 12 else first <= 12
                value = (
                    _make_date(int(c), first, second)
                    if month_first
                    else _make_date(int(c), second, first)
                )
            elif kind == "d_month_y":
                value = _make_date(int(c), MONTHS[b.lower()], int(a))
            else:
                value = _make_date(int(c), MONTHS[a.lower()], int(b))
            if value is not None and 1900 <= value.year <= 2100:
                found[start] = value
                taken.append((start, end))
    return sorted(found.items())


def parse_date(text: str, *, language: str | None = None) -> str | None:
    dates = find_dates(text, language=language)
    return dates[0][1].isoformat() if dates else None


CURRENCY_SYMBOLS = {"€": "EUR", "$": "USD", "£": "GBP", "¥": "JPY", "₣": "CHF"}
CURRENCY_CODES = (
    "EUR",
    "USD",
    "GBP",
    "CHF",
    "JPY",
    "SEK",
    "NOK",
    "DKK",
    "PLN",
    "CZK",
    "CAD",
    "AUD",
)
_CURRENCY = re.compile(
    r"(?<![A-Za-z])("
    + "|".join(CURRENCY_CODES)
    + r")(?![A-Za-z])|([€$£¥])|\b(Euro|Dollar|Pfund)\b",
    re.I,
)
_WORD_CURRENCY = {"euro": "EUR", "dollar": "USD", "pfund": "GBP"}

# An amount: digits with optional thousands groups (",", ".", space, "'")
# and an optional decimal part; a sign before or after.
_AMOUNT = re.compile(
    r"(?<![\w.,/\-])(-\s?)?(\d{1,3}(?:[.,'\u00a0\u202f]\d{3})+|\d+)([.,]\d{1,2})?(-)?(?![\w%/]|[.,]\d)"
)


def find_currencies(text: str) -> list[str]:
    codes = []
    for match in _CURRENCY.finditer(text):
        code, symbol, word = match.groups()
        if code:
            codes.append(code.upper())
        elif symbol:
            codes.append(CURRENCY_SYMBOLS[symbol])
        elif word:
            codes.append(_WORD_CURRENCY[word.lower()])
    return codes


def _to_decimal(whole: str, fraction: str | None) -> Decimal | None:
    digits = re.sub(r"[.,'\u00a0\u202f]", "", whole)
    if fraction:
        digits += "." + fraction[1:]
    try:
        return Decimal(digits)
    except InvalidOperation:
        return None


def find_amounts(text: str) -> list[tuple[int, Decimal, bool]]:
    """Amounts in `text`: (position, value, has_decimals). `1.234,50`,
    `1,234.50`, `1234.50`, `1 234,50` and `12,5` all read as written; a bare
    integer counts (has_decimals False) so callers can prefer real money."""
    found = []
    for match in _AMOUNT.finditer(text):
        sign, whole, fraction, trailing_sign = match.groups()
        value = _to_decimal(whole, fraction)
        if value is None:
            continue
        if sign or trailing_sign:
            value = -value
        found.append((match.start(), value, fraction is not None and len(fraction) == 3))
    return found


def money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def parse_amount(text: str) -> str | None:
    """The last money amount in `text` as a decimal string with two decimals."""
    amounts = find_amounts(text)
    with_decimals = [amount for amount in amounts if amount[2]]
    chosen = (with_decimals or amounts)[-1:] if amounts else []
    return money(chosen[0][1]) if chosen else None


_PERCENT = re.compile(r"(\d{1,2}(?:[.,]\d{1,2})?)\s?%")


def parse_percent(text: str) -> str | None:
    match = _PERCENT.search(text)
    if match is None:
        return None
    return money(Decimal(match.group(1).replace(",", ".")))


_IBAN = re.compile(r"\b([A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?)\b")


def find_ibans(text: str) -> list[tuple[int, str, bool]]:
    """IBAN-shaped strings (position, compact form, check digits valid)."""
    found = []
    for match in _IBAN.finditer(text.upper()):
        compact = stdnum_iban.compact(match.group(1))
        found.append((match.start(), compact, bool(stdnum_iban.is_valid(compact))))
    return found


_VAT = re.compile(
    r"\b((?:AT\s?U|BE|BG|CY|CZ|DE|DK|EE|EL|GR|ES|FI|FR|GB|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL|PT|RO|SE|SI|SK|XI|CHE)"
    r"[\s\-.]?[0-9A-Z](?:[\s.\-]?[0-9A-Z]){6,13})\b"
)


def vat_is_valid(compact: str) -> bool:
    """Check digits of an EU, British or Swiss VAT id (compact, with its prefix)."""
    if compact.startswith("GB"):
        return bool(british_vat.is_valid(compact))
    if compact.startswith("CHE"):
        return bool(swiss_vat.is_valid(compact))
    return bool(stdnum_vat.is_valid(compact))


def find_vat_ids(text: str) -> list[tuple[int, str, bool]]:
    """VAT-id-shaped strings (position, compact form, check digits valid)."""
    found = []
    for match in _VAT.finditer(text.upper()):
        compact = re.sub(r"[\s.\-]", "", match.group(1))
        valid = vat_is_valid(compact)
        # A word glued on by the pattern ("DE123456789 IBAN"): try shorter forms.
        cut = len(compact) - 1
        while not valid and cut >= 10:
            if vat_is_valid(compact[:cut]):
                compact, valid = compact[:cut], True
            cut -= 1
        found.append((match.start(), compact, valid))
    return found
