"""Document type from weighted keywords in English and German. Title words
near the top weigh more; a type needs a clear lead to be chosen, else the
document is `other`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from backend.documents.intelligence.fields.labels import tolerant

TYPES = ("invoice", "receipt", "delivery_note", "contract", "cv")

KEYWORDS: dict[str, list[tuple[str, float]]] = {
    "invoice": [
        (r"invoice|rechnung|tax invoice|faktura", 3.0),
        (r"invoice (?:no|number|date|#)|rechnungs-?(?:nr|nummer|datum)", 3.0),
        (
            r"due date|payment due|fällig|zahlbar|zahlungsziel|payment terms|zahlungsbedingungen",
            1.5,
        ),
        (r"iban|bic|bank details|bankverbindung", 1.0),
        (r"net amount|subtotal|nettobetrag|zwischensumme|summe netto", 1.0),
        (r"vat|mwst|ust\.?|umsatzsteuer|mehrwertsteuer|sales tax", 0.5),
        (r"bill to|invoice to|rechnungsempfänger|rechnungsadresse", 1.5),
    ],
    "receipt": [
        (r"receipt|kassenbon|kassenbeleg|quittung|kassenzettel|bon-?nr", 3.0),
        (r"cash|bar(?:geld|zahlung)?|change|rückgeld|wechselgeld|gegeben", 1.5),
        (
            r"card payment|kartenzahlung|girocard|ec-?karte|visa|mastercard|contactless|kontaktlos",
            1.2,
        ),
        (
            r"thank you for (?:shopping|your purchase|your visit)|"
            r"vielen dank für ihren einkauf|danke für ihren besuch",
            2.0,
        ),
        (r"cashier|kasse|terminal|trans(?:action|aktion)|beleg-?nr|tse", 1.0),
    ],
    "delivery_note": [
        (
            r"delivery note|lieferschein|packing slip|dispatch note|goods received|delivery slip",
            4.0,
        ),
        (
            r"delivery date|lieferdatum|liefertermin|shipped|versand(?:datum)?|"
            r"ship to|lieferadresse",
            1.5,
        ),
        (r"received by|empfangen|ware erhalten|signature of recipient|unterschrift empfänger", 1.5),
        (r"qty delivered|gelieferte menge|packages|packstücke|pakete", 1.0),
    ],
    "contract": [
        (r"agreement|contract|vertrag|vereinbarung", 3.0),
        (r"between|zwischen|hereinafter|nachfolgend|im folgenden", 1.5),
        (r"the parties|die parteien|vertragsparteien|party|partei", 1.5),
        (
            r"§\s?\d|clause|article \d|term(?:ination)?|kündigung|laufzeit|"
            r"governing law|gerichtsstand",
            1.0,
        ),
        (r"signature|unterschrift|signed|witness", 0.5),
    ],
    "cv": [
        (r"curriculum vitae|lebenslauf|résumé|resume", 4.0),
        (r"work experience|professional experience|berufserfahrung|beruflicher werdegang", 2.0),
        (r"education|ausbildung|studium|skills|kenntnisse|fähigkeiten|languages|sprachen", 1.0),
    ],
}
_COMPILED = {
    kind: [
        (re.compile(rf"(?<![\w-])(?:{tolerant(pattern)})(?![\w])", re.I), weight)
        for pattern, weight in items
    ]
    for kind, items in KEYWORDS.items()
}
MIN_SCORE = 3.0
TOP_LINES = 6


@dataclass(frozen=True, slots=True)
class Classification:
    document_type: str
    confidence: float
    scores: dict[str, float]


def classify(text: str) -> Classification:
    head = "\n".join([line for line in text.splitlines() if line.strip()][:TOP_LINES])
    scores: dict[str, float] = {}
    for kind, patterns in _COMPILED.items():
        score = 0.0
        for pattern, weight in patterns:
            hits = len(pattern.findall(text))
            if hits:
                score += weight * (1 + min(hits - 1, 3) * 0.25)
            if pattern.search(head):
                score += weight
        scores[kind] = round(score, 2)
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    (best, top), (_, second) = ranked[0], ranked[1]
    if top < MIN_SCORE:
        return Classification("other", round(min(1.0, 1 - top / (MIN_SCORE * 2)), 2), scores)
    margin = (top - second) / top
    return Classification(best, round(min(0.99, 0.5 + margin / 2), 2), scores)
