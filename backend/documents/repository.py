"""SQL of documents."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import (
    Select,
    String,
    and_,
    case,
    delete,
    exists,
    func,
    literal_column,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import undefer

from backend.documents.models import Document, DocumentPage
from backend.kit.models import uuid7
from backend.kit.pagination import ListQuery, PageResult
from backend.kit.repository import Repository, tenant_total

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
    Document.metadata_.label("metadata"),
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


def _tsquery(config: str, q: Any) -> Any:
    return func.websearch_to_tsquery(
        literal_column(f"'{_CONFIGS[config]}'::regconfig"), type_coerce(q, String)
    )


def search_condition(q: Any) -> Any:
    """`q` (web-search syntax; a value or a `bindparam`) matched in the
    document's own language: German stems for German documents."""
    vector = Document.search_vector
    return or_(
        and_(Document.language == "de", vector.op("@@")(_tsquery("german", q))),
        and_(
            or_(Document.language == "en", Document.language.is_(None)),
            vector.op("@@")(_tsquery("english", q)),
        ),
        and_(Document.language.not_in(["de", "en"]), vector.op("@@")(_tsquery("simple", q))),
    )


def search_rank(q: str) -> Any:
    query = case(
        (Document.language == "de", _tsquery("german", q)),
        (or_(Document.language == "en", Document.language.is_(None)), _tsquery("english", q)),
        else_=_tsquery("simple", q),
    )
    return func.ts_rank_cd(Document.search_vector, query)


class DocumentRepository(Repository[Document]):
    model = Document
    resource_name = "Document"

    @staticmethod
    def listed_rows(
        tenant_id: Any,
        *,
        include_deleted: bool = False,
        status: Any = None,
        case_id: Any = None,
        mime_type: Any = None,
        tags: Any = None,
        created_after: Any = None,
        created_before: Any = None,
        document_type: Any = None,
        language: Any = None,
        supplier_pattern: Any = None,
        supplier_vat_id: Any = None,
        metadata: Any = None,
        q: Any = None,
    ) -> Select[Any]:
        """The `LISTED` columns of the tenant's documents, narrowed by each
        filter given (values or `bindparam`s): `tags` a list the document's
        tags contain, `supplier_pattern` a LIKE pattern of the lower-cased
        supplier name or `supplier_vat_id` its VAT id, `metadata` an object
        the user metadata contains, `q` a web-search query."""
        stmt = select(*LISTED).where(Document.tenant_id == tenant_id)
        if not include_deleted:
            stmt = stmt.where(Document.deleted_at.is_(None))
        for column, value in (
            (Document.status, status),
            (Document.case_id, case_id),
            (Document.mime_type, mime_type),
            (Document.document_type, document_type),
            (Document.language, language),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        if tags is not None:
            stmt = stmt.where(Document.tags.contains(tags))
        if created_after is not None:
            stmt = stmt.where(Document.created_at >= created_after)
        if created_before is not None:
            stmt = stmt.where(Document.created_at < created_before)
        if supplier_pattern is not None:
            name = func.lower(Document.extracted_data["supplier_name"].astext)
            stmt = stmt.where(
                or_(
                    name.like(supplier_pattern, escape="\\"),
                    Document.extracted_data["supplier_vat_id"].astext == supplier_vat_id,
                )
            )
        if metadata is not None:
            stmt = stmt.where(Document.metadata_.contains(metadata))
        if q is not None:
            stmt = stmt.where(search_condition(q))
        return stmt

    @staticmethod
    async def page_ranked(
        connection: AsyncConnection, stmt: Select[Any], q: str, query: ListQuery
    ) -> PageResult[Any]:
        """Offset pages of a `listed_rows` statement searching `q`, ordered by
        full-text relevance, then newest first."""
        count = select(func.count()).select_from(stmt.order_by(None).subquery())
        total = (await connection.execute(count)).scalar()
        rank = search_rank(q)
        page = (
            stmt.order_by(rank.desc(), Document.created_at.desc(), Document.id.desc())
            .offset((query.page - 1) * query.page_size)
            .limit(query.page_size)
        )
        items = list((await connection.execute(page)).mappings())
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

    @staticmethod
    def storage_bytes_of(tenant_id: Any) -> Any:
        """Bytes held for the tenant `tenant_id` (a value or an expression):
        every document not yet purged, as a scalar subquery."""
        return tenant_total(Document.size, Document.tenant_id, tenant_id)

    @staticmethod
    def live_clause(document_id: Any) -> Any:
        """SQL true when the document whose id is the expression
        `document_id` exists and is not soft-deleted."""
        return exists().where(Document.id == document_id, Document.deleted_at.is_(None))

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
