"""Scoring extracted fields against a sample's ground truth."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any


def same(name: str, expected: Any, actual: Any) -> bool:
    if name == "parties" and isinstance(actual, list):
        return sorted(expected) == sorted(actual)
    return bool(expected == actual)


@dataclass
class Scores:
    """Hits per field and per document type over a corpus."""

    fields: dict[str, list[bool]] = field(default_factory=lambda: defaultdict(list))
    types: list[bool] = field(default_factory=list)
    misses: list[tuple[str, str, Any, Any]] = field(default_factory=list)

    def add(
        self,
        name: str,
        truth_type: str,
        truth: dict[str, Any],
        found_type: str,
        data: dict[str, Any],
    ) -> None:
        self.types.append(found_type == truth_type)
        for key, expected in truth.items():
            hit = same(key, expected, data.get(key))
            self.fields[key].append(hit)
            if not hit:
                self.misses.append((name, key, expected, data.get(key)))

    @property
    def classification(self) -> float:
        return sum(self.types) / len(self.types)

    @property
    def overall(self) -> float:
        hits = [hit for values in self.fields.values() for hit in values]
        return sum(hits) / len(hits)

    def field_accuracy(self, name: str) -> float:
        return sum(self.fields[name]) / len(self.fields[name])

    def report(self, title: str) -> str:
        lines = [
            f"{title}: {len(self.types)} documents, classification {self.classification:.1%}, "
            f"fields {self.overall:.1%}"
        ]
        for name in sorted(self.fields):
            values = self.fields[name]
            lines.append(
                f"  {name:22s} {sum(values):3d}/{len(values):3d} {sum(values) / len(values):6.1%}"
            )
        for miss in self.misses[:20]:
            lines.append(f"  miss {miss}")
        return "\n".join(lines)
