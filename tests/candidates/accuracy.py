"""Field accuracy of parsed CVs against the corpus's ground truth."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


def _norm_url(url: str) -> str:
    url = url.lower().removeprefix("https://").removeprefix("http://").removeprefix("www.")
    return url.rstrip("/")


def _same(a: str | None, b: str | None) -> bool:
    return (a or "").strip().casefold() == (b or "").strip().casefold()


@dataclass
class Scores:
    hits: Counter[str] = field(default_factory=Counter)
    totals: Counter[str] = field(default_factory=Counter)
    skill_tp: int = 0
    skill_fp: int = 0
    skill_fn: int = 0
    misses: list[str] = field(default_factory=list)

    def count(self, key: str, ok: bool, detail: str = "") -> None:
        self.totals[key] += 1
        if ok:
            self.hits[key] += 1
        elif detail:
            self.misses.append(f"{key}: {detail}")

    def rate(self, key: str) -> float:
        return self.hits[key] / self.totals[key] if self.totals[key] else 1.0

    @property
    def skill_precision(self) -> float:
        return self.skill_tp / max(1, self.skill_tp + self.skill_fp)

    @property
    def skill_recall(self) -> float:
        return self.skill_tp / max(1, self.skill_tp + self.skill_fn)

    def report(self, title: str) -> str:
        lines = [f"{title}:"]
        for key in sorted(self.totals):
            lines.append(
                f"  {key:<22} {self.rate(key):6.1%}  ({self.hits[key]}/{self.totals[key]})"
            )
        lines.append(
            f"  {'skills precision':<22} {self.skill_precision:6.1%}  "
            f"recall {self.skill_recall:6.1%}  (tp {self.skill_tp}, fp {self.skill_fp}, "
            f"fn {self.skill_fn})"
        )
        return "\n".join(lines)


def score(scores: Scores, key: str, truth: dict[str, Any], parsed: dict[str, Any]) -> None:
    """Add one CV's comparison to `scores` (`parsed` is the profile dict)."""
    scores.count("name", _same(truth["name"], parsed["name"]), f"{key} {parsed['name']!r}")
    scores.count(
        "emails", sorted(truth["emails"]) == sorted(parsed["emails"]), f"{key} {parsed['emails']}"
    )
    scores.count(
        "phones",
        sorted(truth["phones"]) == sorted(parsed["phones"]),
        f"{key} {parsed['phones']} vs {truth['phones']}",
    )
    scores.count(
        "location",
        truth["city"].casefold() in (parsed["location"] or "").casefold(),
        f"{key} {parsed['location']!r} vs {truth['city']}",
    )
    links = sorted((link["kind"], _norm_url(link["url"])) for link in parsed["links"])
    scores.count("links", links == truth["links"], f"{key} {links} vs {truth['links']}")
    if truth["headline"]:
        scores.count(
            "headline",
            _same(truth["headline"], parsed["headline"]),
            f"{key} {parsed['headline']!r} vs {truth['headline']!r}",
        )
    scores.count(
        "languages",
        sorted(truth["languages"]) == sorted(parsed["languages"]),
        f"{key} {parsed['languages']} vs {truth['languages']}",
    )
    truth_skills, found = set(truth["skills"]), set(parsed["skills"])
    scores.skill_tp += len(truth_skills & found)
    scores.skill_fp += len(found - truth_skills)
    scores.skill_fn += len(truth_skills - found)
    if found != truth_skills:
        scores.misses.append(
            f"skills: {key} extra {sorted(found - truth_skills)} missing "
            f"{sorted(truth_skills - found)}"
        )
    scores.count(
        "experience count",
        len(truth["experience"]) == len(parsed["experience"]),
        f"{key} {len(parsed['experience'])} vs {len(truth['experience'])}",
    )
    for want, got in zip(truth["experience"], parsed["experience"], strict=False):
        dates = (want["start"], want["end"], want["current"]) == (
            got["start"],
            got["end"],
            got["current"],
        )
        scores.count("experience dates", dates, f"{key} {got} vs {want}")
        scores.count(
            "experience title", _same(want["title"], got["title"]), f"{key} {got['title']!r}"
        )
        scores.count(
            "experience org",
            _same(want["organization"], got["organization"]),
            f"{key} {got['organization']!r} vs {want['organization']!r}",
        )
    scores.count(
        "education count",
        len(truth["education"]) == len(parsed["education"]),
        f"{key} {len(parsed['education'])} vs {len(truth['education'])}",
    )
    for want, got in zip(truth["education"], parsed["education"], strict=False):
        scores.count(
            "education dates",
            (want["start"], want["end"]) == (got["start"], got["end"]),
            f"{key} {got} vs {want}",
        )
        scores.count(
            "education degree",
            _same(want["degree"], got["degree"]),
            f"{key} {got['degree']!r} vs {want['degree']!r}",
        )
        scores.count(
            "education institution",
            _same(want["institution"], got["institution"]),
            f"{key} {got['institution']!r} vs {want['institution']!r}",
        )
    scores.count(
        "total experience",
        truth["total_experience_months"] == parsed["total_experience_months"],
        f"{key} {parsed['total_experience_months']} vs {truth['total_experience_months']}",
    )
