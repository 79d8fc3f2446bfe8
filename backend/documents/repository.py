"""SQL of documents."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, String, func, literal, select, text

from backend.documents.models import Document
from backend.kit.pagination import ListQuery, PageResult
from backend.kit.repository import Repository

SEARCH_CONFIG = "english"

# What a list shows of a document (`DocumentOut`), read as plain rows: no ORM
# instances to build and track, no storage key, owner or text columns.
LISTED: tuple[Any, ...] = (
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


def search_query(q: str) -> Any:
    """`q` as a full-text query (web-search syntax)."""
    return func.websearch_to_tsquery(text(f"'{SEARCH_CONFIG}'::regconfig"), literal(q, String))


class DocumentRepository(Repository[Document]):
    model = Document
    resource_name = "Document"

    def listed_rows(
        self,
        tenant_id: UUID,
        *,
        include_deleted: bool = False,
        status: Any = None,
        case_id: UUID | None = None,
        mime_type: str | None = None,
        tag: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        q: str | None = None,
    ) -> Select[Any]:
        """The `LISTED` columns of the tenant's documents, for `paginate_rows`,
        narrowed by each filter given."""
        stmt = select(*LISTED).where(Document.tenant_id == tenant_id)
        if not include_deleted:
            stmt = stmt.where(Document.deleted_at.is_(None))
        if status is not None:
            stmt = stmt.where(Document.status == status)
        if case_id is not None:
            stmt = stmt.where(Document.case_id == case_id)
        if mime_type is not None:
            stmt = stmt.where(Document.mime_type == mime_type)
        if tag is not None:
            stmt = stmt.where(Document.tags.contains([tag]))
        if created_after is not None:
            stmt = stmt.where(Document.created_at >= created_after)
        if created_before is not None:
            stmt = stmt.where(Document.created_at < created_before)
        if q is not None:
            stmt = stmt.where(Document.search_vector.op("@@")(search_query(q)))
        return stmt

    async def paginate_ranked(self, stmt: Select[Any], q: str, query: ListQuery) -> PageResult[Any]:
        """Offset pages of a `listed_rows` statement searching `q`, ordered by
        full-text relevance, then newest first."""
        connection = await self.session.connection()
        count = select(func.count()).select_from(stmt.order_by(None).subquery())
        total = (await connection.execute(count)).scalar()
        rank = func.ts_rank_cd(Document.search_vector, search_query(q))
        page = (
            stmt.order_by(rank.desc(), Document.created_at.desc(), Document.id.desc())
            .offset((query.page - 1) * query.page_size)
            .limit(query.page_size)
        )
        items = list((await connection.execute(page)).mappings())
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

    @staticmethod
    def storage_bytes_of(tenant_id: Any) -> Any:
        """Bytes held for the tenant `tenant_id` (a value or an expression):
        every document not yet purged, as a scalar subquery."""
        return (
            select(func.coalesce(func.sum(Document.size), 0))
            .where(Document.tenant_id == tenant_id)
            .scalar_subquery()
        )

    async def storage_bytes(self, tenant_id: UUID) -> int:
        """Bytes held for a tenant: every document not yet purged."""
        return int(await self.session.scalar(select(self.storage_bytes_of(tenant_id))) or 0)

    async def lock_tenant_storage(self, tenant_id: UUID) -> None:
        """Serialise quota checks of one tenant until the transaction ends."""
        await self.session.execute(
            select(func.pg_advisory_xact_lock(func.hashtextextended(f"storage:{tenant_id}", 0)))
        )

    async def in_case(self, case_id: UUID) -> list[UUID]:
        stmt = self._tenant_filter(select(Document.id)).where(Document.case_id == case_id)
        return list((await self.session.execute(stmt)).scalars())
