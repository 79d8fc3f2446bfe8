"""The JSON filter language of `POST /documents/search`, compiled to one
SQLAlchemy condition whose values are all bound parameters.

    F := {"and": [F, ...]} | {"or": [F, ...]} | {"not": F}
       | {"field": path, "op": op, "value": v}

Paths: `title`, `filename`, `mime_type`, `size`, `status`, `document_type`,
`language`, `tags`, `case_id`, `created_at`, `metadata.<key>`,
`extracted_data.<key>`. Ops: `eq`, `ne`, `lt`, `lte`, `gt`, `gte`, `in`,
`contains` (substring of a string, case-insensitive; membership of an
array), `exists` (value true or false). JSON values compare as numbers where
the filter's value is a number or a decimal string, else as text; string
equality on `metadata.<key>` is a containment test the GIN index answers.
Unknown paths or ops, wrong value types, more than `MAX_DEPTH` levels or
`MAX_CONDITIONS` conditions raise `ValidationFailed` (422) naming the spot.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Numeric,
    String,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    not_,
    or_,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.sql.elements import ColumnElement

from backend.documents.models import Document
from backend.kit.errors import ValidationFailed

MAX_DEPTH = 5
MAX_CONDITIONS = 50
MAX_IN_VALUES = 100
MAX_STRING = 500
OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "contains", "exists")
COMPARISONS = ("lt", "lte", "gt", "gte")

STRING_FIELDS = ("title", "filename", "mime_type", "status", "document_type", "language")
JSON_FIELDS = ("metadata", "extracted_data")
FIELDS = (*STRING_FIELDS, "size", "tags", "case_id", "created_at")
_KEY = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_DECIMAL = re.compile(r"^-?\d+(?:\.\d+)?$")
_DECIMAL_SQL = r"^-?[0-9]+(\.[0-9]+)?$"


class _Compiler:
    def __init__(self) -> None:
        self.conditions = 0

    def error(self, loc: list[str | int], message: str) -> ValidationFailed:
        return ValidationFailed(
            f"Invalid filter: {message}",
            errors=[{"loc": ["body", "filter", *loc], "msg": message, "type": "value_error"}],
        )

    def node(self, node: Any, loc: list[str | int], depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise self.error(loc, f"filters nest at most {MAX_DEPTH} levels")
        if not isinstance(node, dict):
            raise self.error(loc, "a filter is an object")
        if set(node) == {"and"} or set(node) == {"or"}:
            name = next(iter(node))
            items = node[name]
            if not isinstance(items, list) or not items:
                raise self.error([*loc, name], f"`{name}` takes a non-empty list of filters")
            parts = [
                self.node(item, [*loc, name, index], depth + 1) for index, item in enumerate(items)
            ]
            return and_(*parts) if name == "and" else or_(*parts)
        if set(node) == {"not"}:
            return not_(self.node(node["not"], [*loc, "not"], depth + 1))
        if "field" in node and "op" in node and set(node) <= {"field", "op", "value"}:
            self.conditions += 1
            if self.conditions > MAX_CONDITIONS:
                raise self.error(loc, f"at most {MAX_CONDITIONS} conditions")
            return self.condition(node, loc)
        raise self.error(loc, "expected and, or, not, or field/op/value")

    def condition(self, node: dict[str, Any], loc: list[str | int]) -> Any:
        path, op = node["field"], node["op"]
        if not isinstance(op, str) or op not in OPS:
            raise self.error([*loc, "op"], f"op must be one of {', '.join(OPS)}")
        if op != "exists" and "value" not in node:
            raise self.error([*loc, "value"], "value is required")
        value = node.get("value")
        if not isinstance(path, str):
            raise self.error([*loc, "field"], "field must be a string")
        if op == "in" and (not isinstance(value, list) or not 0 < len(value) <= MAX_IN_VALUES):
            raise self.error([*loc, "value"], f"`in` takes a list of 1-{MAX_IN_VALUES} values")
        if op == "exists" and not isinstance(value, bool | None):
            raise self.error([*loc, "value"], "`exists` takes true or false")
        root, dot, key = path.partition(".")
        if root in JSON_FIELDS and dot:
            if not _KEY.match(key):
                raise self.error([*loc, "field"], "keys are 1-64 letters, digits, _ or -")
            return self.json(root, key, op, value, [*loc, "value"])
        if path not in FIELDS:
            raise self.error(
                [*loc, "field"],
                f"unknown field; use {', '.join(FIELDS)}, metadata.<key> or extracted_data.<key>",
            )
        if path == "tags":
            return self.tags(op, value, [*loc, "value"])
        column: Any = getattr(Document, path)
        if op == "exists":
            return column.is_not(None) if value is not False else column.is_(None)
        convert: Callable[[Any, list[str | int]], Any]
        if path in STRING_FIELDS:
            convert = self.string
        elif path == "size":
            convert = self.integer
        elif path == "case_id":
            convert = self.uuid
            if op in (*COMPARISONS, "contains"):
                raise self.error([*loc, "op"], f"`{op}` does not apply to case_id")
        else:
            convert = self.timestamp
        if op == "contains":
            if path not in STRING_FIELDS:
                raise self.error([*loc, "op"], f"`contains` does not apply to {path}")
            return column.ilike(self.pattern(self.string(value, [*loc, "value"])), escape="\\")
        if op == "in":
            items: list[Any] = list(value or [])
            return column.in_([convert(item, [*loc, "value", i]) for i, item in enumerate(items)])
        return self.compare(column, op, convert(value, [*loc, "value"]))

    @staticmethod
    def compare(column: Any, op: str, value: Any) -> Any:
        result: ColumnElement[bool] = {
            "eq": lambda: column == value,
            "ne": lambda: column.is_distinct_from(value),
            "lt": lambda: column < value,
            "lte": lambda: column <= value,
            "gt": lambda: column > value,
            "gte": lambda: column >= value,
        }[op]()
        return result

    def tags(self, op: str, value: Any, loc: list[str | int]) -> Any:
        column: Any = Document.tags
        if op == "exists":
            has = func.cardinality(column) > 0
            return has if value is not False else not_(has)
        if op in ("contains", "eq"):
            return column.contains(cast([self.string(value, loc)], ARRAY(String(100))))
        if op == "ne":
            return not_(column.contains(cast([self.string(value, loc)], ARRAY(String(100)))))
        if op == "in":
            values = [self.string(item, [*loc, i]) for i, item in enumerate(value)]
            return column.overlap(cast(values, ARRAY(String(100))))
        raise self.error([*loc[:-1], "op"], f"`{op}` does not apply to tags")

    def json(self, root: str, key: str, op: str, value: Any, loc: list[str | int]) -> Any:
        column: Any = Document.metadata_ if root == "metadata" else Document.extracted_data
        element = column[key]
        text = column[key].astext
        if op == "exists":
            has = column.has_key(key)
            return (
                and_(column.is_not(None), has)
                if value is not False
                else not_(func.coalesce(has, false()))
            )
        if op == "contains":
            if isinstance(value, str):
                if len(value) > MAX_STRING:
                    raise self.error(loc, f"strings are at most {MAX_STRING} characters")
                as_member = element.op("@>")(func.jsonb_build_array(literal(value, String)))
                as_text = text.ilike(self.pattern(value), escape="\\")
                return case((func.jsonb_typeof(element) == "array", as_member), else_=as_text).is_(
                    true()
                )
            member = func.to_jsonb(literal(self.scalar(value, loc)))
            return element.op("@>")(func.jsonb_build_array(member)).is_(true())
        if op == "in":
            values = [str(self.scalar(item, [*loc, i])) for i, item in enumerate(value)]
            return text.in_(values)
        number = self.number(value)
        if number is not None:
            numeric = case((text.regexp_match(_DECIMAL_SQL), cast(text, Numeric)), else_=None)
            return self.compare(numeric, op, number)
        scalar = self.scalar(value, loc)
        if op == "eq" and root == "metadata" and isinstance(scalar, str):
            # Containment: answered by the GIN index on metadata.
            return column.op("@>")(cast({key: scalar}, JSONB))
        if op in ("eq", "ne"):
            if isinstance(scalar, bool):
                return self.compare(
                    element, op, cast(literal("true" if scalar else "false"), JSONB)
                )
            return self.compare(text, op, str(scalar))
        return self.compare(text, op, str(scalar))

    def number(self, value: Any) -> Decimal | None:
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return Decimal(str(value))
        if isinstance(value, str) and _DECIMAL.match(value.strip()):
            try:
                return Decimal(value.strip())
            except InvalidOperation:
                return None
        return None

    def scalar(self, value: Any, loc: list[str | int]) -> str | bool | int | float:
        if isinstance(value, bool | int | float):
            return value
        return self.string(value, loc)

    def string(self, value: Any, loc: list[str | int]) -> str:
        if not isinstance(value, str):
            raise self.error(loc, "expected a string")
        if len(value) > MAX_STRING:
            raise self.error(loc, f"strings are at most {MAX_STRING} characters")
        return value

    def integer(self, value: Any, loc: list[str | int]) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(loc, "expected an integer")
        return value

    def uuid(self, value: Any, loc: list[str | int]) -> UUID:
        try:
            return UUID(str(value))
        except ValueError:
            raise self.error(loc, "expected a UUID") from None

    def timestamp(self, value: Any, loc: list[str | int]) -> datetime:
        if not isinstance(value, str):
            raise self.error(loc, "expected an ISO 8601 time")
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise self.error(loc, "expected an ISO 8601 time") from None

    @staticmethod
    def pattern(value: str) -> str:
        escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return f"%{escaped}%"


def compile_filter(node: Any) -> Any:
    """The condition a filter means (`true` for an empty object)."""
    if node is None or node == {}:
        return true()
    condition: ColumnElement[bool] = _Compiler().node(node, [], 1)
    return condition
