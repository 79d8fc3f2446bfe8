"""The README and the API guide (docs/) link only to files of the repository
that exist: a reader with only the repository finds everything they name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_local_links_resolve_inside_the_repository(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue  # a web address, or an anchor on the same page
        path = (page.parent / target.split("#", 1)[0]).resolve()
        if not path.is_relative_to(ROOT) or not path.exists():
            broken.append(target)
    assert not broken, f"{page.name} links outside the repository or to nothing: {broken}"


def test_the_guide_covers_its_topics() -> None:
    names = {page.stem for page in PAGES}
    assert {
        "authentication",
        "errors",
        "pagination",
        "jobs",
        "events",
        "webhooks",
        "workloads",
    } <= names
    readme = (ROOT / "README.md").read_text()
    assert "(docs/README.md)" in readme
