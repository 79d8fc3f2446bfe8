"""The one list contract: `sort`, and offset (`page`, `page_size`) or keyset
(`limit`, `cursor`) pagination.

Without any paging parameter a list answers page 1 of the offset envelope.
A cursor is bound to the sort it was made with; keyset pages order by the sort
field then `id`, so pages are stable even among equal values.
"""

import base64
import binascii
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar, Generic, TypeVar
from uuid import UUID

import orjson
from fastapi import Depends, Query, Response
from pydantic import BaseModel, Field, create_model

from backend.kit.errors import ValidationFailed

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


class Page(BaseModel, Generic[T]):
    """Offset pagination envelope."""

    items: list[T]
    total: int
    page: int
    page_size: int
    pages: int


class CursorPage(BaseModel, Generic[T]):
    """Keyset pagination envelope; `next_cursor` is null on the last page."""

    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class SortSpec:
    field: str
    descending: bool

    def __str__(self) -> str:
        return f"-{self.field}" if self.descending else self.field


@dataclass(frozen=True, slots=True)
class ListQuery:
    sort: SortSpec
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    keyset: bool = False
    after: tuple[Any, UUID] | None = None  # decoded cursor: (sort value, id)


@dataclass(frozen=True, slots=True)
class PageResult(Generic[T]):
    """What a repository returns; `envelope()` maps items to the answer's schema."""

    items: list[T]
    query: ListQuery
    total: int | None = None
    next_cursor: str | None = None

    def envelope(self, items: Sequence[Any]) -> Page[Any] | CursorPage[Any]:
        if self.query.keyset:
            return CursorPage(items=list(items), next_cursor=self.next_cursor)
        total = self.total or 0
        return Page(
            items=list(items),
            total=total,
            page=self.query.page,
            page_size=self.query.page_size,
            pages=math.ceil(total / self.query.page_size) if total else 0,
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, UUID):
        return {"u": str(value)}
    return value


def _from_jsonable(value: Any) -> Any:
    if isinstance(value, dict) and "t" in value:
        return datetime.fromisoformat(value["t"])
    if isinstance(value, dict) and "u" in value:
        return UUID(value["u"])
    return value


def encode_cursor(sort: SortSpec, value: Any, row_id: UUID) -> str:
    raw = json.dumps({"s": str(sort), "v": _jsonable(value), "id": str(row_id)})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: SortSpec) -> tuple[Any, UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if data["s"] != str(sort):
            raise ValueError("cursor made for another sort")
        return _from_jsonable(data["v"]), UUID(data["id"])
    except (ValueError, KeyError, TypeError, binascii.Error, json.JSONDecodeError):
        raise ValidationFailed(
            "Invalid cursor",
            errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor", "type": "value_error"}],
        ) from None


def _query_error(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        message, errors=[{"loc": ["query", field], "msg": message, "type": "value_error"}]
    )


def make_list_query(
    sortable: Sequence[str],
    sort: str,
    *,
    page: int | None = None,
    page_size: int | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> ListQuery:
    """The list parameters checked against `sortable` fields (from a query
    string through `list_query`, or from a JSON body such as a search)."""
    spec = SortSpec(sort.removeprefix("-"), sort.startswith("-"))
    if spec.field not in sortable:
        raise _query_error("sort", f"sort must be one of: {', '.join(sortable)}")
    keyset = limit is not None or cursor is not None
    if keyset and (page is not None or page_size is not None):
        raise _query_error("cursor", "use either page/page_size or limit/cursor")
    if keyset:
        return ListQuery(
            sort=spec,
            page_size=limit or DEFAULT_PAGE_SIZE,
            keyset=True,
            after=decode_cursor(cursor, spec) if cursor else None,
        )
    return ListQuery(sort=spec, page=page or 1, page_size=page_size or DEFAULT_PAGE_SIZE)


def sort_field(sortable: Sequence[str], default: str = "-created_at") -> Any:
    """The `sort` field of a `ListParams` subclass allowing `sortable`."""
    allowed = ", ".join(f"`{name}`" for name in sortable)
    return Field(default, description=f"Sort field, `-field` for descending. Allowed: {allowed}.")


class ListParams(BaseModel):
    """The list contract's query parameters, parsed as one model (FastAPI's
    query-parameter models: `Annotated[Params, Query()]`) rather than one by
    one. A list route with filters subclasses it, adds them as fields, sets
    `sortable` and overrides `sort` with `sort_field(sortable, default)`."""

    sortable: ClassVar[tuple[str, ...]] = ("created_at",)

    sort: str = sort_field(("created_at",))
    page: int | None = Field(None, ge=1, description="Offset pagination: page number")
    page_size: int | None = Field(
        None, ge=1, le=MAX_PAGE_SIZE, description="Offset pagination: page size"
    )
    limit: int | None = Field(
        None, ge=1, le=MAX_PAGE_SIZE, description="Keyset pagination: page size"
    )
    cursor: str | None = Field(
        None, max_length=1024, description="Keyset pagination: `next_cursor`"
    )

    def list_query(self) -> ListQuery:
        return make_list_query(
            self.sortable,
            self.sort,
            page=self.page,
            page_size=self.page_size,
            limit=self.limit,
            cursor=self.cursor,
        )


def list_query(sortable: Sequence[str], default: str = "-created_at") -> Any:
    """A dependency parsing the list parameters against `sortable` fields
    (for lists whose filters are parameters of their own)."""
    params = create_model(
        "ListParams",
        __base__=ListParams,
        sort=(str, sort_field(sortable, default)),
    )
    params.sortable = tuple(sortable)

    async def dependency(  # async: a plain def would run in the thread pool
        values: Annotated[params, Query()],
    ) -> ListQuery:
        query: ListQuery = values.list_query()
        return query

    return Depends(dependency)


_JSON_OPTIONS = orjson.OPT_UTC_Z


def _json_default(value: Any) -> Any:
    """What orjson does not take natively: asyncpg's own `UUID` subclass."""
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def page_json(result: PageResult[Any]) -> Response:
    """The envelope of `result`, whose items are rows (mappings of what the
    database typed: UUIDs, datetimes, enums, lists), as JSON bytes, serialised
    once by orjson with no model validation per item. The route keeps its
    `response_model` for the OpenAPI description; tests compare the bytes
    with what that model would answer."""
    body: dict[str, Any]
    items = [dict(row) for row in result.items]
    if result.query.keyset:
        body = {"items": items, "next_cursor": result.next_cursor}
    else:
        total = result.total or 0
        size = result.query.page_size
        body = {
            "items": items,
            "total": total,
            "page": result.query.page,
            "page_size": size,
            "pages": math.ceil(total / size) if total else 0,
        }
    return Response(
        orjson.dumps(body, default=_json_default, option=_JSON_OPTIONS),
        media_type="application/json",
    )
