"""The generic repository: tenant-filtered, soft-delete-aware CRUD and lists.

Row-level security confines every query to the current tenant underneath;
the explicit tenant filter here is kept anyway, so that PostgreSQL can use
the tenant-leading indexes and so that no query relies on one layer alone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar
from uuid import UUID

from sqlalchemy import Select, func, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from backend.kit.db import current_system_scope, current_tenant_id
from backend.kit.errors import NotFound
from backend.kit.listing import after_row, keyset_page, sort_order
from backend.kit.models import Base, SoftDeletable, TenantOwned
from backend.kit.pagination import ListQuery, PageResult

M = TypeVar("M", bound=Base)


def tenant_total(value: Any, tenant_column: Any, tenant_id: Any, *conditions: Any) -> Any:
    """The sum of `value` over the rows whose `tenant_column` is `tenant_id`
    (a value or an expression) and that meet `conditions`, 0 when none, as a
    scalar subquery: a domain's share of a tenant's usage."""
    total = select(func.coalesce(func.sum(value), 0))
    return total.where(tenant_column == tenant_id, *conditions).scalar_subquery()


class NoTenantScope(RuntimeError):
    """A tenant-owned table was queried outside any tenant or system scope."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | UUID):
        return str(value) if isinstance(value, UUID) else value.isoformat()
    return value


class Repository(Generic[M]):
    model: ClassVar[type[Base]]
    resource_name: ClassVar[str] = "Resource"

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def _model(self) -> type[M]:
        return self.model  # type: ignore[return-value]

    def _tenant_filter(self, stmt: Select[Any]) -> Select[Any]:
        if not issubclass(self.model, TenantOwned):
            return stmt
        tenant_id = current_tenant_id()
        if tenant_id is not None:
            return stmt.where(self.model.tenant_id == tenant_id)
        if current_system_scope() is None:
            raise NoTenantScope(f"{self.model.__name__} queried without a tenant")
        return stmt

    def select(self, *, include_deleted: bool = False) -> Select[Any]:
        stmt = self._tenant_filter(select(self.model))
        if issubclass(self.model, SoftDeletable) and not include_deleted:
            stmt = stmt.where(self.model.deleted_at.is_(None))
        return stmt

    async def get(self, row_id: UUID, *, include_deleted: bool = False) -> M | None:
        stmt = self.select(include_deleted=include_deleted).where(self.model.id == row_id)
        result = await self.session.execute(stmt)
        return result.scalar_one_or_none()  # type: ignore[no-any-return]

    async def get_or_raise(self, row_id: UUID, *, include_deleted: bool = False) -> M:
        row = await self.get(row_id, include_deleted=include_deleted)
        if row is None:
            raise NotFound(f"{self.resource_name} not found")
        return row

    async def add(self, row: M) -> M:
        if isinstance(row, TenantOwned) and getattr(row, "tenant_id", None) is None:
            tenant_id = current_tenant_id()
            if tenant_id is None:
                raise NoTenantScope(f"{type(row).__name__} created without a tenant")
            row.tenant_id = tenant_id
        self.session.add(row)
        await self.session.flush()
        return row

    async def create(self, **values: Any) -> M:
        return await self.add(self._model(**values))

    async def update(self, row: M, values: dict[str, Any]) -> dict[str, Any]:
        """Apply `values`; return the changes as `{field: {"before", "after"}}`."""
        changes: dict[str, Any] = {}
        for name, value in values.items():
            before = getattr(row, name)
            if before != value:
                changes[name] = {"before": _jsonable(before), "after": _jsonable(value)}
                setattr(row, name, value)
        if changes:
            if hasattr(row, "version"):
                row.version = row.version + 1
            await self.session.flush()
        return changes

    async def soft_delete(self, row: M, *, by: UUID | None) -> None:
        assert isinstance(row, SoftDeletable)
        row.deleted_at = datetime.now(UTC)
        row.deleted_by = by
        await self.session.flush()

    async def restore(self, row: M) -> None:
        assert isinstance(row, SoftDeletable)
        row.deleted_at = None
        row.deleted_by = None
        await self.session.flush()

    async def paginate(self, stmt: Select[Any], query: ListQuery) -> PageResult[M]:
        order = sort_order(self.model, query.sort)
        if not query.keyset:
            total = await self.session.scalar(
                select(func.count()).select_from(stmt.order_by(None).subquery())
            )
            offset = (query.page - 1) * query.page_size
            result = await self.session.execute(
                stmt.order_by(*order).offset(offset).limit(query.page_size)
            )
            return PageResult(items=list(result.scalars()), query=query, total=total or 0)

        if query.after is not None:
            stmt = stmt.where(after_row(self.model, query.sort, *query.after))
        result = await self.session.execute(stmt.order_by(*order).limit(query.page_size + 1))
        return keyset_page(list(result.scalars()), query, getattr)

    async def paginate_rows(self, stmt: Select[Any], query: ListQuery) -> PageResult[RowMapping]:
        """`paginate` for lists whose statement is built per request (an
        arbitrary search filter): a statement of columns (no ORM objects),
        read on the session's connection. Lists of a few fixed filters use a
        `HotList` instead, built once per shape. The columns must include
        `id` and the sort field under their names."""
        connection = await self.session.connection()
        order = sort_order(self.model, query.sort)
        if not query.keyset:
            count = select(func.count()).select_from(stmt.order_by(None).subquery())
            total = (await connection.execute(count)).scalar()
            page = stmt.order_by(*order).offset((query.page - 1) * query.page_size)
            rows = list((await connection.execute(page.limit(query.page_size))).mappings())
            return PageResult(items=rows, query=query, total=total or 0)
        if query.after is not None:
            stmt = stmt.where(after_row(self.model, query.sort, *query.after))
        page = stmt.order_by(*order).limit(query.page_size + 1)
        return keyset_page(list((await connection.execute(page)).mappings()), query)
