"""The CV parser, its normalisers and the taxonomy, and their accuracy over a
generated corpus (PDF text layer, DOCX, plain text and a scanned image;
English and German; six layouts) read through the platform's extraction."""

from __future__ import annotations

import io
import shutil
import time
import zipfile
from datetime import date

import pytest

from backend.candidates import archive
from backend.candidates.cv_parser import (
    classify_link,
    find_phones,
    normalise_phone,
    parse_cv,
    split_sections,
)
from backend.candidates.dates import find_ranges, total_months
from backend.candidates.taxonomy import builtin_skills, matcher_for
from backend.kit.errors import PayloadTooLarge, ValidationFailed
from tests.candidates.accuracy import Scores, score
from tests.candidates.corpus import LAYOUTS, REFERENCE, REGION, build_corpus, render
from tests.candidates.extraction import extract

# Thresholds: the share of CVs (or entries) whose field is exactly right.
THRESHOLDS = {
    "name": 0.95,
    "emails": 0.97,
    "phones": 0.95,
    "location": 0.9,
    "links": 0.95,
    "headline": 0.9,
    "languages": 0.95,
    "experience count": 0.95,
    "experience dates": 0.95,
    "experience title": 0.9,
    "experience org": 0.9,
    "education count": 0.9,
    "education dates": 0.9,
    "education degree": 0.85,
    "education institution": 0.85,
    "total experience": 0.9,
}
SKILL_PRECISION, SKILL_RECALL = 0.95, 0.95


def test_taxonomy_is_data_with_at_least_300_skills_and_aliases() -> None:
    skills = builtin_skills()
    assert len(skills) >= 300
    assert len({s.name.casefold() for s in skills}) == len(skills)
    matcher = matcher_for()
    assert matcher.canonical("JS") == "JavaScript"
    assert matcher.canonical("k8s") == "Kubernetes"
    assert matcher.canonical("Postgres") == "PostgreSQL"
    assert matcher.normalise(["postgres", "K8S", "Obscure Tool"]) == [
        "PostgreSQL",
        "Kubernetes",
        "Obscure Tool",
    ]


def test_skills_match_whole_tokens_and_case_sensitive_spellings() -> None:
    found = matcher_for().find(
        "Python/Django and JS on k8s, C/C++ and C#, CI/CD, PL/SQL, ASP.NET, Go and Golang. "
        "R&D at C-level; go to market; spring 2019; express delivery; see github.com/x/react "
        "or mail react@vue.org; Node.js"
    )
    assert found == [
        "Python",
        "Django",
        "JavaScript",
        "Kubernetes",
        "C",
        "C++",
        "C#",
        "CI/CD",
        "PL/SQL",
        "ASP.NET",
        "Go",
        "Node.js",
    ]


def test_tenant_skills_join_the_taxonomy() -> None:
    matcher = matcher_for((("Dossier Query Language", ("DQL",)),))
    assert matcher.find("Wrote DQL and Python") == ["Dossier Query Language", "Python"]
    assert matcher.canonical("dql") == "Dossier Query Language"
    assert "Dossier Query Language" not in matcher_for().find("Wrote DQL")


@pytest.mark.parametrize(
    ("written", "start", "end", "current"),
    [
        ("03/2019 – heute", "2019-03", None, True),
        ("Mar 2019 - Present", "2019-03", None, True),
        ("2017–2019", "2017-01", "2019-12", False),
        ("01.2018 - 03.2021", "2018-01", "2021-03", False),
        ("seit 04/2021", "2021-04", None, True),
        ("since May 2020", "2020-05", None, True),
        ("2019-03 to 2020-11", "2019-03", "2020-11", False),
        ("März 2016 bis Februar 2019", "2016-03", "2019-02", False),
        ("Sept. 2015 – Dec. 2018", "2015-09", "2018-12", False),
        ("01.03.2019 - 31.12.2020", "2019-03", "2020-12", False),
        ("2018 bis heute", "2018-01", None, True),
    ],
)
def test_date_ranges(written: str, start: str, end: str | None, current: bool) -> None:
    (found,) = find_ranges(f"Engineer, Acme GmbH {written}")
    assert (found.start_text, found.end_text, found.current) == (start, end, current)


def test_total_experience_counts_overlaps_once() -> None:
    assert total_months([((2019, 1), (2019, 12)), ((2019, 7), (2020, 6))]) == 18
    assert total_months([((2019, 1), (2019, 6)), ((2020, 1), (2020, 6))]) == 12
    text = (
        "Jane Doe\nExperience\nEngineer, Acme GmbH\n01/2020 – heute\n"
        "Consultant, Globex Inc.\n06/2020 – 12/2020\n"
    )
    parsed = parse_cv(text, today=date(2020, 12, 15))
    assert parsed.total_experience_months == 12


@pytest.mark.parametrize(
    ("written", "region", "e164"),
    [
        ("+49 30 1234567", None, "+49301234567"),
        ("030 1234567", "DE", "+49301234567"),
        ("0151 23456789", "DE", "+4915123456789"),
        ("+49 (0) 30 1234567", "DE", "+49301234567"),
        ("0049 30 12345678", "DE", "+493012345678"),
        ("+44 20 7946 0958", "DE", "+442079460958"),
        ("+1 (415) 555-0132", "DE", "+14155550132"),
        ("+41.44.668.18.00", None, "+41446681800"),
        ("(415) 555-0132", "US", "+14155550132"),
    ],
)
def test_phone_numbers_normalise_to_e164(written: str, region: str | None, e164: str) -> None:
    assert normalise_phone(written, region) == e164
    assert find_phones(f"Tel.: {written}", region) == [e164]


def test_dates_are_not_phone_numbers() -> None:
    assert find_phones("2017 – 2019  03/2019 – 05/2021  10115 Berlin", "DE") == []
    assert normalise_phone("030 1234567", None) is None  # no region, no country code


def test_links_are_classified() -> None:
    assert classify_link("https://www.linkedin.com/in/jane") == "linkedin"
    assert classify_link("github.com/jane") == "github"
    assert classify_link("https://jane.dev") == "website"
    assert classify_link("https://www.xing.com/profile/jane") == "other"


def test_sections_in_english_and_german() -> None:
    text = (
        "Jane Doe\nBERUFSERFAHRUNG\nx\nAusbildung:\ny\nKenntnisse\nz\nSprachen: Deutsch\n"
        "Work Experience\na\nEducation\nb\nTechnical Skills\nc\nLanguages\nd"
    )
    kinds = [s.kind for s in split_sections(text)]
    assert kinds == [
        "header", "experience", "education", "skills", "languages",
        "experience", "education", "skills", "languages",
    ]  # fmt: skip


def _score_corpus(cvs: list, fmt: str | None = None) -> tuple[Scores, float, float]:
    scores = Scores()
    parse_seconds = extract_seconds = 0.0
    for cv in cvs:
        filename, data = render(cv, fmt)
        started = time.perf_counter()
        text = extract(filename, data)
        extract_seconds += time.perf_counter() - started
        started = time.perf_counter()
        parsed = parse_cv(text, region=REGION, today=REFERENCE)
        parse_seconds += time.perf_counter() - started
        score(scores, f"{cv.key}/{cv.layout}/{fmt or cv.fmt}", cv.truth(), parsed.profile())
    return scores, parse_seconds, extract_seconds


def test_corpus_accuracy() -> None:
    cvs = build_corpus(36)
    assert {cv.layout for cv in cvs} == set(LAYOUTS)
    assert len(LAYOUTS) >= 5
    assert {cv.fmt for cv in cvs} == {"pdf", "docx", "txt"}
    assert {cv.person.german for cv in cvs} == {True, False}
    scores, parse_seconds, extract_seconds = _score_corpus(cvs)
    print()
    print(scores.report(f"CV corpus ({len(cvs)} CVs: PDF, DOCX, text; EN and DE; 6 layouts)"))
    print(
        f"  parse {len(cvs) / parse_seconds:.0f} CVs/s; extraction alone "
        f"{len(cvs) / extract_seconds:.0f} CVs/s"
    )
    for miss in scores.misses:
        print("  miss", miss)
    for key, threshold in THRESHOLDS.items():
        assert scores.rate(key) >= threshold, (key, scores.rate(key))
    assert scores.skill_precision >= SKILL_PRECISION
    assert scores.skill_recall >= SKILL_RECALL


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="Tesseract is not installed")
def test_scanned_cv_through_ocr() -> None:
    cv = build_corpus(1)[0]
    scores, _, _ = _score_corpus([cv], "png")
    print()
    print(scores.report("Scanned CV (PNG through Tesseract)"))
    for key in ("name", "phones", "experience count", "experience dates", "total experience"):
        assert scores.rate(key) == 1.0, (key, scores.misses)
    assert scores.skill_recall >= 0.8


def _zip(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as handle:
        for name, data in entries.items():
            handle.writestr(name, data)
    buffer.seek(0)
    return buffer


LIMITS = {"max_total_bytes": 10_000_000, "max_entries": 10, "max_ratio": 100}


def test_archive_entries_flatten_folders_and_flag_bad_entries() -> None:
    buffer = _zip(
        {
            "cvs/2026/jane.txt": b"Jane Doe\n" * 20,
            "cvs/old/inner.zip": b"PK\x03\x04 not really",
            "__MACOSX/cvs/._jane.txt": b"junk",
            "cvs/.DS_Store": b"junk",
            "empty.txt": b"",
            "../escape.txt": b"x" * 40,
        },
        zipfile.ZIP_STORED,
    )
    with archive.open_archive(buffer) as handle:
        entries = archive.inspect(handle, **LIMITS)
        by_path = {entry.path: entry for _, entry in entries}
        assert set(by_path) == {
            "cvs/2026/jane.txt",
            "cvs/old/inner.zip",
            "empty.txt",
            "../escape.txt",
        }
        assert by_path["cvs/2026/jane.txt"].error is None
        assert by_path["cvs/2026/jane.txt"].filename == "jane.txt"
        assert "inside an archive" in (by_path["cvs/old/inner.zip"].error or "")
        assert by_path["empty.txt"].error == "The entry is empty"
        assert "leaves the archive" in (by_path["../escape.txt"].error or "")
        info = next(info for info, entry in entries if entry.path == "cvs/2026/jane.txt")
        assert b"".join(archive.read_entry(handle, info)) == b"Jane Doe\n" * 20


def test_archive_refusals() -> None:
    many = _zip({f"cv{i}.txt": b"x" * 10 for i in range(11)})
    with archive.open_archive(many) as handle, pytest.raises(ValidationFailed, match="11 files"):
        archive.inspect(handle, **LIMITS)
    bomb = _zip({"bomb.txt": b"\0" * 1_000_000})
    with archive.open_archive(bomb) as handle, pytest.raises(ValidationFailed, match="zip bomb"):
        archive.inspect(handle, **LIMITS)
    big = _zip({"a.bin": bytes(range(256)) * 40_000}, zipfile.ZIP_STORED)
    with archive.open_archive(big) as handle, pytest.raises(PayloadTooLarge):
        archive.inspect(handle, **{**LIMITS, "max_total_bytes": 5_000_000})
    with pytest.raises(ValidationFailed, match="not a readable ZIP"):
        archive.open_archive(io.BytesIO(b"PK\x03\x04 truncated"))
