"""HTTP routes of jobs, job types and batches."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from backend.admin.service import register_stats_provider
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
from backend.kit.deps import AppSettings, DbSession
from backend.kit.errors import DossierError
from backend.kit.pagination import CursorPage, Page, list_query
from backend.kit.storage import get_storage
from backend.tenants.service import register_usage_provider

router = APIRouter(tags=["jobs"])
batches_router = APIRouter(tags=["batches"])

register_usage_provider("running_jobs", job_service.running_jobs)
register_stats_provider("jobs", job_service.count_by_status)

Reader = Annotated[Principal, require("jobs:read")]
Writer = Annotated[Principal, require("jobs:write")]

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(DossierError):
    status, code = 416, "range_not_satisfiable"


@router.get("/job-types", response_model=list[JobTypeOut], summary="Registered job types")
async def list_job_types(principal: Reader, settings: AppSettings) -> list[JobTypeOut]:
    return job_service.job_types(settings)


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
    page, artifacts = await job_service.list_jobs(session, query, filters)
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
    etag = f'"{artifact.sha256}"'
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(artifact.name)}",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    start, end, status = 0, artifact.size - 1, 200
    range_header = request.headers.get("range")
    if range_header and artifact.size > 0:
        match = _RANGE.match(range_header.strip())
        if match and (match.group(1) or match.group(2)):
            if match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)), artifact.size - 1) if match.group(2) else end
            else:
                start = max(0, artifact.size - int(match.group(2)))
            if start > end or start >= artifact.size:
                raise RangeNotSatisfiable(
                    "Range not satisfiable", headers={"Content-Range": f"bytes */{artifact.size}"}
                )
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{artifact.size}"
    headers["Content-Length"] = str(max(0, end - start + 1))
    storage = get_storage(settings)
    return StreamingResponse(
        storage.open_range(artifact.storage_key, start, end),
        status_code=status,
        media_type=artifact.content_type,
        headers=headers,
    )


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
