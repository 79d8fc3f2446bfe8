"""Business rules of crawls: validation (the SSRF guard, the plan's page
limit), the `web.crawl` and `web.crawl_export` jobs, cancel and retry,
pages, exports, documents made from pages, and storage usage."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from cryptography.fernet import Fernet, InvalidToken
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit.models import ActorType
from backend.audit.service import Actor, audit_service
from backend.crawls.exports import SPECS, ExportFormat
from backend.crawls.fetcher import Fetcher
from backend.crawls.frontier import CrawlOptions, KnownPage, PageOutcome
from backend.crawls.models import Crawl, CrawlExport, CrawlPage, CrawlStatus, PageStatus
from backend.crawls.probe import check_reachable, estimate
from backend.crawls.repository import (
    CrawlExportRepository,
    CrawlPageRepository,
    CrawlRepository,
)
from backend.crawls.schemas import (
    CrawlCreate,
    CrawlExportOut,
    CrawlOut,
    CrawlStats,
    EstimateOut,
    Problem,
    RobotsOut,
    ValidateOut,
)
from backend.crawls.urls import normalise
from backend.documents.schemas import DocumentMetadata
from backend.documents.service import DuplicateDocument, document_service
from backend.jobs.service import job_service
from backend.kit.db import Database, current_tenant_id, tenant_scope
from backend.kit.errors import DossierError, NotFound, ValidationFailed
from backend.kit.events import emit
from backend.kit.pagination import ListQuery, PageResult
from backend.kit.security.ssrf import UnsafeUrl, check_syntax, resolve_target
from backend.kit.storage import active_storage, delete_after_commit, get_storage
from backend.settings import Settings
from backend.tenants.service import tenant_service
from backend.tenants.storage_quota import check_storage_quota

CRAWL_JOB = "web.crawl"
EXPORT_JOB = "web.crawl_export"
READ, WRITE = "crawls:read", "crawls:write"
EVENTS = ("crawl.started", "crawl.completed", "crawl.failed")
WAIT_POLL_SECONDS = 0.2
FINISHED = frozenset({CrawlStatus.SUCCEEDED, CrawlStatus.FAILED, CrawlStatus.CANCELLED})


class InvalidTransition(DossierError):
    status, code = 409, "invalid_transition"


class CrawlConflict(DossierError):
    status, code = 409, "conflict"


# -- headers for the crawled site: Fernet, key derived from SIGNING_SECRET ----


def _fernet(settings: Settings) -> Fernet:
    material = b"dossier-crawl-headers:" + settings.signing_secret.get_secret_value().encode()
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(material).digest()))


def seal_headers(settings: Settings, headers: dict[str, str]) -> str | None:
    if not headers:
        return None
    return _fernet(settings).encrypt(json.dumps(headers).encode()).decode()


def open_headers(settings: Settings, sealed: str | None) -> dict[str, str]:
    if not sealed:
        return {}
    try:
        headers: dict[str, str] = json.loads(_fernet(settings).decrypt(sealed.encode()))
    except InvalidToken:
        raise ValueError(
            "The crawl's headers cannot be decrypted (SIGNING_SECRET changed?)"
        ) from None
    return headers


# -- shapes ---------------------------------------------------------------------


def crawl_options(crawl: Crawl) -> CrawlOptions:
    options = crawl.options
    return CrawlOptions(
        url=crawl.url,
        max_depth=options["max_depth"],
        max_pages=options["max_pages"],
        same_host=options["same_host"],
        include=tuple(options["include"]),
        exclude=tuple(options["exclude"]),
        respect_robots=options["respect_robots"],
        delay_ms=options["delay_ms"],
        concurrency=options["concurrency"],
    )


def crawl_out(crawl: Crawl, exports: Sequence[CrawlExport] = ()) -> CrawlOut:
    return CrawlOut(
        id=crawl.id,
        url=crawl.url,
        title=crawl.title,
        status=crawl.status,
        job_id=crawl.job_id,
        options=crawl.options,
        stats=CrawlStats(**crawl.stats),
        exports=[CrawlExportOut.model_validate(e) for e in exports],
        error=crawl.error,
        created_at=crawl.created_at,
        updated_at=crawl.updated_at,
        started_at=crawl.started_at,
        finished_at=crawl.finished_at,
        deleted_at=crawl.deleted_at,
    )


def crawl_event(crawl: Crawl) -> dict[str, Any]:
    return {
        "id": str(crawl.id),
        "url": crawl.url,
        "status": crawl.status,
        "job_id": str(crawl.job_id) if crawl.job_id else None,
        "stats": crawl.stats,
    }


@dataclass(frozen=True, slots=True)
class JobActor:
    """Whoever asked for the crawl, acting through its job."""

    id: UUID
    actor_type: ActorType


def _problem_field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


class CrawlService:
    # ------------------------------------------------------------ validation
    async def _check_target(self, settings: Settings, url: str) -> str:
        """The normalised start URL; 422 `unsafe_url` for refused schemes,
        credentials and (unless allowed) private targets."""
        check_syntax(settings, url, allow_http=True)
        normalised = normalise(url)
        if normalised is None:
            raise UnsafeUrl("The URL must be an http(s) URL with a host")
        await resolve_target(settings, normalised, allow_http=True)
        return normalised

    async def _check_plan(self, session: AsyncSession, settings: Settings, max_pages: int) -> None:
        tenant_id = current_tenant_id()
        assert tenant_id is not None
        limits = await tenant_service.limits_for(session, tenant_id, settings)
        if max_pages > limits.max_crawl_pages:
            message = f"max_pages is above the plan's limit of {limits.max_crawl_pages}"
            raise ValidationFailed(
                message,
                errors=[{"loc": ["body", "max_pages"], "msg": message, "type": "plan_limit"}],
            )

    async def validate(self, session: AsyncSession, settings: Settings, raw: Any) -> ValidateOut:
        """What `POST /crawls` would say about this body, and what the site
        answers (robots.txt and the start page), without crawling."""
        problems: list[Problem] = []
        try:
            body = CrawlCreate.model_validate(raw)
        except ValidationError as exc:
            for error in exc.errors():
                problems.append(
                    Problem(
                        field=_problem_field(error["loc"]), code=error["type"], message=error["msg"]
                    )
                )
            url = (
                normalise(raw.get("url", ""))
                if isinstance(raw, dict) and isinstance(raw.get("url"), str)
                else None
            )
            return ValidateOut(valid=False, url=url, problems=problems, reachable=False)
        url = normalise(body.url)
        try:
            url = await self._check_target(settings, body.url)
        except UnsafeUrl as exc:
            problems.append(Problem(field="url", code="unsafe_url", message=exc.detail))
        try:
            await self._check_plan(session, settings, body.max_pages)
        except ValidationFailed as exc:
            problems.append(Problem(field="max_pages", code="plan_limit", message=exc.detail))
        if problems or url is None:
            return ValidateOut(valid=False, url=url, problems=problems, reachable=False)
        fetcher = Fetcher(settings, headers=body.headers, max_connections=1)
        try:
            seen = await check_reachable(fetcher, url, respect_robots=body.respect_robots)
        finally:
            await fetcher.aclose()
        page = seen.page
        if page.outcome != "ok":
            code = "unsafe_url" if (page.error or "").startswith("unsafe_url") else "unreachable"
            if not seen.allowed and body.respect_robots:
                code = "disallowed_by_robots"
            problems.append(Problem(field="url", code=code, message=page.error or "Not reachable"))
        return ValidateOut(
            valid=not problems,
            url=url,
            problems=problems,
            reachable=page.status_code is not None,
            status_code=page.status_code,
            content_type=page.content_type,
            robots=RobotsOut(allowed=seen.allowed, crawl_delay_ms=seen.robots.crawl_delay_ms),
        )

    async def estimate(
        self, session: AsyncSession, settings: Settings, body: CrawlCreate
    ) -> EstimateOut:
        url = await self._check_target(settings, body.url)
        await self._check_plan(session, settings, body.max_pages)
        options = CrawlOptions(
            url=url,
            max_depth=body.max_depth,
            max_pages=body.max_pages,
            same_host=body.same_host,
            include=tuple(body.include),
            exclude=tuple(body.exclude),
            respect_robots=body.respect_robots,
            delay_ms=body.delay_ms,
            concurrency=body.concurrency,
        )
        fetcher = Fetcher(settings, headers=body.headers, max_connections=1)
        try:
            found = await estimate(fetcher, options)
        finally:
            await fetcher.aclose()
        return EstimateOut(
            estimated_pages=found.estimated_pages,
            method=found.method,
            sitemap_pages=found.sitemap_pages,
            linked_pages=found.linked_pages,
            estimated_seconds=found.estimated_seconds,
        )

    # --------------------------------------------------------------- commands
    async def create(
        self, session: AsyncSession, settings: Settings, actor: Actor, body: CrawlCreate
    ) -> Crawl:
        url = await self._check_target(settings, body.url)
        await self._check_plan(session, settings, body.max_pages)
        options = body.model_dump(exclude={"url", "title", "headers"}, mode="json")
        options["header_names"] = sorted(body.headers)
        repository = CrawlRepository(session)
        crawl = await repository.create(
            url=url,
            title=body.title,
            options=options,
            headers_ciphertext=seal_headers(settings, body.headers),
            stats=CrawlStats().model_dump(),
            created_by=actor.id,
        )
        job = await job_service.enqueue(
            session,
            CRAWL_JOB,
            {"crawl_id": str(crawl.id), "actor_type": actor.actor_type.value},
            max_attempts=settings.job_default_max_attempts,
            created_by=actor.id,
        )
        crawl.job_id = job.id
        await session.flush()
        await audit_service.record(
            session, actor, "crawl.created", "crawl", crawl.id, {"url": url, "options": options}
        )
        return crawl

    async def get(
        self, session: AsyncSession, crawl_id: UUID, *, include_deleted: bool = False
    ) -> Crawl:
        return await CrawlRepository(session).get_or_raise(
            crawl_id, include_deleted=include_deleted
        )

    async def list_crawls(
        self,
        session: AsyncSession,
        query: ListQuery,
        *,
        include_deleted: bool = False,
        status: CrawlStatus | None = None,
        q: str | None = None,
    ) -> PageResult[Crawl]:
        repository = CrawlRepository(session)
        stmt = repository.filtered(include_deleted=include_deleted, status=status, q=q)
        return await repository.paginate(stmt, query)

    async def outs(self, session: AsyncSession, crawls: Sequence[Crawl]) -> list[CrawlOut]:
        exports = await CrawlExportRepository(session).of_crawls([c.id for c in crawls])
        return [crawl_out(c, exports.get(c.id, [])) for c in crawls]

    async def out(self, session: AsyncSession, crawl: Crawl) -> CrawlOut:
        return (await self.outs(session, [crawl]))[0]

    async def cancel(self, session: AsyncSession, actor: Any, crawl_id: UUID) -> Crawl:
        repository = CrawlRepository(session)
        crawl = await repository.get_for_update(crawl_id)
        if crawl is None:
            raise NotFound("Crawl not found")
        if crawl.status in FINISHED or crawl.job_id is None:
            raise InvalidTransition(f"The crawl is already {crawl.status}")
        job = await job_service.cancel_job(session, actor, crawl.job_id)
        if job.status == "cancelled":  # it was still queued: nothing runs to finish it
            await repository.update(
                crawl, {"status": CrawlStatus.CANCELLED, "finished_at": datetime.now(UTC)}
            )
        await audit_service.record(
            session, actor, "crawl.cancelled", "crawl", crawl.id, {"status": crawl.status}
        )
        return crawl

    async def retry(self, session: AsyncSession, actor: Any, crawl_id: UUID) -> Crawl:
        """Run a failed or cancelled crawl again: pages stored as `ok` or
        `skipped` are kept (not fetched again), failed ones are retried."""
        repository = CrawlRepository(session)
        crawl = await repository.get_for_update(crawl_id)
        if crawl is None:
            raise NotFound("Crawl not found")
        if crawl.status not in (CrawlStatus.FAILED, CrawlStatus.CANCELLED) or crawl.job_id is None:
            raise InvalidTransition(
                f"Only failed or cancelled crawls can be retried (crawl is {crawl.status})"
            )
        before = crawl.status
        await CrawlPageRepository(session).delete_failed(crawl.id)
        await job_service.retry_job(session, actor, crawl.job_id)
        await repository.update(
            crawl, {"status": CrawlStatus.QUEUED, "error": None, "finished_at": None}
        )
        await audit_service.record(
            session,
            actor,
            "crawl.retried",
            "crawl",
            crawl.id,
            {"status": {"before": before, "after": "queued"}},
        )
        return crawl

    async def delete(self, session: AsyncSession, actor: Actor, crawl_id: UUID) -> None:
        repository = CrawlRepository(session)
        crawl = await repository.get_or_raise(crawl_id)
        if crawl.status not in FINISHED:
            raise CrawlConflict("Cancel the crawl before deleting it")
        await repository.soft_delete(crawl, by=actor.id)
        await audit_service.record(session, actor, "crawl.deleted", "crawl", crawl.id)

    async def restore(self, session: AsyncSession, actor: Actor, crawl_id: UUID) -> Crawl:
        repository = CrawlRepository(session)
        crawl = await repository.get_or_raise(crawl_id, include_deleted=True)
        if crawl.deleted_at is not None:
            await repository.restore(crawl)
            await audit_service.record(session, actor, "crawl.restored", "crawl", crawl.id)
        return crawl

    # ------------------------------------------------------------------ pages
    async def list_pages(
        self,
        session: AsyncSession,
        crawl_id: UUID,
        query: ListQuery,
        *,
        status: PageStatus | None = None,
        q: str | None = None,
    ) -> PageResult[CrawlPage]:
        await self.get(session, crawl_id)
        repository = CrawlPageRepository(session)
        return await repository.paginate(repository.filtered(crawl_id, status=status, q=q), query)

    async def get_page(self, session: AsyncSession, crawl_id: UUID, page_id: UUID) -> CrawlPage:
        await self.get(session, crawl_id)
        page = await CrawlPageRepository(session).get_in_crawl(crawl_id, page_id)
        if page is None:
            raise NotFound("Page not found")
        return page

    # ---------------------------------------------------------------- exports
    async def exports(self, session: AsyncSession, crawl_id: UUID) -> list[CrawlExport]:
        await self.get(session, crawl_id)
        return (await CrawlExportRepository(session).of_crawls([crawl_id])).get(crawl_id, [])

    async def get_export(
        self, session: AsyncSession, crawl_id: UUID, fmt: ExportFormat
    ) -> CrawlExport:
        await self.get(session, crawl_id)
        export = await CrawlExportRepository(session).get_format(crawl_id, fmt)
        if export is None:
            raise NotFound(f"The crawl has no {fmt} export")
        return export

    async def request_export(
        self,
        session: AsyncSession,
        settings: Settings,
        actor: Actor,
        crawl_id: UUID,
        fmt: ExportFormat,
    ) -> Any:
        """Queue `web.crawl_export`: the file is built from the stored pages."""
        crawl = await self.get(session, crawl_id)
        if crawl.status not in FINISHED:
            raise CrawlConflict("The crawl has not finished yet")
        job = await job_service.enqueue(
            session,
            EXPORT_JOB,
            {"crawl_id": str(crawl.id), "format": fmt.value},
            max_attempts=settings.job_default_max_attempts,
            created_by=actor.id,
        )
        await audit_service.record(
            session, actor, "crawl.export_requested", "crawl", crawl.id, {"format": fmt.value}
        )
        return await job_service.get_job(session, job.id)

    async def delete_export(
        self,
        session: AsyncSession,
        settings: Settings,
        actor: Actor,
        crawl_id: UUID,
        fmt: ExportFormat,
    ) -> None:
        export = await self.get_export(session, crawl_id, fmt)
        await CrawlExportRepository(session).remove(export)
        delete_after_commit(session, get_storage(settings), export.storage_key)
        await audit_service.record(
            session, actor, "crawl.export_deleted", "crawl", crawl_id, {"format": fmt.value}
        )

    async def wait_finished(
        self, database: Database, tenant_id: UUID, crawl_id: UUID, seconds: float
    ) -> CrawlOut | None:
        """The crawl once finished within `seconds` (polled in transactions of
        their own, after the creating request committed), else None."""
        deadline = asyncio.get_running_loop().time() + seconds
        with tenant_scope(tenant_id):
            while True:
                async with database.transaction() as session:
                    crawl = await self.get(session, crawl_id, include_deleted=True)
                    if crawl.status in FINISHED:
                        return await self.out(session, crawl)
                if asyncio.get_running_loop().time() >= deadline:
                    return None
                await asyncio.sleep(WAIT_POLL_SECONDS)

    async def purge(self, session: AsyncSession, cutoff: datetime, tenant_ids: list[UUID]) -> int:
        """Admin purge: crawls deleted before `cutoff` and those of purged
        tenants, their export files deleted once the purge commits."""
        purged, keys = await CrawlRepository(session).purge(cutoff, tenant_ids)
        storage = active_storage()
        for key in keys:
            delete_after_commit(session, storage, key)
        return purged

    def storage_usage(self, tenant_id: Any) -> Any:
        """Usage `storage_bytes` share, as SQL over the tenant `tenant_id`."""
        return CrawlRepository.storage_bytes_of(tenant_id)

    # ------------------------------------------------- the job's side of things
    async def begin_run(
        self, session: AsyncSession, settings: Settings, crawl_id: UUID
    ) -> tuple[Crawl, list[KnownPage], dict[str, str]] | None:
        """Mark the crawl running; what the run needs (None: the crawl is
        gone or already finished)."""
        repository = CrawlRepository(session)
        crawl = await repository.get_for_update(crawl_id)
        if crawl is None or crawl.status in FINISHED:
            return None
        first_start = crawl.started_at is None
        await repository.update(
            crawl,
            {"status": CrawlStatus.RUNNING, "started_at": crawl.started_at or datetime.now(UTC)},
        )
        known = [
            KnownPage(
                url=row.url,
                depth=row.depth,
                status=row.status,
                links=tuple(row.links or ()),
                content_sha256=row.content_sha256,
                final_url=row.final_url,
            )
            for row in await CrawlPageRepository(session).known(crawl.id)
        ]
        if first_start:
            emit(session, "crawl.started", crawl_event(crawl))
        return crawl, known, open_headers(settings, crawl.headers_ciphertext)

    @staticmethod
    def _page_row(tenant_id: UUID | None, crawl_id: UUID, page: PageOutcome) -> dict[str, Any]:
        return {
            "tenant_id": tenant_id,
            "crawl_id": crawl_id,
            "url": page.url,
            "final_url": page.final_url,
            "status": page.status,
            "status_code": page.status_code,
            "depth": page.depth,
            "title": (page.title or None) and page.title[:500],
            "content_type": (page.content_type or None) and page.content_type[:100],
            "words": page.words if page.status == "ok" else 0,
            "size": page.size,
            "content_sha256": page.content_sha256,
            "markdown": page.markdown,
            "links": page.links,
            "error": page.error,
            "fetched_at": datetime.now(UTC) if page.final_url else None,
        }

    async def store_pages(
        self, session: AsyncSession, crawl_id: UUID, pages: Sequence[PageOutcome]
    ) -> None:
        """Store a batch of pages in one statement (URLs already stored are
        kept as they are)."""
        tenant_id = current_tenant_id()
        await CrawlPageRepository(session).insert_many(
            [self._page_row(tenant_id, crawl_id, page) for page in pages]
        )

    async def record_stats(
        self, session: AsyncSession, crawl_id: UUID, *, queued: int, duration_ms: int
    ) -> dict[str, Any]:
        crawl = await CrawlRepository(session).get_or_raise(crawl_id, include_deleted=True)
        stats = await CrawlPageRepository(session).counts(crawl_id)
        stats.update(
            pages_queued=queued,
            duration_ms=int(crawl.stats.get("duration_ms", 0)) + duration_ms,
        )
        await CrawlRepository(session).update(crawl, {"stats": stats})
        return stats

    async def finish(
        self,
        session: AsyncSession,
        crawl_id: UUID,
        status: CrawlStatus,
        error: str | None = None,
    ) -> Crawl:
        repository = CrawlRepository(session)
        crawl = await repository.get_or_raise(crawl_id, include_deleted=True)
        await repository.update(
            crawl, {"status": status, "error": error, "finished_at": datetime.now(UTC)}
        )
        if status is CrawlStatus.SUCCEEDED:
            emit(session, "crawl.completed", crawl_event(crawl))
        elif status is CrawlStatus.FAILED:
            emit(session, "crawl.failed", {**crawl_event(crawl), "error": error})
        await audit_service.record(
            session, None, f"crawl.{status.value}", "crawl", crawl.id, {"stats": crawl.stats}
        )
        return crawl

    async def pages_for_export(self, session: AsyncSession, crawl_id: UUID) -> Sequence[Any]:
        return await CrawlPageRepository(session).for_export(crawl_id)

    async def store_export(
        self,
        session: AsyncSession,
        settings: Settings,
        crawl_id: UUID,
        fmt: ExportFormat,
        *,
        key: str,
        size: int,
        sha256: str,
    ) -> CrawlExport:
        """Record the export file at `key` (staged by the caller), replacing
        (and deleting after commit) an earlier file of the same format; 413
        `quota_exceeded` when the difference would pass the storage quota."""
        tenant_id = current_tenant_id()
        assert tenant_id is not None
        repository = CrawlExportRepository(session)
        previous = await repository.get_format(crawl_id, fmt)
        replaced = previous.size if previous is not None else 0
        await check_storage_quota(
            session,
            settings,
            tenant_id,
            size - replaced,
            what=f"The {fmt} export ({size} bytes)",
            lock=True,
        )
        if previous is not None:
            await repository.remove(previous)
            delete_after_commit(session, get_storage(settings), previous.storage_key)
            await session.flush()
        spec = SPECS[fmt]
        return await repository.create(
            crawl_id=crawl_id,
            format=fmt.value,
            name=spec.name,
            content_type=spec.content_type,
            size=size,
            sha256=sha256,
            storage_key=key,
        )

    async def page_ids_without_document(self, session: AsyncSession, crawl_id: UUID) -> list[UUID]:
        return [page.id for page in await CrawlPageRepository(session).without_document(crawl_id)]

    async def save_page_as_document(
        self,
        session: AsyncSession,
        settings: Settings,
        actor: JobActor,
        crawl_id: UUID,
        page_id: UUID,
    ) -> UUID | None:
        """The page's Markdown as a tenant document (text extraction makes it
        searchable), tagged `crawl:<id>`; an identical document is reused."""
        page = await CrawlPageRepository(session).get_in_crawl(crawl_id, page_id)
        if page is None or page.document_id is not None:
            return None
        content = (page.markdown or "").encode() or b"\n"

        async def source() -> AsyncIterator[bytes]:
            yield content

        name = (page.url.rstrip("/").rsplit("/", 1)[-1] or "index").split("?")[0][:150]
        staged = await document_service.stage_file(
            session,
            settings,
            source=source(),
            filename=f"{name}.md",
            claimed_type="text/plain",
            declared_size=len(content),
        )
        metadata = DocumentMetadata(
            title=(page.title or page.url)[:255],
            description=f"Crawled from {page.url}"[:1000],
            tags=[f"crawl:{crawl_id}", "crawl"],
        )
        try:
            document = await document_service.create_document(
                session, settings, actor, staged, metadata
            )
            document_id = document.id
        except DuplicateDocument as exc:
            if not exc.extra.get("existing_id"):
                raise
            document_id = UUID(str(exc.extra["existing_id"]))
        page.document_id = document_id
        await session.flush()
        return document_id


crawl_service = CrawlService()
