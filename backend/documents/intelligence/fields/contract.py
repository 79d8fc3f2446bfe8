"""Contract fields: number, the parties ("between A and B", "zwischen A und
B", or labelled parties) and the term's dates."""

from __future__ import annotations

import re

from backend.documents.intelligence.fields import normalise
from backend.documents.intelligence.fields.common import Fields
from backend.documents.intelligence.fields.labels import (
    LEGAL_FORMS,
    FieldSpec,
    find_labelled,
    split_lines,
)

SPECS = [
    FieldSpec(
        "contract_number",
        "id",
        (
            r"contract\s*(?:no\.?|number|nr\.?|#|id|ref(?:erence)?)",
            r"agreement\s*(?:no\.?|number|#|ref(?:erence)?)",
            r"reference",
            r"vertrags-?\s*(?:nr\.?|nummer)",
            r"vertrag\s*nr\.?",
            r"aktenzeichen",
        ),
    ),
    FieldSpec(
        "effective_date",
        "date",
        (
            r"effective\s*(?:date|as\s*of|from|on)",
            r"commencement\s*date",
            r"start\s*date",
            r"commences\s*on",
            r"shall\s*commence\s*on",
            r"with\s*effect\s*from",
            r"vertragsbeginn",
            r"beginn",
            r"beginnt\s*am",
            r"gültig\s*ab",
            r"wirksam\s*ab",
            r"tritt\s*am",
            r"mit\s*wirkung\s*zum",
        ),
    ),
    FieldSpec(
        "end_date",
        "date",
        (
            r"end\s*date",
            r"expir(?:y|ation)\s*date",
            r"expires\s*on",
            r"terminates\s*on",
            r"ends\s*on",
            r"shall\s*end\s*on",
            r"until",
            r"vertragsende",
            r"endet\s*am",
            r"befristet\s*bis",
            r"läuft\s*bis",
            r"bis\s*zum",
            r"laufzeit\s*bis",
            r"ende",
        ),
    ),
]
# A name: up to its legal form, or up to a comma, a bracket, "and"/"und" or the end.
_NAME = (
    rf"[A-ZÄÖÜ][\w&.,'\u2019\- ]*?(?:\b(?:{LEGAL_FORMS})(?=[\s,;.(]|$)"
    r"|(?=\s*[,;(]|\s+(?:and|und)\b|\s*$))"
)
_BETWEEN = re.compile(
    rf"(?:between|zwischen)\s*(?:\n\s*)?(?:der\s+|the\s+)?(?P<a>{_NAME}).*?\b(?:and|und)\s*(?:\n\s*)?(?:der\s+|the\s+)?(?P<b>{_NAME})",
    re.S | re.I,
)
_PARTY_LINE = re.compile(
    r"^(?:party\s*[12ab]|partei\s*[12ab]|client|contractor|provider|customer|auftraggeber(?:in)?|auftragnehmer(?:in)?|vermieter|mieter|arbeitgeber|arbeitnehmer|licensor|licensee|lizenzgeber|lizenznehmer)\s*:\s*(?P<name>.+)$",
    re.I,
)


_ABBREVIATED = re.compile(r"\b(?:Inc|Co|Corp|e\.K|e\.V|S\.A|B\.V|N\.V)\.$")


def _clean(name: str) -> str:
    """A party's name without the role clause and the sentence's punctuation."""
    name = re.sub(r"\s+", " ", name)
    name = re.sub(r"\s*\((?:hereinafter|nachfolgend|im folgenden).*$", "", name, flags=re.I)
    name = name.strip(' ,;:"“”„()')
    return name if _ABBREVIATED.search(name) else name.rstrip(".")


def extract(text: str, language: str | None) -> Fields:
    lines = split_lines(text)
    fields = Fields()
    found = find_labelled(lines, SPECS, language=language)
    for name in ("contract_number", "effective_date", "end_date"):
        fields.take(name, found[name])
    parties: list[str] = []
    for line in lines:
        match = _PARTY_LINE.match(line)
        if match:
            parties.append(_clean(re.split(r",\s", match.group("name"))[0]))
    how = 0.85
    if len(parties) < 2:
        match = _BETWEEN.search("\n".join(lines))
        if match:
            parties = [_clean(match.group("a")), _clean(match.group("b"))]
            how = 0.8
    parties = [party for party in dict.fromkeys(parties) if len(party) > 1]
    if parties:
        fields.put("parties", parties, how)
    if "effective_date" not in fields.data:
        dates = normalise.find_dates(text, language=language)
        if dates:
            fields.put("effective_date", dates[0][1].isoformat(), 0.4)
    return fields
