"""HTTP routes of jobs, job types and batches."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from backend.auth.deps import require
from backend.auth.principal import Principal
from backend.jobs.models import JobStatus
from backend.jobs.schemas import (
    BatchCreate,
    BatchCreated,
    BatchOut,
    JobCreate,
    JobLogOut,
    JobOut,
    JobStats,
    JobTypeOut,
)
from backend.jobs.service import job_out, job_service
from backend.kit.db import tenant_scope
from backend.kit.deps import AppSettings, DbSession
from backend.kit.http import Blob, blob_response
from backend.kit.pagination import CursorPage, Page, list_query
from backend.kit.security.signing import DownloadUrl, signed_url, verify_link
from backend.kit.storage import get_storage

router = APIRouter(tags=["jobs"])
batches_router = APIRouter(tags=["batches"])


Reader = Annotated[Principal, require("jobs:read")]
Writer = Annotated[Principal, require("jobs:write")]


@router.get("/job-types", response_model=list[JobTypeOut], summary="Registered job types")
async def list_job_types(principal: Reader) -> list[JobTypeOut]:
    return job_service.job_types()


@router.post(
    "/jobs",
    status_code=202,
    response_model=JobOut,
    summary="Queue a job",
    description="202 with `Location`. With an `Idempotency-Key` header a repeat of the same "
    "request within 24 hours answers 200 with the first job; a different body is 409 "
    "`idempotency_conflict`.",
)
async def create_job(
    body: JobCreate,
    principal: Writer,
    session: DbSession,
    settings: AppSettings,
    response: Response,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JobOut:
    created = await job_service.create_job(session, settings, principal, body, idempotency_key)
    response.headers["Location"] = f"/api/v1/jobs/{created.job.id}"
    if not created.created:
        response.status_code = 200
    return job_out(created.job)


@router.get(
    "/jobs",
    response_model=Page[JobOut] | CursorPage[JobOut],
    summary="List jobs",
    description="Filters: `status`, `type`, `document_id`, `case_id`, `batch_id`. "
    "Sort fields: `created_at`, `updated_at`, `priority`, `status`, `type`.",
)
async def list_jobs(
    principal: Reader,
    session: DbSession,
    query: Annotated[Any, list_query(["created_at", "updated_at", "priority", "status", "type"])],
    status: JobStatus | None = None,
    type: Annotated[str | None, Query(max_length=100)] = None,
    document_id: UUID | None = None,
    case_id: UUID | None = None,
    batch_id: UUID | None = None,
) -> Page[JobOut] | CursorPage[JobOut]:
    filters = {
        "status": status,
        "type": type,
        "document_id": document_id,
        "case_id": case_id,
        "batch_id": batch_id,
    }
    page, artifacts = await job_service.list_jobs(session, query, filters, principal)
    return page.envelope([job_out(job, artifacts.get(job.id)) for job in page.items])


@router.get("/jobs/stats", response_model=JobStats, summary="Counts by status and type")
async def get_job_stats(principal: Reader, session: DbSession) -> JobStats:
    return await job_service.stats(session)


@router.get("/jobs/{job_id}", response_model=JobOut)
async def get_job(job_id: UUID, principal: Reader, session: DbSession) -> JobOut:
    return await job_service.get_job(session, job_id)


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=JobOut,
    summary="Cancel a job",
    description="A queued job is cancelled at once; a running one stops at its next progress "
    "report or check (`cancel_requested` is true until then); a finished one is 409.",
)
async def cancel_job(job_id: UUID, principal: Writer, session: DbSession) -> JobOut:
    return await job_service.cancel_job(session, principal, job_id)


@router.post(
    "/jobs/{job_id}/retry",
    response_model=JobOut,
    summary="Retry a failed or cancelled job",
    description="Queues the same job again with a fresh attempt budget; its logs keep the history.",
)
async def retry_job(job_id: UUID, principal: Writer, session: DbSession) -> JobOut:
    return await job_service.retry_job(session, principal, job_id)


@router.delete("/jobs/{job_id}", status_code=204, summary="Delete a queued or finished job")
async def delete_job(job_id: UUID, principal: Writer, session: DbSession) -> Response:
    await job_service.delete_job(session, principal, job_id)
    return Response(status_code=204)


@router.get(
    "/jobs/{job_id}/logs",
    response_model=Page[JobLogOut] | CursorPage[JobLogOut],
    summary="The job's log lines",
    description="Sort fields: `created_at` (default, oldest first).",
)
async def list_job_logs(
    job_id: UUID,
    principal: Reader,
    session: DbSession,
    query: Annotated[Any, list_query(["created_at"], default="created_at")],
) -> Page[JobLogOut] | CursorPage[JobLogOut]:
    page = await job_service.logs(session, job_id, query)
    return page.envelope([JobLogOut.model_validate(line) for line in page.items])


@router.get(
    "/jobs/{job_id}/artifacts/{name}",
    summary="Download a file the job produced",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, 206: {"description": "Range"}},
)
async def get_job_artifact(
    job_id: UUID,
    name: str,
    request: Request,
    principal: Reader,
    session: DbSession,
    settings: AppSettings,
) -> Response:
    artifact = await job_service.artifact(session, job_id, name)
    return blob_response(request, get_storage(settings), _artifact_blob(artifact))


def _artifact_blob(artifact: Any) -> Blob:
    return Blob(
        storage_key=artifact.storage_key,
        size=artifact.size,
        sha256=artifact.sha256,
        content_type=artifact.content_type,
        filename=artifact.name,
    )


def _artifact_resource(job_id: UUID, name: str) -> str:
    return f"artifact:{job_id}:{name}"


@router.get(
    "/jobs/{job_id}/artifacts/{name}/download-url",
    response_model=DownloadUrl,
    summary="A signed, expiring link to an artifact",
)
async def get_job_artifact_download_url(
    job_id: UUID,
    name: str,
    request: Request,
    principal: Reader,
    session: DbSession,
    settings: AppSettings,
) -> DownloadUrl:
    """A URL that downloads the artifact without credentials until
    `expires_at` (like documents' `download-url`)."""
    artifact = await job_service.artifact(session, job_id, name)
    base = str(request.url_for("download_job_artifact", job_id=job_id, name=artifact.name))
    return signed_url(settings, base, _artifact_resource(job_id, artifact.name), artifact.tenant_id)


@router.get(
    "/jobs/{job_id}/artifacts/{name}/download",
    summary="Download an artifact through a signed link (no credentials)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, 206: {"description": "Range"}},
)
async def download_job_artifact(
    job_id: UUID,
    name: str,
    request: Request,
    session: DbSession,
    settings: AppSettings,
    tenant: Annotated[str, Query(max_length=64)],
    expires: Annotated[str, Query(max_length=20)],
    sig: Annotated[str, Query(max_length=128)],
) -> Response:
    """403 when the link was tampered with or expired; 404 once the job or
    artifact is gone."""
    tenant_id = verify_link(settings, _artifact_resource(job_id, name), tenant, expires, sig)
    with tenant_scope(tenant_id):
        artifact = await job_service.artifact(session, job_id, name)
        return blob_response(request, get_storage(settings), _artifact_blob(artifact))


@batches_router.post(
    "/batches",
    status_code=202,
    response_model=BatchCreated,
    summary="Queue many jobs of one type at once (one transaction)",
)
async def create_batch(
    body: BatchCreate, principal: Writer, session: DbSession, settings: AppSettings
) -> JSONResponse:
    batch, job_ids = await job_service.create_batch(session, settings, principal, body)
    created = BatchCreated(id=batch.id, job_ids=job_ids)
    return JSONResponse(
        created.model_dump(mode="json"),
        status_code=202,
        headers={"Location": f"/api/v1/batches/{batch.id}"},
    )


@batches_router.get("/batches/{batch_id}", response_model=BatchOut)
async def get_batch(batch_id: UUID, principal: Reader, session: DbSession) -> BatchOut:
    return await job_service.get_batch(session, batch_id)
