"""The skills taxonomy: canonical skill names with aliases, from the data file
shipped in this package (`data/skills.json`) plus a tenant's own skills.

The data file holds `{"skills": [{name, category, aliases, case_sensitive?}]}`.
`aliases` match case-insensitively; `case_sensitive` lists spellings that match
only as written (`Go`, `R`, `C`, `Express`: words that are also ordinary
words). When the canonical name itself is listed there, it too matches only as
written. Extending the built-in list is an edit of the data file; a tenant adds
its own through `POST /candidates/skills`.

Matching runs one regular expression built from a character trie of every
spelling (so the engine shares prefixes instead of trying 1,500 alternatives
at each position), over the text with URLs and e-mail addresses removed and
whitespace collapsed. A spelling matches only as a whole token: not inside a
word, a file name (`node.js` is not `Node`), a URL or an address.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

DATA_PACKAGE = "backend.candidates"
DATA_FILE = "data/skills.json"

# Characters that may not touch a spelling on either side. Spellings of one or
# two characters (`C`, `R`, `Go`, `JS`) also refuse hyphens, ampersands and
# apostrophes around them (`C-level`, `R&D`, `Go-live`).
_LEFT = r"(?<![\w.+#@])"
_RIGHT = r"(?![\w+#]|\.\w)"
_SHORT_LEFT = r"(?<![\w.+#@&'’-])"
_SHORT_RIGHT = r"(?![\w+#&'’]|[.-]\w)"

_URL = re.compile(
    r"(?:https?://|www\.)\S+|\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+|"
    r"\b(?:[a-z0-9-]+\.)+(?:com|de|io|dev|net|org|me|app|ch|at|uk|eu)/\S*",
    re.IGNORECASE,
)
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Skill:
    name: str
    category: str
    aliases: tuple[str, ...] = ()
    case_sensitive: tuple[str, ...] = ()


def _trie_pattern(words: Iterable[str]) -> str:
    """A regular expression matching exactly `words`, longest first, as a trie."""
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        ends = "" in node
        branches = [_char(char) + emit(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        if len(branches) == 1 and not ends:
            return branches[0]
        body = "(?:" + "|".join(branches) + ")"
        return body + "?" if ends else body

    return emit(root)


def _char(char: str) -> str:
    return r"\s" if char == " " else re.escape(char)


def _spelling(value: str) -> str:
    return _SPACE.sub(" ", value.strip())


class SkillMatcher:
    """Finds canonical skill names in text and canonicalises user input."""

    def __init__(self, skills: Sequence[Skill]) -> None:
        self.skills = tuple(skills)
        self._insensitive: dict[str, str] = {}
        self._sensitive: dict[str, str] = {}
        self._names: dict[str, str] = {}
        for skill in self.skills:
            self._names.setdefault(skill.name.casefold(), skill.name)
            exact = {_spelling(s) for s in skill.case_sensitive}
            spellings = list(skill.aliases)
            if skill.name not in exact:
                spellings.append(skill.name)
            for spelling in spellings:
                self._insensitive.setdefault(_spelling(spelling).casefold(), skill.name)
            for spelling in exact:
                self._sensitive.setdefault(spelling, skill.name)
        groups = []
        for words, flags in ((self._insensitive, "(?i:"), (self._sensitive, "(?:")):
            long_words = [w for w in words if len(w) > 2]
            short_words = [w for w in words if len(w) <= 2]
            if long_words:
                groups.append(f"{_LEFT}{flags}{_trie_pattern(long_words)}){_RIGHT}")
            if short_words:
                groups.append(f"{_SHORT_LEFT}{flags}{_trie_pattern(short_words)}){_SHORT_RIGHT}")
        self._pattern = re.compile("|".join(groups) if groups else r"(?!x)x")

    def __len__(self) -> int:
        return len(self.skills)

    def find(self, text: str) -> list[str]:
        """Canonical names of the skills mentioned in `text`, in order of first mention."""
        cleaned = _SPACE.sub(" ", _URL.sub(" ", text))
        found: dict[str, None] = {}
        for match in self._pattern.finditer(cleaned):
            spelling = _SPACE.sub(" ", match.group(0))
            name = self._sensitive.get(spelling) or self._insensitive.get(spelling.casefold())
            if name is not None:
                found.setdefault(name, None)
        return list(found)

    def canonical(self, value: str) -> str | None:
        """The canonical name for a skill a user typed (a name or any alias)."""
        spelling = _spelling(value)
        return (
            self._names.get(spelling.casefold())
            or self._sensitive.get(spelling)
            or self._insensitive.get(spelling.casefold())
        )

    def normalise(self, values: Iterable[str]) -> list[str]:
        """Canonical names for user-given skills; unknown ones are kept as typed."""
        result: dict[str, None] = {}
        for value in values:
            spelling = _spelling(value)
            if spelling:
                result.setdefault(self.canonical(spelling) or spelling, None)
        return list(result)


def _skill(entry: dict[str, Any]) -> Skill:
    return Skill(
        name=str(entry["name"]),
        category=str(entry.get("category", "other")),
        aliases=tuple(str(a) for a in entry.get("aliases", ())),
        case_sensitive=tuple(str(a) for a in entry.get("case_sensitive", ())),
    )


@lru_cache(maxsize=1)
def builtin_skills() -> tuple[Skill, ...]:
    """The taxonomy shipped with the package."""
    raw = resources.files(DATA_PACKAGE).joinpath(DATA_FILE).read_text(encoding="utf-8")
    return tuple(_skill(entry) for entry in json.loads(raw)["skills"])


TenantSkills = tuple[tuple[str, tuple[str, ...]], ...]


@lru_cache(maxsize=64)
def matcher_for(tenant_skills: TenantSkills = ()) -> SkillMatcher:
    """The matcher for the built-in taxonomy plus a tenant's skills
    (`((name, aliases), ...)`, hashable so matchers are cached per content).
    A tenant skill whose name or alias is a built-in spelling takes it over."""
    own = [Skill(name=name, category="tenant", aliases=aliases) for name, aliases in tenant_skills]
    return SkillMatcher([*own, *builtin_skills()])
