"""A CV's text → a candidate profile, by rule: English and German.

1. The text is cut into lines and sections by their headings ("Experience" /
   "Berufserfahrung", "Education" / "Ausbildung", "Skills" / "Kenntnisse", …;
   `SECTION_HEADINGS`). Lines before the first heading are the header.
2. Contact details: e-mail addresses; phone numbers found by `phonenumbers`
   (with the tenant's country as the region for numbers written without a
   country code) outside the dated sections, normalised to E.164; links,
   classified as linkedin, github, website or other.
3. The name is the first prominent line that reads like a name (two to four
   capitalised words, no digits, no job words); a line whose words appear in
   an e-mail's local part wins; failing both, the local part itself
   (`jane.doe@…` → `Jane Doe`).
4. Experience and education entries are anchored on date ranges (`dates.py`);
   the short lines around a range give title and organisation (or degree and
   institution), split on ` at `, ` bei `, `|`, `–`, `,` and told apart by
   job words and organisation suffixes; the lines after it are its
   description.
5. Skills are the taxonomy's (`taxonomy.py`) found anywhere in the text;
   languages are language names (English, German or native) in a languages
   section or after a `Languages:` label, as ISO 639-1 codes.
6. `total_experience_months` merges the experience intervals (overlaps count
   once); an open end counts up to the reference month.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import phonenumbers

from backend.candidates.dates import DateRange, YearMonth, find_ranges, format_month, total_months
from backend.candidates.taxonomy import SkillMatcher, matcher_for

SECTION_HEADINGS: dict[str, tuple[str, ...]] = {
    "summary": (
        "summary", "profile", "professional summary", "personal profile", "about me", "about",
        "objective", "career objective", "professional profile", "profil", "kurzprofil",
        "über mich", "zusammenfassung", "berufsprofil", "persönliches profil",
    ),
    "experience": (
        "experience", "work experience", "professional experience", "employment history",
        "work history", "career history", "employment", "relevant experience", "career",
        "berufserfahrung", "berufliche erfahrung", "beruflicher werdegang", "werdegang",
        "praxiserfahrung", "berufspraxis", "arbeitserfahrung", "beruflicher hintergrund",
        "berufliche stationen",
    ),
    "education": (
        "education", "academic background", "education and training", "academic education",
        "qualifications", "ausbildung", "bildungsweg", "schulbildung", "studium",
        "akademische ausbildung", "bildung", "ausbildung und studium",
        "schul- und berufsausbildung",
    ),
    "skills": (
        "skills", "technical skills", "core skills", "key skills", "competencies",
        "core competencies", "expertise", "technologies", "tech stack", "it skills",
        "skills and tools", "skills & tools", "tools", "kenntnisse", "fähigkeiten",
        "fachkenntnisse", "it-kenntnisse", "edv-kenntnisse", "kompetenzen",
        "technische kenntnisse", "fertigkeiten", "fähigkeiten und kenntnisse",
        "technologien", "skills & kenntnisse",
    ),
    "languages": (
        "languages", "language skills", "spoken languages", "sprachen", "sprachkenntnisse",
        "fremdsprachen",
    ),
    "contact": (
        "contact", "contact details", "contact information", "personal details",
        "personal information", "kontakt", "kontaktdaten", "persönliche daten",
        "persönliche angaben",
    ),
    "projects": ("projects", "selected projects", "key projects", "projekte", "projekterfahrung"),
    "certifications": (
        "certifications", "certificates", "licenses", "courses", "trainings", "zertifikate",
        "zertifizierungen", "weiterbildung", "weiterbildungen", "fortbildung", "kurse",
    ),
    "interests": ("interests", "hobbies", "hobbys", "interessen", "freizeit"),
    "references": ("references", "referenzen"),
    "publications": ("publications", "veröffentlichungen", "publikationen"),
    "awards": ("awards", "honors", "honours", "auszeichnungen"),
}  # fmt: skip
_HEADING = {alias: key for key, aliases in SECTION_HEADINGS.items() for alias in aliases}
_DATED = {"experience", "education", "projects", "certifications"}

LANGUAGES: dict[str, str] = {}
for _code, _names in {
    "en": "english englisch anglais inglés",
    "de": "german deutsch allemand alemán",
    "fr": "french französisch français francais francés",
    "es": "spanish spanisch español espanol",
    "it": "italian italienisch italiano",
    "pt": "portuguese portugiesisch português portugues",
    "nl": "dutch niederländisch nederlands holländisch",
    "pl": "polish polnisch polski",
    "ru": "russian russisch русский",
    "tr": "turkish türkisch türkçe turkce",
    "zh": "chinese chinesisch mandarin 中文",
    "ja": "japanese japanisch 日本語",
    "ko": "korean koreanisch",
    "ar": "arabic arabisch",
    "hi": "hindi",
    "sv": "swedish schwedisch svenska",
    "da": "danish dänisch dansk",
    "no": "norwegian norwegisch norsk",
    "fi": "finnish finnisch suomi",
    "cs": "czech tschechisch čeština",
    "el": "greek griechisch",
    "hu": "hungarian ungarisch magyar",
    "ro": "romanian rumänisch română",
    "uk": "ukrainian ukrainisch українська",
    "he": "hebrew hebräisch",
    "fa": "persian farsi persisch",
    "vi": "vietnamese vietnamesisch",
    "hr": "croatian kroatisch hrvatski",
    "sr": "serbian serbisch",
    "bg": "bulgarian bulgarisch",
    "sk": "slovak slowakisch",
    "sl": "slovenian slowenisch",
    "lt": "lithuanian litauisch",
    "lv": "latvian lettisch",
    "et": "estonian estnisch",
    "ur": "urdu",
    "bn": "bengali bengalisch",
    "id": "indonesian indonesisch",
    "ms": "malay malaiisch",
    "th": "thai thailändisch",
    "ca": "catalan katalanisch català",
}.items():
    for _name in _names.split():
        LANGUAGES[_name] = _code
_LANGUAGE_WORD = re.compile(
    r"(?<!\w)(" + "|".join(sorted(map(re.escape, LANGUAGES), key=len, reverse=True)) + r")(?!\w)",
    re.IGNORECASE,
)
_LANGUAGE_LABEL = re.compile(
    r"^(?:languages?|spoken languages|sprachen|sprachkenntnisse|fremdsprachen)\s*:", re.I
)

TITLE_WORDS = frozenset(
    """
    engineer developer programmer manager consultant analyst architect lead head director
    designer scientist administrator specialist intern internship trainee working student
    officer coordinator assistant associate owner founder co-founder cto ceo cfo vp
    president principal staff senior junior tester devops sre researcher lecturer teacher
    accountant controller recruiter advisor expert technician product project entwickler
    entwicklerin softwareentwickler softwareentwicklerin ingenieur ingenieurin berater
    beraterin leiter leiterin werkstudent werkstudentin praktikant praktikantin referent
    referentin sachbearbeiter sachbearbeiterin mitarbeiter mitarbeiterin projektleiter
    projektleiterin teamleiter teamleiterin geschäftsführer geschäftsführerin administrator
    systemadministrator informatiker informatikerin fachinformatiker kaufmann kauffrau
    assistent assistentin wissenschaftlicher doktorand doktorandin freelancer freiberufler
    inhaber
    """.split()
)
ORG_WORDS = frozenset(
    """
    gmbh ag se kg ohg ug inc inc. ltd ltd. llc plc corp corp. corporation company co co.
    group gruppe labs lab systems solutions technologies technology software consulting
    partners bank versicherung holding studio studios agency agentur ventures services
    industries international gmbh & mbh e.v. ev sa s.a. b.v. bv oy ab as limited university
    universität hochschule institute institut college school schule akademie academy
    fachhochschule klinikum hospital stiftung foundation
    """.split()
)
DEGREE_WORDS = re.compile(
    r"\b(?:bachelor|master|b\.?\s?sc|m\.?\s?sc|b\.?\s?a\b|m\.?\s?a\b|b\.?\s?eng|m\.?\s?eng|"
    r"ph\.?\s?d|doctor|dr\.|diplom|dipl\.|mba|abitur|staatsexamen|magister|ausbildung|"
    r"apprenticeship|high school|a-levels|degree|associate|certificate|studium|promotion|"
    r"fachabitur|mittlere reife|realschul|gcse|bsc|msc|phd|beng|meng|llm|llb)",
    re.IGNORECASE,
)
INSTITUTION_WORDS = re.compile(
    r"\b(?:universit\w*|hochschule|college|institut\w*|school|schule|gymnasium|akademie|"
    r"academy|fachhochschule|polytechnic|tu|eth|epfl|lmu|kit|rwth|mit|fh|ihk|"
    r"berufsschule|campus)\b",
    re.IGNORECASE,
)
_NOT_NAMES = frozenset(
    """
    curriculum vitae resume résumé lebenslauf cv profile profil contact kontakt page seite
    personal persönliche daten details
    """.split()
)
_NAME_PARTICLES = frozenset(
    """
    van von der den de da di del la le du bin al ten zu y
    """.split()
)

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_URL = re.compile(
    r"(?:https?://|www\.)[^\s<>()|,;]+"
    r"|(?<![@\w.-])(?:[a-z0-9-]+\.)+(?:com|de|dev|io|net|org|me|app|co|uk|eu|ch|at|info|tech|"
    r"xyz|page|site|blog)(?:/[^\s<>()|,;]*)?(?![\w@])",
    re.IGNORECASE,
)
_BULLET = re.compile(r"^\s*(?:[-•*·▪◦●–—>+]|\d+[.)])\s+")
_SPLIT = re.compile(
    r"\s+(?:at|bei|@|für|for)\s+|\s*[|–—·•]\s*|\s+-\s+|\s*,\s+|\s*;\s*|\s{3,}|\t+", re.IGNORECASE
)
_SEGMENTS = re.compile(r"\s*[|•·▪]\s*|\s{3,}|\t+")
_LOCATION_LABEL = re.compile(
    r"^(?:address|adresse|anschrift|wohnort|location|ort|city|residence|based in|standort|"
    r"wohnhaft in)\s*[:\-]?\s+(.+)$",
    re.IGNORECASE,
)
_POSTCODE_CITY = re.compile(r"\b(?:[A-Z]{1,2}-)?\d{4,5}\s+([A-ZÄÖÜ][\wäöüß.\- ]+)")
_COUNTRY_NAMES = frozenset(
    (
        "germany",
        "deutschland",
        "austria",
        "österreich",
        "switzerland",
        "schweiz",
        "suisse",
        "france",
        "frankreich",
        "spain",
        "spanien",
        "italy",
        "italien",
        "netherlands",
        "niederlande",
        "belgium",
        "belgien",
        "poland",
        "polen",
        "denmark",
        "dänemark",
        "sweden",
        "schweden",
        "norway",
        "norwegen",
        "finland",
        "finnland",
        "ireland",
        "irland",
        "portugal",
        "czechia",
        "czech republic",
        "tschechien",
        "hungary",
        "ungarn",
        "greece",
        "griechenland",
        "romania",
        "rumänien",
        "uk",
        "united kingdom",
        "england",
        "scotland",
        "usa",
        "us",
        "united states",
        "canada",
        "kanada",
        "mexico",
        "mexiko",
        "brazil",
        "brasilien",
        "argentina",
        "india",
        "indien",
        "china",
        "japan",
        "singapore",
        "australia",
        "australien",
        "new zealand",
        "south africa",
        "turkey",
        "türkei",
        "israel",
        "egypt",
        "nigeria",
        "kenya",
        "ukraine",
        "luxembourg",
        "luxemburg",
    )
)

_DASHES = str.maketrans({"\u2010": "-", "\u2011": "-", "\u00a0": " ", "\u2009": " "})


@dataclass(slots=True)
class Experience:
    title: str | None
    organization: str | None
    start: str | None
    end: str | None
    current: bool
    description: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "organization": self.organization,
            "start": self.start,
            "end": self.end,
            "current": self.current,
            "description": self.description,
        }


@dataclass(slots=True)
class Education:
    degree: str | None
    institution: str | None
    start: str | None
    end: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "degree": self.degree,
            "institution": self.institution,
            "start": self.start,
            "end": self.end,
        }


@dataclass(slots=True)
class ParsedCV:
    name: str | None = None
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    location: str | None = None
    links: list[dict[str, str]] = field(default_factory=list)
    headline: str | None = None
    summary: str | None = None
    skills: list[str] = field(default_factory=list)
    experience: list[Experience] = field(default_factory=list)
    education: list[Education] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    total_experience_months: int = 0
    sections: list[str] = field(default_factory=list)

    def profile(self) -> dict[str, Any]:
        """The candidate profile fields this CV gives."""
        return {
            "name": self.name,
            "emails": self.emails,
            "phones": self.phones,
            "location": self.location,
            "links": self.links,
            "headline": self.headline,
            "summary": self.summary,
            "skills": self.skills,
            "experience": [entry.as_dict() for entry in self.experience],
            "education": [entry.as_dict() for entry in self.education],
            "languages": self.languages,
            "total_experience_months": self.total_experience_months,
        }


@dataclass(slots=True)
class _Section:
    kind: str
    lines: list[str]


def _fold(value: str) -> str:
    """Lower case without accents, for comparing names with e-mail addresses."""
    value = value.replace("ß", "ss").replace("ä", "ae").replace("ö", "oe").replace("ü", "ue")
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def heading_of(line: str) -> tuple[str | None, str]:
    """(section kind, rest of the line) if the line opens a section."""
    stripped = line.strip().strip("#=*_|:-–— ").strip()
    key = re.sub(r"\s+", " ", stripped).casefold()
    if key in _HEADING and len(line.strip()) <= 60:
        return _HEADING[key], ""
    head, colon, rest = stripped.partition(":")
    if colon and rest.strip():
        kind = _HEADING.get(re.sub(r"\s+", " ", head).strip().casefold())
        if kind in {"skills", "languages"}:
            return kind, rest.strip()
    return None, line


def _lines(text: str) -> list[str]:
    text = unicodedata.normalize("NFC", text).translate(_DASHES)
    lines: list[str] = []
    for raw in text.replace("\r", "\n").replace("\f", "\n").split("\n"):
        parts = raw.split("\t")
        if len(parts) > 1 and any(heading_of(part)[0] for part in parts):
            lines.extend(part.strip() for part in parts)
        else:
            lines.append(raw.strip())
    return lines


def split_sections(text: str) -> list[_Section]:
    sections = [_Section("header", [])]
    for line in _lines(text):
        kind, rest = heading_of(line) if line else (None, line)
        if kind is not None:
            sections.append(_Section(kind, [rest] if rest else []))
        elif line:
            sections[-1].lines.append(line)
    return sections


def find_emails(text: str) -> list[str]:
    seen: dict[str, None] = {}
    for match in _EMAIL.finditer(text):
        seen.setdefault(match.group(0).strip(".").lower(), None)
    return list(seen)


def normalise_phone(raw: str, region: str | None) -> str | None:
    """E.164 for a phone number as written, or None when it is not a valid number."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _phones_in(line: str, region: str | None) -> list[str]:
    found = []
    for match in phonenumbers.PhoneNumberMatcher(
        line, region, leniency=phonenumbers.Leniency.VALID
    ):
        if find_ranges(match.raw_string) and "+" not in match.raw_string:
            continue  # a date range read as digits
        found.append(phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164))
    return found


def find_phones(text: str, region: str | None) -> list[str]:
    seen: dict[str, None] = {}
    lines = [line for line in text.split("\n") if sum(c.isdigit() for c in line) >= 3]
    per_line = [
        _phones_in(line, region) if sum(c.isdigit() for c in line) >= 6 else [] for line in lines
    ]
    for index, numbers in enumerate(per_line):
        for number in numbers:
            seen.setdefault(number, None)
        following = index + 1
        if (
            following < len(lines)
            and not per_line[following]
            and lines[index][-1:].isdigit()
            and lines[following][:1].isdigit()
        ):  # a number a narrow layout wrapped onto the next line
            for number in _phones_in(f"{lines[index]} {lines[following]}", region):
                seen.setdefault(number, None)
    return list(seen)


def classify_link(url: str) -> str:
    host = re.sub(r"^(?:https?://)?(?:www\.)?", "", url.lower()).split("/")[0]
    if host.endswith("linkedin.com"):
        return "linkedin"
    if host.endswith("github.com") or host.endswith("github.io"):
        return "github"
    if any(
        host.endswith(social)
        for social in (
            "xing.com", "twitter.com", "x.com", "gitlab.com", "stackoverflow.com",
            "medium.com", "behance.net", "dribbble.com", "facebook.com", "instagram.com",
            "bitbucket.org", "kaggle.com", "researchgate.net", "orcid.org", "youtube.com",
        )
    ):  # fmt: skip
        return "other"
    return "website"


def find_links(text: str) -> list[dict[str, str]]:
    without_emails = _EMAIL.sub(" ", text)
    seen: dict[str, str] = {}
    for match in _URL.finditer(without_emails):
        url = match.group(0).rstrip(".,;:)/")
        if not url.lower().startswith("http"):
            url = "https://" + url
        key = re.sub(r"^https?://(?:www\.)?", "", url.lower())
        if key not in seen:
            seen[key] = url
    return [{"kind": classify_link(url), "url": url} for url in seen.values()]


def _is_name(line: str) -> bool:
    cleaned = re.sub(r"^(?:name|vorname und name|full name)\s*:\s*", "", line, flags=re.I)
    words = cleaned.split()
    if not 2 <= len(words) <= 5 or any(c.isdigit() or c in "@/:|" for c in cleaned):
        return False
    if {_fold(w) for w in words} & (_NOT_NAMES | TITLE_WORDS):
        return False
    capitalised = [w for w in words if w.casefold() not in _NAME_PARTICLES]
    return len(capitalised) >= 2 and all(_name_word(w) for w in capitalised)


def _name_word(word: str) -> bool:
    """`Müller`, `O'Brien`, `Jean-Luc`, `YILMAZ`, `J.`: capitalised letters."""
    if len(word) == 2 and word[0].isupper() and word[1] == ".":
        return True
    letters = word.replace("'", "").replace("\u2019", "").replace("-", "")
    return len(letters) >= 2 and letters.isalpha() and word[0].isupper()


def _tidy_name(line: str) -> str:
    line = re.sub(r"^(?:name|vorname und name|full name)\s*:\s*", "", line, flags=re.I)
    words = line.split()
    if all(w.isupper() or w.casefold() in _NAME_PARTICLES for w in words):
        words = [
            w.lower()
            if w.casefold() in _NAME_PARTICLES
            else "-".join(p.capitalize() for p in w.split("-"))
            for w in words
        ]
    return " ".join(words)


def find_name(lines: Sequence[str], emails: Sequence[str]) -> str | None:
    locals_ = [_fold(email.split("@")[0]) for email in emails]
    candidates = [_tidy_name(line) for line in lines[:12] if _is_name(line)]
    for candidate in candidates:
        parts = [_fold(p) for p in re.split(r"[\s-]+", candidate) if len(p) > 1]
        if any(sum(p in local for p in parts) >= 1 for local in locals_):
            return candidate
    if candidates:
        return candidates[0]
    for local in (email.split("@")[0] for email in emails):
        parts = [p for p in re.split(r"[._-]+", local) if p.isalpha() and len(p) > 1]
        if len(parts) >= 2:
            return " ".join(p.capitalize() for p in parts)
    return None


def _title_score(fragment: str) -> int:
    return sum(1 for w in re.findall(r"[\w-]+", fragment.casefold()) if w in TITLE_WORDS)


def _org_score(fragment: str) -> int:
    words = re.findall(r"[\w.&-]+", fragment.casefold())
    return sum(1 for w in words if w in ORG_WORDS)


def _is_location(fragment: str) -> bool:
    return fragment.casefold() in _COUNTRY_NAMES or bool(_POSTCODE_CITY.fullmatch(fragment))


def _fragments(pieces: Sequence[str]) -> tuple[list[str], str | None, str | None]:
    """Fragments of header pieces, and the (title, organisation) of an `X at Y`."""
    fragments: list[str] = []
    pair: tuple[str | None, str | None] = (None, None)
    for piece in pieces:
        at = re.split(r"\s+(?:at|bei|@)\s+", piece, maxsplit=1, flags=re.IGNORECASE)
        if len(at) == 2 and pair == (None, None):
            pair = (at[0].strip(" ,-–"), re.split(r"\s*[,|(]\s*", at[1])[0].strip(" ,-–"))
        for fragment in _SPLIT.split(piece):
            fragment = fragment.strip(" ,;:()[]-–—")
            if fragment and re.search(r"[^\W\d_]", fragment):
                fragments.append(fragment)
    return fragments, pair[0], pair[1]


def _title_and_org(pieces: Sequence[str]) -> tuple[str | None, str | None]:
    fragments, title, org = _fragments(pieces)
    if title and org:
        return title, org
    fragments = [f for f in fragments if not _is_location(f)]
    if not fragments:
        return None, None
    titles = sorted(fragments, key=lambda f: -_title_score(f))
    title = titles[0] if _title_score(titles[0]) > 0 else None
    rest = [f for f in fragments if f != title]
    orgs = [f for f in rest if _org_score(f) > 0]
    org = orgs[0] if orgs else None
    if title is None:
        title = next((f for f in rest if f != org), None)
    if org is None:
        org = next((f for f in rest if f != title), None)
    return title, org


def _degree_and_institution(pieces: Sequence[str]) -> tuple[str | None, str | None]:
    fragments, _, _ = _fragments(pieces)
    fragments = [f for f in fragments if not _is_location(f)]
    institution = next((f for f in fragments if INSTITUTION_WORDS.search(f)), None)
    degree = next((f for f in fragments if f != institution and DEGREE_WORDS.search(f)), None)
    rest = [f for f in fragments if f not in (degree, institution)]
    if degree is None and rest:
        degree = rest.pop(0)
    if institution is None and rest:
        institution = rest.pop(0)
    return degree, institution


def _header_like(line: str) -> bool:
    """A short line that may name a title or an organisation (not a bullet or a sentence)."""
    return (
        not _BULLET.match(line)
        and len(line) <= 100
        and not (line.endswith(".") and len(line.split()) > 6)
        and not (len(line) > 80 and line.count(" ") > 10)
    )


def _join_wrapped(lines: Sequence[str]) -> list[str]:
    """Bullet text that a layout wrapped onto the next line, joined again: a
    line after an unfinished bullet that starts in lower case, or ends a
    sentence without naming a title or an organisation."""
    out: list[str] = []
    open_bullet = False
    for line in lines:
        if (
            open_bullet
            and not _BULLET.match(line)
            and not find_ranges(line)
            and (
                line[:1].islower()
                or (line.endswith(".") and not _title_score(line) and not _org_score(line))
            )
        ):
            out[-1] = f"{out[-1]} {line}"
        else:
            out.append(line)
            open_bullet = bool(_BULLET.match(line))
        open_bullet = open_bullet and not out[-1].rstrip().endswith((".", "!", "?", ";", ":"))
    return out


@dataclass(slots=True)
class _Entry:
    dates: DateRange
    pieces: list[str]
    description: list[str]


def _entries(lines: Sequence[str], *, allow_single: bool) -> list[_Entry]:
    lines = _join_wrapped(lines)
    anchors: list[tuple[int, DateRange]] = []
    for index, line in enumerate(lines):
        ranges = [r for r in find_ranges(line) if allow_single or not r.single]
        if ranges and not _BULLET.match(line):
            anchors.append((index, ranges[0]))
    entries: list[_Entry] = []
    used_until = 0  # lines before this index belong to an earlier entry
    for number, (index, dates) in enumerate(anchors):
        line = lines[index]
        remainder = (line[: dates.span[0]] + "  " + line[dates.span[1] :]).strip(" ,|–-:()")
        pieces = [remainder] if re.search(r"[^\W\d_]{2}", remainder) else []
        before: list[str] = []
        cursor = index - 1
        while cursor >= used_until and len(before) < 2 and _header_like(lines[cursor]):
            before.insert(0, lines[cursor])
            cursor -= 1
        if entries and before and cursor < used_until - 1:
            before = before[-1:]
        pieces = before + pieces
        next_index = anchors[number + 1][0] if number + 1 < len(anchors) else len(lines)
        after = index + 1
        # the next line completes the header unless it heads the next entry
        if (
            len(pieces) < 2
            and after < next_index
            and _header_like(lines[after])
            and not (after + 1 == next_index and len(pieces) == 1)
        ):
            pieces.append(lines[after])
            after += 1
        # lines just before the next anchor that head it are not this entry's description
        stop = next_index
        look = next_index - 1
        heads = 0
        while look >= after and heads < 2 and _header_like(lines[look]) and next_index < len(lines):
            look -= 1
            heads += 1
        if next_index < len(lines):
            stop = look + 1
        description = [
            re.sub(r"\s{2,}", " ", _BULLET.sub("", line)).strip() for line in lines[after:stop]
        ]
        if entries and before:
            previous = entries[-1]
            previous.description = [d for d in previous.description if d not in before]
        entries.append(_Entry(dates, pieces, [d for d in description if d]))
        used_until = stop
    return entries


def parse_experience(lines: Sequence[str]) -> list[Experience]:
    result = []
    for entry in _entries(lines, allow_single=False):
        title, org = _title_and_org(entry.pieces)
        result.append(
            Experience(
                title=title,
                organization=org,
                start=format_month(entry.dates.start),
                end=None if entry.dates.current else format_month(entry.dates.end),
                current=entry.dates.current,
                description="\n".join(entry.description) or None,
            )
        )
    return result


def parse_education(lines: Sequence[str]) -> list[Education]:
    result = []
    for entry in _entries(lines, allow_single=True):
        degree, institution = _degree_and_institution(entry.pieces)
        result.append(
            Education(
                degree=degree,
                institution=institution,
                start=format_month(entry.dates.start),
                end=None if entry.dates.current else format_month(entry.dates.end),
            )
        )
    return result


def find_languages(sections: Sequence[_Section]) -> list[str]:
    found: dict[str, None] = {}
    texts = [line for s in sections if s.kind == "languages" for line in s.lines]
    texts += [
        _LANGUAGE_LABEL.sub("", line)
        for s in sections
        if s.kind != "languages"
        for line in s.lines
        if _LANGUAGE_LABEL.match(line)
    ]
    for line in texts:
        for match in _LANGUAGE_WORD.finditer(line):
            found.setdefault(LANGUAGES[match.group(1).casefold()], None)
    return list(found)


def _unwrap(lines: Sequence[str]) -> list[str]:
    """Lines a narrow layout wrapped after a comma, joined again."""
    joined: list[str] = []
    for line in lines:
        if joined and joined[-1].endswith(","):
            joined[-1] = f"{joined[-1]} {line}"
        else:
            joined.append(line)
    return joined


def find_location(lines: Sequence[str]) -> str | None:
    lines = _unwrap(lines)
    for line in lines:
        label = _LOCATION_LABEL.match(line)
        if label:
            return _place(label.group(1))
    for line in lines:
        for segment in _SEGMENTS.split(line):
            segment = segment.strip(" 📍⌂")
            if "@" in segment or "/" in segment or sum(c.isdigit() for c in segment) > 5:
                continue
            parts = [p.strip() for p in segment.split(",")]
            if len(parts) >= 2 and parts[-1].casefold() in _COUNTRY_NAMES and len(segment) < 60:
                return _place(segment)
            if _POSTCODE_CITY.search(segment) and not _EMAIL.search(segment):
                return _place(segment)
    return None


def _place(value: str) -> str:
    """`City, Country` (or the city alone) from an address line."""
    parts = [p.strip() for p in value.split(",") if p.strip()]
    out: list[str] = []
    for part in parts:
        postcode = _POSTCODE_CITY.search(part)
        if postcode:
            out = [postcode.group(1).strip()]
        elif re.search(r"\d", part) or re.search(r"(?i)stra(ss|ß)e|str\.|weg\b|street|road", part):
            continue
        else:
            out.append(part)
    return ", ".join(out[:2]) if out else value.strip()


def _headline(header: Sequence[str], name: str | None) -> str | None:
    seen_name = name is None
    for line in header[:8]:
        if not seen_name:
            if _tidy_name(line) == name:
                seen_name = True
            continue
        if (
            _EMAIL.search(line)
            or _URL.search(line)
            or sum(c.isdigit() for c in line) >= 5
            or _LOCATION_LABEL.match(line)
            or len(line) > 90
            or not re.search(r"[^\W\d_]{3}", line)
        ):
            continue
        if _is_name(line) and _title_score(line) == 0:
            continue
        return line.strip(" |–-")
    return None


def parse_cv(
    text: str,
    *,
    region: str | None = None,
    matcher: SkillMatcher | None = None,
    today: date | None = None,
) -> ParsedCV:
    """Parse a CV's text. `region` is the ISO 3166 country for phone numbers
    written without a country code; `today` closes open-ended entries."""
    matcher = matcher or matcher_for()
    reference: YearMonth = ((today or date.today()).year, (today or date.today()).month)
    sections = split_sections(text)
    header = sections[0].lines
    undated = "\n".join(line for s in sections if s.kind not in _DATED for line in s.lines)
    parsed = ParsedCV(sections=[s.kind for s in sections[1:]])
    parsed.emails = find_emails(text)
    parsed.phones = find_phones(undated, region)
    parsed.links = find_links(text)
    all_lines = [line for s in sections for line in s.lines]
    parsed.name = find_name(header or all_lines, parsed.emails)
    contact_lines = header + [line for s in sections if s.kind == "contact" for line in s.lines]
    parsed.location = find_location(contact_lines) or find_location(
        [line for s in sections if s.kind not in _DATED for line in s.lines]
    )
    parsed.headline = _headline(header, parsed.name)
    summary = [line for s in sections if s.kind == "summary" for line in s.lines]
    parsed.summary = " ".join(summary) or None
    for section in sections:
        if section.kind == "experience":
            parsed.experience.extend(parse_experience(section.lines))
        elif section.kind == "education":
            parsed.education.extend(parse_education(section.lines))
    parsed.languages = find_languages(sections)
    parsed.skills = matcher.find(text)
    intervals = []
    for entry in parsed.experience:
        if entry.start is None:
            continue
        start = (int(entry.start[:4]), int(entry.start[5:]))
        end = (
            reference
            if entry.current or entry.end is None
            else (int(entry.end[:4]), int(entry.end[5:]))
        )
        intervals.append((start, min(end, reference)))
    parsed.total_experience_months = total_months(intervals)
    return parsed
