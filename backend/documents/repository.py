"""SQL of documents."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BindParameter, Select, String, bindparam, func, select, text
from sqlalchemy.orm import Bundle

from backend.documents.models import Document
from backend.kit.pagination import ListQuery, PageResult
from backend.kit.repository import Repository

SEARCH_CONFIG = "english"

# What a list shows of a document (`DocumentOut`), read as plain rows: no ORM
# instances to build and track, no storage key, owner or text columns.
LISTED: Bundle[Any] = Bundle(
    "document",
    Document.id,
    Document.title,
    Document.description,
    Document.filename,
    Document.mime_type,
    Document.size,
    Document.sha256,
    Document.tags,
    Document.case_id,
    Document.status,
    Document.page_count,
    Document.language,
    Document.version,
    Document.created_at,
    Document.updated_at,
    Document.deleted_at,
)


def search_query(q: str | BindParameter[str]) -> Any:
    return func.websearch_to_tsquery(text(f"'{SEARCH_CONFIG}'::regconfig"), q)


class DocumentRepository(Repository[Document]):
    model = Document
    resource_name = "Document"

    def filtered(
        self,
        *,
        include_deleted: bool = False,
        status: str | None = None,
        case_id: UUID | None = None,
        tag: str | None = None,
        mime_type: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        q: str | None = None,
    ) -> Select[Any]:
        stmt = self.select(include_deleted=include_deleted)
        if status is not None:
            stmt = stmt.where(Document.status == status)
        if case_id is not None:
            stmt = stmt.where(Document.case_id == case_id)
        if tag is not None:
            stmt = stmt.where(Document.tags.contains([tag]))
        if mime_type is not None:
            stmt = stmt.where(Document.mime_type == mime_type)
        if created_after is not None:
            stmt = stmt.where(Document.created_at >= created_after)
        if created_before is not None:
            stmt = stmt.where(Document.created_at < created_before)
        if q is not None:
            stmt = stmt.where(Document.search_vector.op("@@")(search_query(q)))
        return stmt

    def listed_rows(self, *, include_deleted: bool, filters: frozenset[str]) -> Select[Any]:
        """The `LISTED` columns for `paginate_rows`: the tenant (`tenant_id`)
        and each filter named in `filters` are `bindparam`s of the same names
        (`tag` takes a one-item list), so the statement is built once per
        combination of filters."""
        stmt = select(*LISTED.exprs).where(
            Document.tenant_id == bindparam("tenant_id", type_=Document.tenant_id.type)
        )
        if not include_deleted:
            stmt = stmt.where(Document.deleted_at.is_(None))
        for name in ("status", "case_id", "mime_type"):
            if name in filters:
                column = getattr(Document, name)
                stmt = stmt.where(column == bindparam(name, type_=column.type))
        if "tag" in filters:
            stmt = stmt.where(Document.tags.contains(bindparam("tag", type_=Document.tags.type)))
        if "created_after" in filters:
            after = bindparam("created_after", type_=Document.created_at.type)
            stmt = stmt.where(Document.created_at >= after)
        if "created_before" in filters:
            before = bindparam("created_before", type_=Document.created_at.type)
            stmt = stmt.where(Document.created_at < before)
        if "q" in filters:
            stmt = stmt.where(
                Document.search_vector.op("@@")(search_query(bindparam("q", type_=String)))
            )
        return stmt

    def listed(self, **filters: Any) -> Select[Any]:
        """`filtered(...)` reading only the `LISTED` columns; its rows carry
        them as attributes, as a `Document` would."""
        return self.filtered(**filters).with_only_columns(LISTED)

    async def paginate_ranked(self, stmt: Select[Any], q: str, query: ListQuery) -> PageResult[Any]:
        """Offset pages ordered by full-text relevance, then newest first."""
        total = await self.session.scalar(
            select(func.count()).select_from(stmt.order_by(None).subquery())
        )
        rank = func.ts_rank_cd(Document.search_vector, search_query(q))
        result = await self.session.execute(
            stmt.order_by(rank.desc(), Document.created_at.desc(), Document.id.desc())
            .offset((query.page - 1) * query.page_size)
            .limit(query.page_size)
        )
        items = [row._mapping for row in result.scalars()]
        return PageResult(items=items, query=query, total=total or 0)

    async def live_with_sha256(self, sha256: str) -> Document | None:
        stmt = (
            self.select()
            .where(Document.sha256 == sha256)
            .order_by(Document.is_duplicate, Document.created_at)
            .limit(1)
        )
        row: Document | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return row

    async def storage_bytes(self, tenant_id: UUID) -> int:
        """Bytes held for a tenant: every document not yet purged."""
        stmt = select(func.coalesce(func.sum(Document.size), 0)).where(
            Document.tenant_id == tenant_id
        )
        return int(await self.session.scalar(stmt) or 0)

    async def storage_bytes_by_tenant(self) -> dict[UUID, int]:
        stmt = select(Document.tenant_id, func.sum(Document.size)).group_by(Document.tenant_id)
        return {row[0]: int(row[1]) for row in await self.session.execute(stmt)}

    async def lock_tenant_storage(self, tenant_id: UUID) -> None:
        """Serialise quota checks of one tenant until the transaction ends."""
        await self.session.execute(
            select(func.pg_advisory_xact_lock(func.hashtextextended(f"storage:{tenant_id}", 0)))
        )

    async def in_case(self, case_id: UUID) -> list[UUID]:
        stmt = self._tenant_filter(select(Document.id)).where(Document.case_id == case_id)
        return list((await self.session.execute(stmt)).scalars())
