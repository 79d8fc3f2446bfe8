"""SQL of documents."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import Select, String, bindparam, func, select, text

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
    Document.metadata_,
    Document.version,
    Document.created_at,
    Document.updated_at,
    Document.deleted_at,
)


def search_query() -> Any:
    """The statement's `q` parameter as a full-text query (web-search syntax)."""
    return func.websearch_to_tsquery(
        text(f"'{SEARCH_CONFIG}'::regconfig"), bindparam("q", type_=String)
    )


class DocumentRepository(Repository[Document]):
    model = Document
    resource_name = "Document"

    def listed_rows(self, *, include_deleted: bool, filters: frozenset[str]) -> Select[Any]:
        """The `LISTED` columns for `paginate_rows`: the tenant (`tenant_id`)
        and each filter named in `filters` are `bindparam`s of the same names
        (`tag` takes a one-item list), so the statement is built once per
        combination of filters."""
        stmt = select(*LISTED).where(
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
            stmt = stmt.where(Document.search_vector.op("@@")(search_query()))
        return stmt

    async def paginate_ranked(
        self, stmt: Select[Any], params: dict[str, Any], query: ListQuery
    ) -> PageResult[Any]:
        """Offset pages of a `listed_rows` statement searching `q`, ordered by
        full-text relevance, then newest first."""
        connection = await self.session.connection()
        count = select(func.count()).select_from(stmt.order_by(None).subquery())
        total = (await connection.execute(count, params)).scalar()
        rank = func.ts_rank_cd(Document.search_vector, search_query())
        page = (
            stmt.order_by(rank.desc(), Document.created_at.desc(), Document.id.desc())
            .offset((query.page - 1) * query.page_size)
            .limit(query.page_size)
        )
        items = list((await connection.execute(page, params)).mappings())
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

    async def lock_tenant_storage(self, tenant_id: UUID) -> None:
        """Serialise quota checks of one tenant until the transaction ends."""
        await self.session.execute(
            select(func.pg_advisory_xact_lock(func.hashtextextended(f"storage:{tenant_id}", 0)))
        )

    async def in_case(self, case_id: UUID) -> list[UUID]:
        stmt = self._tenant_filter(select(Document.id)).where(Document.case_id == case_id)
        return list((await self.session.execute(stmt)).scalars())
