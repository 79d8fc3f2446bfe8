"""A generated CV corpus with ground truth: people with international phone
numbers, links, jobs (some overlapping), degrees, spoken languages and skills
(written by canonical name or by an alias such as `JS`, `k8s`, `Postgres`),
laid out six ways (one column, German Lebenslauf, sidebar, skills as prose,
ATS-style with categories, modern German) in English and German, and rendered
as PDF (text layer, fpdf2), DOCX (python-docx), plain text or a scanned image.

Everything is seeded: the same call gives the same files and truth.
"""

from __future__ import annotations

import io
import random
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import phonenumbers

from backend.candidates.dates import total_months
from backend.candidates.taxonomy import builtin_skills

REFERENCE = date(2026, 12, 1)
REGION = "DE"  # the tenant's country: national numbers are German

FIRST = [
    "Jürgen", "Anna", "Sophie", "Lukas", "Mehmet", "Priya", "Olivia", "Mateo", "Chloé",
    "Jan", "Aisha", "Tomasz", "Ingrid", "Kenji", "Fatima", "Noah", "Elif", "Lars",
    "Camille", "Rahul", "Zoë", "Björn", "Marta", "Daniel", "Leonie", "Ahmed", "Grace",
    "Pablo", "Hanna", "Oskar", "Yuki", "Emma", "Felix", "Sara", "Jonas", "Amélie",
]  # fmt: skip
LAST = [
    "Müller", "Schmidt", "Kowalski", "Yılmaz", "Sharma", "O'Brien", "García", "Dubois",
    "Novak", "Okafor", "Nowak", "Lindqvist", "Tanaka", "Haddad", "Becker", "Demir",
    "Johansson", "Lefèvre", "Patel", "Weiß", "Andersen", "Rossi", "Fischer", "Schäfer",
    "Hoffmann", "Khan", "Murphy", "Fernández", "Wagner", "Berg", "Sato", "Wilson",
    "Krüger", "Costa", "Vogel", "Martin",
]  # fmt: skip
CITIES = [  # city, country (EN), country (DE), region for the phone, postcode
    ("Berlin", "Germany", "Deutschland", "DE", "10115"),
    ("Hamburg", "Germany", "Deutschland", "DE", "20095"),
    ("München", "Germany", "Deutschland", "DE", "80331"),
    ("Köln", "Germany", "Deutschland", "DE", "50667"),
    ("Wien", "Austria", "Österreich", "AT", "1010"),
    ("Zürich", "Switzerland", "Schweiz", "CH", "8001"),
    ("London", "UK", "UK", "GB", ""),
    ("Paris", "France", "Frankreich", "FR", "75001"),
    ("Amsterdam", "Netherlands", "Niederlande", "NL", ""),
    ("New York", "USA", "USA", "US", ""),
    ("Bangalore", "India", "Indien", "IN", ""),
    ("Warsaw", "Poland", "Polen", "PL", ""),
]
TITLES_EN = [
    "Senior Backend Engineer", "Software Developer", "Data Engineer", "DevOps Engineer",
    "Frontend Developer", "Product Manager", "QA Engineer", "Engineering Manager",
    "Platform Engineer", "Data Analyst", "Solutions Architect", "Junior Developer",
]  # fmt: skip
TITLES_DE = [
    "Softwareentwickler", "Senior Softwareentwicklerin", "Teamleiter Entwicklung",
    "Werkstudent Softwareentwicklung", "IT-Berater", "Systemadministrator", "Projektleiter",
    "Data Engineer", "Backend-Entwickler", "Frontend-Entwicklerin",
]  # fmt: skip
ORGS = [
    "Acme GmbH", "Globex Inc.", "Initech Ltd", "Nordwind Spedition AG", "Umbrella Labs",
    "Hooli", "Contoso Ltd", "Fabrikam Software GmbH", "Blauberg Versicherung AG",
    "Pied Piper Inc.", "Vandelay Industries", "Initrode", "Soylent Corp.", "Wonka Industries",
    "Cyberdyne Systems", "Stark Solutions GmbH", "Tyrell Corporation", "Massive Dynamic",
]  # fmt: skip
# Titles that name a skill of the taxonomy: a CV with the title claims the skill.
TITLE_SKILLS = {"DevOps Engineer": "DevOps", "QA Engineer": "Quality Assurance"}
DEGREES_EN = [
    "B.Sc. Computer Science", "M.Sc. Computer Science", "Bachelor of Arts in Economics",
    "MBA", "PhD in Physics", "Master of Engineering",
]  # fmt: skip
DEGREES_DE = [
    "Bachelor of Science Informatik", "Master Wirtschaftsinformatik", "Diplom-Informatiker",
    "Ausbildung zum Fachinformatiker", "Master of Science Physik",
]  # fmt: skip
INSTITUTIONS = [
    "Technische Universität München", "University of Manchester", "Humboldt-Universität zu Berlin",
    "ETH Zürich", "Hochschule München", "University of Toronto", "Universität Wien",
    "Imperial College London", "Universität Hamburg", "Indian Institute of Technology Delhi",
]  # fmt: skip
SPOKEN = {  # code: (English name, German name)
    "en": ("English", "Englisch"),
    "de": ("German", "Deutsch"),
    "fr": ("French", "Französisch"),
    "es": ("Spanish", "Spanisch"),
    "it": ("Italian", "Italienisch"),
    "pl": ("Polish", "Polnisch"),
    "tr": ("Turkish", "Türkisch"),
    "hi": ("Hindi", "Hindi"),
    "ja": ("Japanese", "Japanisch"),
}
LEVELS_EN = ["(native)", "(fluent)", "(C1)", "(B2)", "– professional working proficiency"]
LEVELS_DE = ["(Muttersprache)", "(verhandlungssicher)", "(C1)", "(fließend)", "– Grundkenntnisse"]
SKILL_POOL = [
    "Python", "JavaScript", "TypeScript", "Java", "Go", "Rust", "C++", "C#", "SQL", "PostgreSQL",
    "MySQL", "MongoDB", "Redis", "Kubernetes", "Docker", "Terraform", "Amazon Web Services",
    "Microsoft Azure", "Google Cloud Platform", "React", "Angular", "Vue.js", "Node.js",
    "Django", "Flask", "FastAPI", "Spring Boot", "Apache Kafka", "RabbitMQ", "Elasticsearch",
    "Apache Spark", "Apache Airflow", "Pandas", "NumPy", "TensorFlow", "PyTorch",
    "scikit-learn", "Git", "Jenkins", "GitLab CI", "GitHub Actions", "Ansible", "Linux",
    "Scrum", "Jira", "GraphQL", "gRPC", "Prometheus", "Grafana", "Tableau", "Power BI",
    "Snowflake", "Helm", "Redux", "Jest", "Cypress", "pytest", "Kotlin", "Swift", "Flutter",
    "Ruby on Rails", "PHP", "Laravel", "Machine Learning", "Figma", "Salesforce", "SAP",
    "Microservices", "CI/CD", "Objective-C", "Scala", "Bash", "Nginx", "OpenAPI",
]  # fmt: skip
PROGRAMMING = {
    "Python", "JavaScript", "TypeScript", "Java", "Go", "Rust", "C++", "C#", "SQL", "Kotlin",
    "Swift", "PHP", "Scala", "Bash", "Objective-C",
}  # fmt: skip
DESCRIPTIONS_EN = [
    "Built internal services with {a} and {b}, serving two million requests a day.",
    "Moved the reporting stack to {a}; introduced {b} for the team.",
    "Designed the data pipeline on {a} and {b} and cut the nightly run from 6 h to 40 min.",
    "Mentored four engineers and ran the weekly review of {a} changes.",
    "Led the migration from a monolith to {a}, deployed with {b}.",
]
DESCRIPTIONS_DE = [
    "Entwicklung interner Dienste mit {a} und {b} für zwei Millionen Anfragen am Tag.",
    "Umstellung des Berichtswesens auf {a}; Einführung von {b} im Team.",
    "Aufbau der Datenstrecke mit {a} und {b}; Laufzeit von 6 h auf 40 min gesenkt.",
    "Betreuung von vier Entwicklern und wöchentliche Durchsicht der {a}-Änderungen.",
]
MONTHS_EN = """
    Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec
""".split()
MONTHS_EN_LONG = """
    January February March April May June July August September October November December
""".split()
MONTHS_DE = """
    Jan. Feb. März Apr. Mai Juni Juli Aug. Sept. Okt. Nov. Dez.
""".split()


@dataclass
class Job:
    title: str
    organization: str
    start: tuple[int, int]
    end: tuple[int, int] | None  # None: current
    description: list[str]
    year_only: bool = False


@dataclass
class Degree:
    degree: str
    institution: str
    start: tuple[int, int]
    end: tuple[int, int]


@dataclass
class Person:
    name: str
    emails: list[str]
    phones: list[tuple[str, str]]  # (as written, E.164)
    city: str
    country: str
    postcode: str
    links: list[tuple[str, str]]  # (kind, url as written)
    headline: str | None
    jobs: list[Job]
    degrees: list[Degree]
    languages: list[str]
    skills: dict[str, str]  # canonical name -> spelling used in the CV
    german: bool


@dataclass
class CV:
    key: str
    layout: str
    fmt: str
    person: Person
    text: str = ""  # the rendered text (before any file format)
    banner: list[tuple[str, str]] = field(default_factory=list)
    blocks: list[tuple[str, str]] = field(default_factory=list)
    side: list[tuple[str, str]] = field(default_factory=list)

    def truth(self) -> dict[str, Any]:
        p = self.person
        intervals = []
        for job in p.jobs:
            start = job.start if not job.year_only else (job.start[0], 1)
            end = job.end or (REFERENCE.year, REFERENCE.month)
            if job.year_only and job.end:
                end = (job.end[0], 12)
            intervals.append((start, end))
        return {
            "name": p.name,
            "emails": sorted(p.emails),
            "phones": sorted(e164 for _, e164 in p.phones),
            "city": p.city,
            "links": sorted((kind, _norm_url(url)) for kind, url in p.links),
            "headline": p.headline if self.layout not in {"lebenslauf", "ats"} else None,
            "skills": sorted(
                set(p.skills) | {TITLE_SKILLS[j.title] for j in p.jobs if j.title in TITLE_SKILLS}
            ),
            "languages": sorted(p.languages),
            "experience": [
                {
                    "title": j.title,
                    "organization": j.organization,
                    "start": _ym((j.start[0], 1) if j.year_only else j.start),
                    "end": None if j.end is None else _ym((j.end[0], 12) if j.year_only else j.end),
                    "current": j.end is None,
                }
                for j in p.jobs
            ],
            "education": [
                {
                    "degree": d.degree,
                    "institution": d.institution,
                    "start": _ym(d.start),
                    "end": _ym(d.end),
                }
                for d in p.degrees
            ],
            "total_experience_months": total_months(intervals),
        }


def _ym(value: tuple[int, int]) -> str:
    return f"{value[0]:04d}-{value[1]:02d}"


def _norm_url(url: str) -> str:
    url = url.lower().removeprefix("https://").removeprefix("http://").removeprefix("www.")
    return url.rstrip("/")


def _ascii(value: str) -> str:
    value = value.replace("ß", "ss").replace("ü", "ue").replace("ö", "oe").replace("ä", "ae")
    value = value.replace("Ü", "Ue").replace("Ö", "Oe").replace("Ä", "Ae").replace("ı", "i")
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(c for c in decomposed if c.isascii() and (c.isalnum() or c in ".-")).lower()


def _phone(rng: random.Random, region: str, national_ok: bool) -> tuple[str, str]:
    kind = rng.choice(
        [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]
    )
    example = phonenumbers.example_number_for_type(region, kind)
    assert example is not None
    digits = str(example.national_number)
    for _ in range(200):
        tail = "".join(rng.choice("0123456789") for _ in range(4))
        candidate = phonenumbers.parse(f"+{example.country_code}{digits[:-4]}{tail}", None)
        if phonenumbers.is_valid_number(candidate):
            break
    else:
        candidate = example
    e164 = phonenumbers.format_number(candidate, phonenumbers.PhoneNumberFormat.E164)
    styles = ["international", "e164", "dotted", "zero_zero"]
    if national_ok and region == REGION:
        styles += ["national", "national", "trunk_paren"]
    style = rng.choice(styles)
    intl = phonenumbers.format_number(candidate, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    national = phonenumbers.format_number(candidate, phonenumbers.PhoneNumberFormat.NATIONAL)
    if style == "international":
        written = intl
    elif style == "e164":
        written = e164
    elif style == "dotted":
        written = intl.replace(" ", ".").replace("-", ".")
    elif style == "zero_zero" and region == REGION:
        written = "00" + intl[1:]
    elif style == "national":
        written = national
    elif style == "trunk_paren":
        written = f"+{candidate.country_code} (0) {national.lstrip('0')}"
    else:
        written = intl
    return written, e164


def _spelling(rng: random.Random, name: str) -> str:
    skill = next(s for s in builtin_skills() if s.name == name)
    options = [a for a in skill.aliases if len(a) > 1] + list(skill.case_sensitive)
    if options and rng.random() < 0.45:
        return rng.choice(options)
    return name


def make_person(rng: random.Random, index: int, german: bool) -> Person:
    first, last = FIRST[index % len(FIRST)], LAST[(index * 7) % len(LAST)]
    name = f"{first} {last}"
    city, country_en, country_de, region, postcode = CITIES[index % len(CITIES)]
    domain = rng.choice(["example.com", "mail.example.de", "example.org", "posteo.example"])
    local = rng.choice([f"{_ascii(first)}.{_ascii(last)}", f"{_ascii(first)[0]}{_ascii(last)}"])
    emails = [f"{local}@{domain}"]
    if rng.random() < 0.25:
        emails.append(f"{_ascii(first)}{index}@example.net")
    phones = [_phone(rng, region, national_ok=True)]
    if rng.random() < 0.3:
        phones.append(_phone(rng, "DE" if region != "DE" else "GB", national_ok=False))
    slug = _ascii(first) + "-" + _ascii(last).replace(".", "")
    links: list[tuple[str, str]] = []
    if rng.random() < 0.8:
        links.append(
            ("linkedin", rng.choice(["https://www.linkedin.com/in/", "linkedin.com/in/"]) + slug)
        )
    if rng.random() < 0.6:
        links.append(("github", rng.choice(["https://github.com/", "github.com/"]) + slug))
    if rng.random() < 0.3:
        links.append(("website", f"https://{slug}.dev"))
    skills = rng.sample(SKILL_POOL, rng.randint(5, 11))
    titles = TITLES_DE if german else TITLES_EN
    jobs: list[Job] = []
    year = 2026 - rng.randint(0, 2)
    month = rng.randint(1, 12)
    current = rng.random() < 0.7
    for number in range(rng.randint(1, 4)):
        length = rng.randint(8, 40)
        end = None if number == 0 and current else (year, month)
        start_index = year * 12 + month - 1 - length
        start = (start_index // 12, start_index % 12 + 1)
        pair = skills[(number * 2) % len(skills) : (number * 2) % len(skills) + 2]
        if len(pair) < 2:
            pair = [skills[0], skills[1]]
        template = rng.choice(DESCRIPTIONS_DE if german else DESCRIPTIONS_EN)
        jobs.append(
            Job(
                title=rng.choice(titles),
                organization=ORGS[(index * 3 + number) % len(ORGS)],
                start=start,
                end=end,
                description=[template.format(a=f"{{{pair[0]}}}", b=f"{{{pair[1]}}}")],
            )
        )
        gap = rng.randint(-6, 8)  # a negative gap overlaps the previous job
        end_index = start_index - gap
        year, month = end_index // 12, end_index % 12 + 1
    degrees = []
    dyear = jobs[-1].start[0] - rng.randint(0, 2)
    for number in range(rng.randint(1, 2)):
        length = rng.randint(2, 5)
        degrees.append(
            Degree(
                degree=rng.choice(DEGREES_DE if german else DEGREES_EN),
                institution=INSTITUTIONS[(index + number * 3) % len(INSTITUTIONS)],
                start=(dyear - length, rng.choice([9, 10])),
                end=(dyear, rng.choice([6, 7, 9])),
            )
        )
        dyear -= length + rng.randint(0, 1)
    languages = ["de" if german else "en"]
    languages += rng.sample([c for c in SPOKEN if c not in languages], rng.randint(0, 2))
    return Person(
        name=name,
        emails=emails,
        phones=phones,
        city=city,
        country=country_de if german else country_en,
        postcode=postcode,
        links=links,
        headline=jobs[0].title if jobs[0].end is None else None,
        jobs=jobs,
        degrees=degrees,
        languages=languages,
        skills={name: _spelling(rng, name) for name in skills},
        german=german,
    )


def _fmt_month(value: tuple[int, int], style: str) -> str:
    y, m = value
    if style == "slash":
        return f"{m:02d}/{y}"
    if style == "dot":
        return f"{m:02d}.{y}"
    if style == "iso":
        return f"{y}-{m:02d}"
    if style == "long":
        return f"{MONTHS_EN_LONG[m - 1]} {y}"
    if style == "de_name":
        return f"{MONTHS_DE[m - 1]} {y}"
    if style == "year":
        return str(y)
    return f"{MONTHS_EN[m - 1]} {y}"


def _range(
    job_start: tuple[int, int], end: tuple[int, int] | None, style: str, german: bool
) -> str:
    open_word = {"year": "present", "short": "Present", "long": "present", "iso": "now"}.get(
        style, "heute" if german else "Present"
    )
    dash = " – " if style != "year" else "–"
    if end is None and style == "since":
        return f"seit {_fmt_month(job_start, 'slash')}"
    start_style = "slash" if style == "since" else style
    stop = open_word if end is None else _fmt_month(end, start_style)
    return f"{_fmt_month(job_start, start_style)}{dash}{stop}"


def _describe(job: Job, person: Person) -> str:
    text = job.description[0]
    for canonical, spelling in person.skills.items():
        text = text.replace(f"{{{canonical}}}", spelling)
    return text


def _skill_words(person: Person) -> list[str]:
    return list(person.skills.values())


def _languages_line(person: Person, rng: random.Random) -> list[str]:
    levels = LEVELS_DE if person.german else LEVELS_EN
    names = [SPOKEN[c][1 if person.german else 0] for c in person.languages]
    return [
        f"{name} {levels[0] if i == 0 else rng.choice(levels[1:])}" for i, name in enumerate(names)
    ]


def _phone_text(person: Person) -> str:
    return ", ".join(written for written, _ in person.phones)


def _links_text(person: Person) -> list[str]:
    return [url for _, url in person.links]


def layout_classic(cv: CV, rng: random.Random) -> None:
    """One column, English headings, `Title — Organisation` then a date line."""
    p = cv.person
    b = cv.blocks
    b.append(("h1", p.name))
    if p.headline:
        b.append(("p", p.headline))
    contact = [*p.emails, _phone_text(p), f"{p.city}, {p.country}", *_links_text(p)]
    b.append(("p", " | ".join(contact)))
    b.append(("h2", "Summary" if not p.german else "Profil"))
    first_two = _skill_words(p)[:2]
    b.append(("p", f"Engineer with a focus on {first_two[0]} and {first_two[1]}."))
    b.append(("h2", "Berufserfahrung" if p.german else "Experience"))
    style = rng.choice(["short", "slash", "long"])
    for job in p.jobs:
        b.append(("b", f"{job.title} — {job.organization}"))
        b.append(("p", _range(job.start, job.end, style, p.german)))
        b.append(("li", _describe(job, p)))
    b.append(("h2", "Ausbildung" if p.german else "Education"))
    for d in p.degrees:
        b.append(("b", f"{d.degree}, {d.institution}"))
        b.append(("p", _range(d.start, d.end, style, p.german)))
    b.append(("h2", "Kenntnisse" if p.german else "Skills"))
    b.append(("p", ", ".join(_skill_words(p))))
    b.append(("h2", "Sprachen" if p.german else "Languages"))
    b.append(("p", ", ".join(_languages_line(p, rng))))


def layout_lebenslauf(cv: CV, rng: random.Random) -> None:
    """German tabular CV: labelled contact lines, date first, skills as a list."""
    p = cv.person
    b = cv.blocks
    b.append(("h1", "Lebenslauf"))
    b.append(("p", f"Name: {p.name}"))
    if p.postcode:
        b.append(("p", f"Anschrift: Hauptstraße {rng.randint(1, 99)}, {p.postcode} {p.city}"))
    else:
        b.append(("p", f"Wohnort: {p.city}, {p.country}"))
    for written, _ in p.phones:
        b.append(("p", f"{rng.choice(['Telefon', 'Mobil', 'Tel.'])}: {written}"))
    b.append(("p", "E-Mail: " + ", ".join(p.emails)))
    for url in _links_text(p):
        b.append(("p", url))
    b.append(("h2", "Berufserfahrung"))
    style = rng.choice(["slash", "dot", "de_name"])
    for job in p.jobs:
        b.append(
            ("p", f"{_range(job.start, job.end, style, True)}   {job.title}, {job.organization}")
        )
        b.append(("li", _describe(job, p)))
    b.append(("h2", "Ausbildung"))
    for d in p.degrees:
        b.append(("p", f"{_range(d.start, d.end, style, True)}   {d.degree}, {d.institution}"))
    b.append(("h2", "Kenntnisse"))
    for word in _skill_words(p):
        b.append(("li", word))
    b.append(("h2", "Sprachen"))
    for line in _languages_line(p, rng):
        b.append(("p", line))


def layout_sidebar(cv: CV, rng: random.Random) -> None:
    """Name banner, a sidebar (contact, skills, languages) and a main column
    with `Title` / `Organisation | dates` entries."""
    p = cv.person
    g = p.german
    cv.banner.append(("h1", p.name.upper() if rng.random() < 0.5 and "'" not in p.name else p.name))
    if p.headline:
        cv.banner.append(("p", p.headline))
    s = cv.side
    s.append(("h2", "Kontakt" if g else "Contact"))
    for email in p.emails:
        s.append(("p", email))
    for written, _ in p.phones:
        s.append(("p", written))
    s.append(("p", f"{p.city}, {p.country}"))
    for url in _links_text(p):
        s.append(("p", url))
    s.append(("h2", "Kenntnisse" if g else "Skills"))
    for word in _skill_words(p):
        s.append(("li", word))
    s.append(("h2", "Sprachen" if g else "Languages"))
    for line in _languages_line(p, rng):
        s.append(("p", line))
    m = cv.blocks
    m.append(("h2", "Berufserfahrung" if g else "Experience"))
    style = rng.choice(["slash", "dot"] if g else ["short", "iso"])
    for job in p.jobs:
        m.append(("b", job.title))
        m.append(("p", f"{job.organization} | {_range(job.start, job.end, style, g)}"))
        m.append(("li", _describe(job, p)))
    m.append(("h2", "Ausbildung" if g else "Education"))
    for d in p.degrees:
        m.append(("b", d.degree))
        m.append(("p", f"{d.institution} | {_range(d.start, d.end, style, g)}"))


def layout_prose(cv: CV, rng: random.Random) -> None:
    """Skills only in prose; `Organisation — Title (dates)` entries."""
    p = cv.person
    b = cv.blocks
    b.append(("h1", p.name))
    if p.headline:
        b.append(("p", p.headline))
    b.append(("p", f"{p.city}, {p.country}"))
    b.append(("p", "  ·  ".join([*p.emails, _phone_text(p)])))
    for url in _links_text(p):
        b.append(("p", url))
    b.append(("h2", "About Me"))
    words = _skill_words(p)
    half = max(1, len(words) // 2)
    b.append(
        (
            "p",
            f"I like building things with {', '.join(words[:half])}. Lately I have spent most "
            f"of my time on {', '.join(words[half:])} and on helping teams ship.",
        )
    )
    b.append(("h2", "Work History"))
    style = rng.choice(["long", "short"])
    for job in p.jobs:
        b.append(
            ("b", f"{job.organization} — {job.title} ({_range(job.start, job.end, style, False)})")
        )
        b.append(("p", _describe(job, p)))
    b.append(("h2", "Academic Background"))
    for d in p.degrees:
        b.append(("p", f"{d.degree} — {d.institution}, {_range(d.start, d.end, style, False)}"))
    b.append(("p", "Languages: " + ", ".join(SPOKEN[c][0] for c in p.languages)))


def layout_ats(cv: CV, rng: random.Random) -> None:
    """Upper-case headings, `Title at Organisation (2017–2019)` with years only,
    skills grouped by category (a `Languages:` line of programming languages)."""
    p = cv.person
    b = cv.blocks
    b.append(("h1", p.name.upper() if "'" not in p.name else p.name))
    contact = [f"{p.city}, {p.country}", *p.emails, _phone_text(p)]
    b.append(("p", " • ".join(contact)))
    for url in _links_text(p):
        b.append(("p", url))
    b.append(("h2", "PROFESSIONAL EXPERIENCE"))
    for job in p.jobs:
        job.year_only = True
        b.append(
            (
                "b",
                f"{job.title} at {job.organization} ({_range(job.start, job.end, 'year', False)})",
            )
        )
        b.append(("li", _describe(job, p)))
    b.append(("h2", "EDUCATION"))
    for d in p.degrees:
        b.append(("p", f"{d.degree} — {d.institution}, {_range(d.start, d.end, 'short', False)}"))
    b.append(("h2", "TECHNICAL SKILLS"))
    programming = [p.skills[n] for n in p.skills if n in PROGRAMMING]
    other = [p.skills[n] for n in p.skills if n not in PROGRAMMING]
    if programming:
        b.append(("p", "Languages: " + ", ".join(programming)))
    if other:
        b.append(("p", "Tools & Platforms: " + ", ".join(other)))
    b.append(("h2", "LANGUAGES"))
    b.append(("p", ", ".join(SPOKEN[c][0] for c in p.languages)))


def layout_modern_de(cv: CV, rng: random.Random) -> None:
    """Modern German CV: `seit 04/2021` for the current job, `Sprachkenntnisse`."""
    p = cv.person
    b = cv.blocks
    b.append(("h1", p.name))
    if p.headline:
        b.append(("p", p.headline))
    b.append(("p", f"E-Mail: {' / '.join(p.emails)}"))
    for written, _ in p.phones:
        b.append(("p", f"Mobil: {written}"))
    b.append(("p", f"Wohnort: {p.city}, {p.country}"))
    for url in _links_text(p):
        b.append(("p", f"Web: {url}"))
    b.append(("h2", "Beruflicher Werdegang"))
    for job in p.jobs:
        b.append(("b", f"{job.title} | {job.organization}"))
        b.append(("p", _range(job.start, job.end, "since" if job.end is None else "dot", True)))
        b.append(("li", _describe(job, p)))
    b.append(("h2", "Studium"))
    for d in p.degrees:
        b.append(("b", d.degree))
        b.append(("p", f"{d.institution}, {_range(d.start, d.end, 'dot', True)}"))
    b.append(("h2", "IT-Kenntnisse"))
    b.append(("p", " · ".join(_skill_words(p))))
    b.append(("h2", "Sprachkenntnisse"))
    for line in _languages_line(p, rng):
        b.append(("li", line))


LAYOUTS: dict[str, tuple[Callable[[CV, random.Random], None], tuple[bool, ...]]] = {
    "classic": (layout_classic, (False, True)),
    "lebenslauf": (layout_lebenslauf, (True,)),
    "sidebar": (layout_sidebar, (False, True)),
    "prose": (layout_prose, (False,)),
    "ats": (layout_ats, (False,)),
    "modern_de": (layout_modern_de, (True,)),
}
FORMATS = ("pdf", "docx", "txt")


def build_corpus(count: int = 36, *, seed: int = 11) -> list[CV]:
    """`count` CVs cycling through layouts, languages and formats."""
    rng = random.Random(seed)
    cvs = []
    names = list(LAYOUTS)
    for index in range(count):
        layout = names[index % len(names)]
        render, languages = LAYOUTS[layout]
        german = languages[(index // len(names)) % len(languages)]
        person = make_person(rng, index, german)
        cv = CV(
            key=f"cv{index:03d}",
            layout=layout,
            fmt=FORMATS[(index // len(names)) % 3],
            person=person,
        )
        render(cv, rng)
        cv.text = render_text(cv)
        cvs.append(cv)
    return cvs


def render_text(cv: CV) -> str:
    def lines(blocks: list[tuple[str, str]]) -> list[str]:
        out = []
        for kind, value in blocks:
            if kind == "h2":
                out.extend(["", value.upper() if cv.layout == "classic" else value])
            elif kind == "li":
                out.append(f"• {value}")
            else:
                out.append(value)
        return out

    parts = [*lines(cv.banner), "", *lines(cv.side), ""] if cv.side else []
    return "\n".join(parts + lines(cv.blocks)) + "\n"


def _font_path() -> Path | None:
    for candidate in (
        Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
        Path("/usr/share/fonts/dejavu/DejaVuSans.ttf"),
    ):
        if candidate.exists():
            return candidate
    return None


def _latin1(value: str) -> str:
    value = value.replace("•", "-").replace("—", "-").replace("–", "-").replace("·", "|")
    return value.encode("latin-1", "replace").decode("latin-1")


def render_pdf(cv: CV) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    font = _font_path()
    if font is not None:
        pdf.add_font("Body", "", str(font))
        family, clean = "Body", (lambda s: s)
    else:
        family, clean = "Helvetica", _latin1

    def write(blocks: list[tuple[str, str]], x: float, width: float, base: int = 10) -> None:
        for kind, value in blocks:
            size = {"h1": 18, "h2": 13}.get(kind, base)
            pdf.set_font(family, size=size)
            if kind == "h2":
                pdf.ln(2)
            text = f"• {value}" if kind == "li" else value
            if family == "Helvetica" and kind == "li":
                text = f"- {value}"
            pdf.set_x(x)
            pdf.multi_cell(width, size * 0.5, clean(text), new_x="LMARGIN", new_y="NEXT")  # type: ignore[no-untyped-call]

    if cv.side:
        write(cv.banner, 10, 190)
        top = pdf.get_y() + 4
        pdf.set_y(top)
        write(cv.side, 10, 66, base=8)
        pdf.set_y(top)
        write(cv.blocks, 80, 120)
    else:
        write(cv.blocks, 10, 190)
    return bytes(pdf.output())


def render_docx(cv: CV) -> bytes:
    from docx import Document
    from docx.shared import Pt

    document = Document()

    def add(container: Any, blocks: list[tuple[str, str]]) -> None:
        for kind, value in blocks:
            if kind == "h1":
                container.add_paragraph(value).runs[0].font.size = Pt(20)
            elif kind == "h2":
                paragraph = container.add_paragraph()
                run = paragraph.add_run(value)
                run.bold = True
                run.font.size = Pt(14)
            elif kind == "li":
                container.add_paragraph(value, style="List Bullet")
            elif kind == "b":
                container.add_paragraph().add_run(value).bold = True
            else:
                container.add_paragraph(value)

    if cv.side:
        add(document, cv.banner)
        table = document.add_table(rows=1, cols=2)
        left, right = table.rows[0].cells
        add(left, cv.side)
        add(right, cv.blocks)
    else:
        add(document, cv.blocks)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def render_image(cv: CV) -> bytes:
    """A 'scan': the text drawn on a white page at 200 dpi-like size, PNG."""
    from PIL import Image, ImageDraw, ImageFont

    lines = cv.text.split("\n")
    font_path = _font_path()
    font = ImageFont.truetype(str(font_path), 30) if font_path else ImageFont.load_default(size=30)
    image = Image.new("L", (1800, 60 + 44 * len(lines)), 255)
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(lines):
        draw.text((60, 30 + 44 * number), line, fill=0, font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def render(cv: CV, fmt: str | None = None) -> tuple[str, bytes]:
    """(file name, bytes) of the CV in its format (or `fmt`)."""
    fmt = fmt or cv.fmt
    if fmt == "pdf":
        return f"{cv.key}.pdf", render_pdf(cv)
    if fmt == "docx":
        return f"{cv.key}.docx", render_docx(cv)
    if fmt == "png":
        return f"{cv.key}.png", render_image(cv)
    return f"{cv.key}.txt", cv.text.encode("utf-8")
