"""Hot lists: each statement built once per shape, read on a bare connection.

A list request differs from the next in its values far more often than in
its shape (which filters are given, the sort, offset or keyset paging). A
`HotList` builds the statement for a shape once, with `bindparam`s where the
values go, and keeps it: each request only binds its values. SQLAlchemy then
finds the compiled SQL under the statement's memoised cache key, so a
request spends nothing on building the statement, on computing its cache
key or on compiling it, and the rows are read as plain mappings on the
request's Core connection (no ORM session, no instances).

Ordering and keyset paging follow the list contract of
`backend.kit.pagination`: the sort field then `id`, `NULLS LAST`, a cursor
resuming strictly after its row. Row-level security and the explicit tenant
filter are untouched: the tenant is a bound value like any other, and the
connection's transaction runs in the tenant's scope.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from operator import getitem
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, inspect, or_, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.kit.pagination import ListQuery, PageResult, SortSpec, encode_cursor

# Builds a list's statement for one shape: `binds` holds a `bindparam` for
# each filter given (by filter name), `flags` the list's structural switches.
Builder = Callable[[Mapping[str, Any], Hashable], Select[Any]]
Reader = Callable[[Any, str], Any]

_LIMIT, _OFFSET = "page_limit", "page_offset"
_AFTER_VALUE, _AFTER_ID = "after_value", "after_id"


def sort_order(model: Any, sort: SortSpec) -> list[Any]:
    """`ORDER BY` of a list: the sort field (`NULLS LAST`), then `id`."""
    column = getattr(model, sort.field)
    if sort.descending:
        # `DESC NULLS LAST` cannot walk a plain index backwards; a NOT NULL
        # column needs no NULLS clause, so its tenant-leading index serves.
        descending = column.desc()
        return [
            descending.nulls_last() if nullable(model, sort.field) else descending,
            model.id.desc(),
        ]
    return [column.asc().nulls_last(), model.id.asc()]


def nullable(model: Any, field: str) -> bool:
    return bool(inspect(model).columns[field].nullable)


def after_row(model: Any, sort: SortSpec, value: Any, row_id: Any) -> Any:
    """Rows strictly after the cursor's row in `(field NULLS LAST, id)`
    order. `value` None means the cursor's row had no value; `value` and
    `row_id` may be values or `bindparam`s."""
    column = getattr(model, sort.field)
    id_after = model.id < row_id if sort.descending else model.id > row_id
    if value is None:
        return and_(column.is_(None), id_after)
    value_after = column < value if sort.descending else column > value
    clauses = [value_after, and_(column == value, id_after)]
    if nullable(model, sort.field):
        clauses.append(column.is_(None))
    return or_(*clauses)


def keyset_page(rows: list[Any], query: ListQuery, read: Reader = getitem) -> PageResult[Any]:
    """The keyset page of `rows` read with one row more than the page holds:
    that row, if there, says a next page exists, and the page's last row
    makes the cursor to it. `read(row, name)` reads a column of a row."""
    next_cursor = None
    if len(rows) > query.page_size:
        rows = rows[: query.page_size]
        last = rows[-1]
        next_cursor = encode_cursor(query.sort, read(last, query.sort.field), read(last, "id"))
    return PageResult(items=rows, query=query, next_cursor=next_cursor)


@dataclass(frozen=True, slots=True)
class _Statements:
    page: Select[Any]
    count: Select[Any] | None  # offset pages only


class HotList:
    """The statements of one list, by shape (at most `max_shapes` kept, the
    least recently used dropped first)."""

    def __init__(self, model: Any, build: Builder, *, max_shapes: int = 256) -> None:
        self.model = model
        self._build = build
        self._statements = functools.lru_cache(maxsize=max_shapes)(self._make)

    async def page(
        self,
        connection: AsyncConnection,
        query: ListQuery,
        values: Mapping[str, Any],
        flags: Hashable = (),
    ) -> PageResult[RowMapping]:
        """A page of rows: `values` are the filters (None: not given) and
        `flags` the structural switches (include deleted rows, say) of this
        request. The statement's columns must include `id` and the sort field
        under their names."""
        given = tuple(sorted(name for name, value in values.items() if value is not None))
        params = {_bind_name(name): values[name] for name in given}
        after = query.after if query.keyset else None
        after_null = after is not None and after[0] is None
        statements = self._statements(
            given, flags, query.sort, query.keyset, after is not None, after_null
        )
        if not query.keyset:
            params[_OFFSET] = (query.page - 1) * query.page_size
            params[_LIMIT] = query.page_size
            assert statements.count is not None
            total = (await connection.execute(statements.count, params)).scalar()
            rows = list((await connection.execute(statements.page, params)).mappings())
            return PageResult(items=rows, query=query, total=total or 0)
        if after is not None:
            if not after_null:
                params[_AFTER_VALUE] = after[0]
            params[_AFTER_ID] = after[1]
        params[_LIMIT] = query.page_size + 1
        return keyset_page(
            list((await connection.execute(statements.page, params)).mappings()), query
        )

    def _make(
        self,
        given: tuple[str, ...],
        flags: Hashable,
        sort: SortSpec,
        keyset: bool,
        has_after: bool,
        after_null: bool,
    ) -> _Statements:
        stmt = self._build({name: bindparam(_bind_name(name)) for name in given}, flags)
        order = sort_order(self.model, sort)
        if not keyset:
            count = select(func.count()).select_from(stmt.order_by(None).subquery())
            page = stmt.order_by(*order).offset(bindparam(_OFFSET)).limit(bindparam(_LIMIT))
            return _Statements(page=page, count=count)
        if has_after:
            value: Any = None if after_null else bindparam(_AFTER_VALUE)
            stmt = stmt.where(after_row(self.model, sort, value, bindparam(_AFTER_ID)))
        return _Statements(page=stmt.order_by(*order).limit(bindparam(_LIMIT)), count=None)


def _bind_name(name: str) -> str:
    """Filters bind as `filter_<name>`, apart from the paging parameters."""
    return f"filter_{name}"
