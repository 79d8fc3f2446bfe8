"""HTTP routes of the documentation crawler (`/crawls`)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from backend.auth.deps import require
from backend.auth.principal import Principal
from backend.crawls.exports import ExportFormat
from backend.crawls.models import CrawlStatus, PageStatus
from backend.crawls.schemas import (
    CrawlAccepted,
    CrawlCreate,
    CrawlExportOut,
    CrawlOut,
    CrawlPageDetail,
    CrawlPageOut,
    EstimateOut,
    ExportRequest,
    ValidateOut,
)
from backend.crawls.service import READ, WRITE, crawl_service
from backend.documents.service import deny_include_deleted
from backend.jobs.schemas import JobOut
from backend.jobs.service import job_service
from backend.kit.deps import AppSettings, DbSession, database_of
from backend.kit.http import BLOB_RESPONSES, Blob, blob_response
from backend.kit.pagination import CursorPage, ListQuery, Page, list_query
from backend.kit.storage import get_storage

router = APIRouter(prefix="/crawls", tags=["crawls"])

Reader = Annotated[Principal, require(READ)]
Writer = Annotated[Principal, require(WRITE)]
SORTABLE = ["created_at", "updated_at", "status", "url", "title"]
PAGE_SORTABLE = ["created_at", "url", "depth", "words", "fetched_at", "status"]
Search = Annotated[str | None, Query(min_length=1, max_length=500, description="URL or title")]


class _AwaitCrawl(Response):
    """`?wait=`: sent after the request's transaction committed (so the job
    is visible to workers); 200 with the finished crawl if it ends in time,
    else 202 with the crawl as accepted."""

    def __init__(
        self,
        request: Request,
        accepted: CrawlAccepted,
        seconds: float,
        headers: dict[str, str],
    ) -> None:
        super().__init__(status_code=202, headers=headers)
        self._request = request
        self._accepted = accepted
        self._seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        finished = await crawl_service.wait_finished(
            database_of(self._request),
            self._principal_tenant(),
            self._accepted.id,
            self._seconds,
        )
        if finished is not None:
            answer = CrawlAccepted(**finished.model_dump(), job=self._accepted.job)
            status = 200
        else:
            answer, status = self._accepted, 202
        headers = {k: v for k, v in self.headers.items() if k.lower() != "content-length"}
        response = JSONResponse(answer.model_dump(mode="json"), status_code=status, headers=headers)
        await response(scope, receive, send)

    def _principal_tenant(self) -> UUID:
        tenant_id: UUID = self._request.state.crawl_tenant
        return tenant_id


@router.post(
    "",
    status_code=202,
    response_model=CrawlAccepted,
    responses={200: {"model": CrawlAccepted, "description": "`wait`: finished in time"}},
)
async def create_crawl(
    body: CrawlCreate,
    request: Request,
    principal: Writer,
    session: DbSession,
    settings: AppSettings,
    wait: Annotated[
        int | None, Query(ge=1, le=30, description="Seconds to wait for the crawl to end")
    ] = None,
) -> Any:
    """Queue a crawl (`web.crawl`). With `wait`, answer 200 with the finished
    crawl if it ends within that many seconds, else 202 as usual."""
    crawl = await crawl_service.create(session, settings, principal, body)
    job = await job_service.get_job(session, crawl.job_id) if crawl.job_id else None
    accepted = CrawlAccepted(**(await crawl_service.out(session, crawl)).model_dump(), job=job)
    headers = {"Location": str(request.url_for("get_crawl", crawl_id=crawl.id))}
    if wait is None:
        return JSONResponse(accepted.model_dump(mode="json"), status_code=202, headers=headers)
    request.state.crawl_tenant = principal.tenant_id
    return _AwaitCrawl(request, accepted, float(wait), headers)


@router.post("/validate", response_model=ValidateOut)
async def validate_crawl(
    principal: Writer,
    session: DbSession,
    settings: AppSettings,
    body: Annotated[
        dict[str, Any],
        Body(
            description="The body of `POST /crawls`",
            examples=[{"url": "https://docs.example.com/guide/", "max_pages": 50}],
        ),
    ],
) -> ValidateOut:
    """Check a crawl's body and its site (robots.txt, the start page) without
    crawling; problems come back as data (`valid: false`), an unsafe target
    as code `unsafe_url`."""
    return await crawl_service.validate(session, settings, body)


@router.post("/estimate", response_model=EstimateOut)
async def estimate_crawl(
    body: CrawlCreate, principal: Writer, session: DbSession, settings: AppSettings
) -> EstimateOut:
    """How many pages a crawl would fetch (from the sitemap, else the start
    page's links, capped at `max_pages`) and roughly how long it would take."""
    return await crawl_service.estimate(session, settings, body)


@router.get("", response_model=Page[CrawlOut] | CursorPage[CrawlOut])
async def list_crawls(
    principal: Reader,
    session: DbSession,
    query: Annotated[ListQuery, list_query(SORTABLE)],
    status: CrawlStatus | None = None,
    q: Search = None,
    include_deleted: bool = False,
) -> Any:
    if include_deleted:
        deny_include_deleted(principal.permissions, WRITE)
    result = await crawl_service.list_crawls(
        session, query, include_deleted=include_deleted, status=status, q=q
    )
    return result.envelope(await crawl_service.outs(session, result.items))


@router.get("/{crawl_id}", response_model=CrawlOut)
async def get_crawl(crawl_id: UUID, principal: Reader, session: DbSession) -> CrawlOut:
    return await crawl_service.out(session, await crawl_service.get(session, crawl_id))


@router.delete("/{crawl_id}", status_code=204, responses={409: {}})
async def delete_crawl(crawl_id: UUID, principal: Writer, session: DbSession) -> Response:
    """Soft-delete a finished crawl (409 while it runs: cancel it first)."""
    await crawl_service.delete(session, principal, crawl_id)
    return Response(status_code=204)


@router.post("/{crawl_id}/restore", response_model=CrawlOut)
async def restore_crawl(crawl_id: UUID, principal: Writer, session: DbSession) -> CrawlOut:
    return await crawl_service.out(
        session, await crawl_service.restore(session, principal, crawl_id)
    )


@router.post("/{crawl_id}/cancel", response_model=CrawlOut, responses={409: {}})
async def cancel_crawl(crawl_id: UUID, principal: Writer, session: DbSession) -> CrawlOut:
    """A queued crawl is cancelled at once; a running one stops fetching
    within a second and keeps the pages it stored."""
    return await crawl_service.out(
        session, await crawl_service.cancel(session, principal, crawl_id)
    )


@router.post("/{crawl_id}/retry", status_code=202, response_model=CrawlOut, responses={409: {}})
async def retry_crawl(crawl_id: UUID, principal: Writer, session: DbSession) -> CrawlOut:
    """Run a failed or cancelled crawl again: stored pages are not fetched
    again, failed pages are."""
    return await crawl_service.out(session, await crawl_service.retry(session, principal, crawl_id))


@router.get("/{crawl_id}/pages", response_model=Page[CrawlPageOut] | CursorPage[CrawlPageOut])
async def list_crawl_pages(
    crawl_id: UUID,
    principal: Reader,
    session: DbSession,
    query: Annotated[ListQuery, list_query(PAGE_SORTABLE, default="created_at")],
    status: PageStatus | None = None,
    q: Search = None,
) -> Any:
    result = await crawl_service.list_pages(session, crawl_id, query, status=status, q=q)
    return result.envelope([CrawlPageOut.model_validate(page) for page in result.items])


@router.get("/{crawl_id}/pages/{page_id}", response_model=CrawlPageDetail)
async def get_crawl_page(
    crawl_id: UUID, page_id: UUID, principal: Reader, session: DbSession
) -> CrawlPageDetail:
    return CrawlPageDetail.model_validate(await crawl_service.get_page(session, crawl_id, page_id))


@router.get("/{crawl_id}/exports", response_model=list[CrawlExportOut])
async def list_crawl_exports(
    crawl_id: UUID, principal: Reader, session: DbSession
) -> list[CrawlExportOut]:
    exports = await crawl_service.exports(session, crawl_id)
    return [CrawlExportOut.model_validate(e) for e in exports]


@router.post("/{crawl_id}/exports", status_code=202, response_model=JobOut, responses={409: {}})
async def create_crawl_export(
    crawl_id: UUID,
    body: ExportRequest,
    principal: Writer,
    session: DbSession,
    settings: AppSettings,
) -> Any:
    """Queue `web.crawl_export`: the file is rebuilt from the stored pages
    (nothing is fetched again); it replaces an earlier file of that format."""
    return await crawl_service.request_export(session, settings, principal, crawl_id, body.format)


@router.get(
    "/{crawl_id}/exports/{format}",
    response_class=StreamingResponse,
    responses=BLOB_RESPONSES,
)
async def download_crawl_export(
    crawl_id: UUID,
    format: ExportFormat,
    request: Request,
    principal: Reader,
    session: DbSession,
    settings: AppSettings,
) -> Response:
    """The export file: `Range`, strong `ETag` (its sha256), `Content-Disposition`."""
    export = await crawl_service.get_export(session, crawl_id, format)
    blob = Blob(export.storage_key, export.size, export.sha256, export.content_type, export.name)
    return blob_response(request, get_storage(settings), blob)


@router.delete("/{crawl_id}/exports/{format}", status_code=204)
async def delete_crawl_export(
    crawl_id: UUID,
    format: ExportFormat,
    principal: Writer,
    session: DbSession,
    settings: AppSettings,
) -> Response:
    await crawl_service.delete_export(session, settings, principal, crawl_id, format)
    return Response(status_code=204)
