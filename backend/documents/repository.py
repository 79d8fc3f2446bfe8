"""SQL of documents."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import (
    Select,
    String,
    and_,
    bindparam,
    case,
    delete,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from backend.documents.models import Document, DocumentPage
from backend.kit.models import uuid7
from backend.kit.pagination import ListQuery, PageResult
from backend.kit.repository import Repository

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
    Document.document_type,
    Document.extracted_data,
    Document.extraction,
    Document.metadata_.label("metadata_"),
    Document.confidence,
    Document.version,
    Document.created_at,
    Document.updated_at,
    Document.deleted_at,
)


# Full-text search in each document's language (the same rule as the
# vector's, see `DOCUMENT_REGCONFIG`): one condition per configuration, so
# the GIN index answers each with a constant query.
_CONFIGS = {"german": "german", "english": "english", "simple": "simple"}


def _tsquery(config: str) -> Any:
    return func.websearch_to_tsquery(
        literal_column(f"'{_CONFIGS[config]}'::regconfig"), bindparam("q", type_=String)
    )


def search_condition() -> Any:
    """The statement's `q` parameter (web-search syntax) matched in the
    document's own language: German stems for German documents."""
    vector = Document.search_vector
    return or_(
        and_(Document.language == "de", vector.op("@@")(_tsquery("german"))),
        and_(
            or_(Document.language == "en", Document.language.is_(None)),
            vector.op("@@")(_tsquery("english")),
        ),
        and_(Document.language.not_in(["de", "en"]), vector.op("@@")(_tsquery("simple"))),
    )


def search_rank() -> Any:
    query = case(
        (Document.language == "de", _tsquery("german")),
        (or_(Document.language == "en", Document.language.is_(None)), _tsquery("english")),
        else_=_tsquery("simple"),
    )
    return func.ts_rank_cd(Document.search_vector, query)


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
        for name in ("document_type", "language"):
            if name in filters:
                column = getattr(Document, name)
                stmt = stmt.where(column == bindparam(name, type_=column.type))
        if "supplier" in filters:
            # `supplier`: a lower-case LIKE pattern; `supplier_vat`: a compact VAT id.
            supplier_name = func.lower(Document.extracted_data["supplier_name"].astext)
            vat_id = Document.extracted_data["supplier_vat_id"].astext
            stmt = stmt.where(
                or_(
                    supplier_name.like(bindparam("supplier", type_=String), escape="\\"),
                    vat_id == bindparam("supplier_vat", type_=String),
                )
            )
        if "metadata" in filters:
            stmt = stmt.where(Document.metadata_.op("@>")(bindparam("metadata", type_=JSONB)))
        if "q" in filters:
            stmt = stmt.where(search_condition())
        return stmt

    async def paginate_ranked(
        self, stmt: Select[Any], params: dict[str, Any], query: ListQuery
    ) -> PageResult[Any]:
        """Offset pages of a `listed_rows` statement searching `q`, ordered by
        full-text relevance, then newest first."""
        connection = await self.session.connection()
        count = select(func.count()).select_from(stmt.order_by(None).subquery())
        total = (await connection.execute(count, params)).scalar()
        rank = search_rank()
        page = (
            stmt.order_by(rank.desc(), Document.created_at.desc(), Document.id.desc())
            .offset((query.page - 1) * query.page_size)
            .limit(query.page_size)
        )
        items = list((await connection.execute(page, params)).mappings())
        return PageResult(items=items, query=query, total=total or 0)

    async def write_extraction(self, document: Document, values: dict[str, Any]) -> None:
        """Set an extraction's columns (the text among them, a deferred
        column the ORM would have to load first) in one UPDATE."""
        await self.session.execute(
            update(Document)
            .where(Document.tenant_id == document.tenant_id, Document.id == document.id)
            .values(**values, version=Document.version + 1, updated_at=func.now())
            .execution_options(synchronize_session=False)
        )
        await self.session.refresh(
            document, [*(k for k in values if k != "extracted_text"), "version", "updated_at"]
        )

    async def text_of(self, document_id: UUID) -> str | None:
        stmt = self._tenant_filter(select(Document.extracted_text)).where(
            Document.id == document_id
        )
        text: str | None = await self.session.scalar(stmt)
        return text

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


class DocumentPageRepository:
    """SQL of `document_pages` (the rows of one document at a time, always
    within the session's tenant through row-level security and the filter)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def pages_of(self, tenant_id: UUID, document_id: UUID) -> list[DocumentPage]:
        stmt = (
            select(DocumentPage)
            .where(DocumentPage.tenant_id == tenant_id, DocumentPage.document_id == document_id)
            .order_by(DocumentPage.number)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def page(self, tenant_id: UUID, document_id: UUID, number: int) -> DocumentPage | None:
        stmt = (
            select(DocumentPage)
            .options(undefer(DocumentPage.text))
            .where(
                DocumentPage.tenant_id == tenant_id,
                DocumentPage.document_id == document_id,
                DocumentPage.number == number,
            )
        )
        page: DocumentPage | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return page

    async def texts(self, tenant_id: UUID, document_id: UUID) -> list[str]:
        stmt = (
            select(DocumentPage.text)
            .where(DocumentPage.tenant_id == tenant_id, DocumentPage.document_id == document_id)
            .order_by(DocumentPage.number)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def replace(self, tenant_id: UUID, document_id: UUID, rows: list[dict[str, Any]]) -> None:
        await self.session.execute(
            delete(DocumentPage).where(
                DocumentPage.tenant_id == tenant_id, DocumentPage.document_id == document_id
            )
        )
        if rows:
            await self.session.execute(
                insert(DocumentPage),
                [
                    {**row, "id": uuid7(), "tenant_id": tenant_id, "document_id": document_id}
                    for row in rows
                ],
            )
