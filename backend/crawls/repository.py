"""SQL of crawls, their pages and exports."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert

from backend.crawls.models import Crawl, CrawlExport, CrawlPage, PageStatus
from backend.kit.db import current_tenant_id
from backend.kit.repository import Repository, tenant_total


def _contains(column: Any, text: str) -> Any:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")


class CrawlRepository(Repository[Crawl]):
    model = Crawl
    resource_name = "Crawl"

    def filtered(
        self, *, include_deleted: bool = False, status: str | None = None, q: str | None = None
    ) -> Select[Any]:
        stmt = self.select(include_deleted=include_deleted)
        if status is not None:
            stmt = stmt.where(Crawl.status == status)
        if q is not None:
            stmt = stmt.where(or_(_contains(Crawl.url, q), _contains(Crawl.title, q)))
        return stmt

    async def get_for_update(self, crawl_id: UUID) -> Crawl | None:
        stmt = self.select().where(Crawl.id == crawl_id).with_for_update()
        found: Crawl | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return found

    async def of_job(self, job_id: UUID) -> Crawl | None:
        stmt = self.select(include_deleted=True).where(Crawl.job_id == job_id)
        found: Crawl | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return found

    async def purge(self, cutoff: datetime, tenant_ids: list[UUID]) -> tuple[int, list[str]]:
        """Hard-delete crawls soft-deleted before `cutoff` and every crawl of
        the tenants being purged (pages and exports go by cascade); the
        count and the export files' storage keys (system scope)."""
        condition = Crawl.deleted_at < cutoff
        if tenant_ids:
            condition = or_(condition, Crawl.tenant_id.in_(tenant_ids))
        doomed = select(Crawl.id).where(condition)
        keys = list(
            (
                await self.session.execute(
                    select(CrawlExport.storage_key).where(CrawlExport.crawl_id.in_(doomed))
                )
            ).scalars()
        )
        result = await self.session.execute(delete(Crawl).where(condition).returning(Crawl.id))
        return len(result.all()), keys

    @staticmethod
    def storage_bytes_of(tenant_id: Any) -> Any:
        """Stored Markdown of pages plus export files of the tenant `tenant_id`
        (an expression), of live and deleted crawls alike (their bytes stay
        until purged), as a scalar expression."""
        pages = tenant_total(func.octet_length(CrawlPage.markdown), CrawlPage.tenant_id, tenant_id)
        return pages + tenant_total(CrawlExport.size, CrawlExport.tenant_id, tenant_id)


class CrawlPageRepository(Repository[CrawlPage]):
    model = CrawlPage
    resource_name = "Page"

    def _columns(self, *columns: Any) -> Select[Any]:
        stmt: Select[Any] = select(*columns)
        return self._tenant_filter(stmt)

    def filtered(
        self, crawl_id: UUID, *, status: str | None = None, q: str | None = None
    ) -> Select[Any]:
        stmt = self.select().where(CrawlPage.crawl_id == crawl_id)
        if status is not None:
            stmt = stmt.where(CrawlPage.status == status)
        if q is not None:
            stmt = stmt.where(or_(_contains(CrawlPage.url, q), _contains(CrawlPage.title, q)))
        return stmt

    async def get_in_crawl(self, crawl_id: UUID, page_id: UUID) -> CrawlPage | None:
        stmt = self.select().where(CrawlPage.crawl_id == crawl_id, CrawlPage.id == page_id)
        found: CrawlPage | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return found

    async def insert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Store pages in one statement, skipping URLs the crawl already has
        (a resumed crawl); every row has the same keys."""
        if not rows:
            return
        stmt = (
            insert(CrawlPage)
            .values(list(rows))
            .on_conflict_do_nothing(
                index_elements=[CrawlPage.tenant_id, CrawlPage.crawl_id, CrawlPage.url]
            )
        )
        await self.session.execute(stmt)

    async def delete_failed(self, crawl_id: UUID) -> None:
        """Forget the crawl's failed pages (a retry fetches them again)."""
        stmt = self._tenant_filter_delete(
            delete(CrawlPage).where(
                CrawlPage.crawl_id == crawl_id, CrawlPage.status == PageStatus.ERROR
            )
        )
        await self.session.execute(stmt)

    def _tenant_filter_delete(self, stmt: Any) -> Any:
        tenant_id = current_tenant_id()
        return stmt if tenant_id is None else stmt.where(CrawlPage.tenant_id == tenant_id)

    async def known(self, crawl_id: UUID) -> Sequence[Any]:
        """What a resumed crawl needs of its stored pages (no Markdown)."""
        stmt = self._columns(
            CrawlPage.url,
            CrawlPage.depth,
            CrawlPage.status,
            CrawlPage.links,
            CrawlPage.content_sha256,
            CrawlPage.final_url,
        ).where(CrawlPage.crawl_id == crawl_id)
        found: Sequence[Any] = (await self.session.execute(stmt)).all()
        return found

    async def counts(self, crawl_id: UUID) -> dict[str, Any]:
        stmt = (
            self._columns(
                CrawlPage.status, func.count(), func.coalesce(func.sum(CrawlPage.size), 0)
            )
            .where(CrawlPage.crawl_id == crawl_id)
            .group_by(CrawlPage.status)
        )
        rows = (await self.session.execute(stmt)).all()
        by_status = {row[0]: int(row[1]) for row in rows}
        return {
            "pages_fetched": by_status.get(PageStatus.OK, 0),
            "pages_failed": by_status.get(PageStatus.ERROR, 0),
            "pages_skipped": by_status.get(PageStatus.SKIPPED, 0),
            "bytes": sum(int(row[2]) for row in rows),
        }

    async def for_export(self, crawl_id: UUID) -> Sequence[Any]:
        stmt = (
            self._columns(
                CrawlPage.url, CrawlPage.title, CrawlPage.depth, CrawlPage.markdown, CrawlPage.links
            )
            .where(CrawlPage.crawl_id == crawl_id, CrawlPage.status == PageStatus.OK)
            .order_by(CrawlPage.depth, CrawlPage.created_at, CrawlPage.id)
        )
        found: Sequence[Any] = (await self.session.execute(stmt)).all()
        return found

    async def without_document(self, crawl_id: UUID) -> Sequence[CrawlPage]:
        stmt = (
            self.select()
            .where(
                CrawlPage.crawl_id == crawl_id,
                CrawlPage.status == PageStatus.OK,
                CrawlPage.document_id.is_(None),
            )
            .order_by(CrawlPage.created_at, CrawlPage.id)
        )
        return list((await self.session.execute(stmt)).scalars())


class CrawlExportRepository(Repository[CrawlExport]):
    model = CrawlExport
    resource_name = "Export"

    async def of_crawls(self, crawl_ids: Sequence[UUID]) -> dict[UUID, list[CrawlExport]]:
        if not crawl_ids:
            return {}
        stmt = self.select().where(CrawlExport.crawl_id.in_(crawl_ids)).order_by(CrawlExport.format)
        result: dict[UUID, list[CrawlExport]] = {}
        for row in (await self.session.execute(stmt)).scalars():
            result.setdefault(row.crawl_id, []).append(row)
        return result

    async def get_format(self, crawl_id: UUID, fmt: str) -> CrawlExport | None:
        stmt = self.select().where(CrawlExport.crawl_id == crawl_id, CrawlExport.format == fmt)
        found: CrawlExport | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return found

    async def remove(self, export: CrawlExport) -> None:
        await self.session.execute(delete(CrawlExport).where(CrawlExport.id == export.id))
