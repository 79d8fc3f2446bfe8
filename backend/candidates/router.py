"""HTTP routes of the CV workload: `/candidates` (import, skills, CRUD, merge,
re-parse) and `/requisitions` (CRUD and matches)."""

from __future__ import annotations

import tempfile
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response

from backend.auth.deps import require
from backend.auth.principal import Principal
from backend.candidates.models import Candidate, CandidateStatus, Requisition
from backend.candidates.schemas import (
    CandidateMerge,
    CandidateOut,
    CandidateUpdate,
    ImportAnswer,
    MatchOut,
    RequisitionCreate,
    RequisitionOut,
    RequisitionUpdate,
    TenantSkillCreate,
    TenantSkillOut,
)
from backend.candidates.service import Upload, candidate_service
from backend.documents.service import deny_include_deleted
from backend.jobs.schemas import JobOut
from backend.jobs.service import job_out
from backend.kit.body_limit import STREAMED_BODY
from backend.kit.deps import AppSettings, DbSession
from backend.kit.errors import PayloadTooLarge, ValidationFailed
from backend.kit.multipart import MultipartReader
from backend.kit.pagination import CursorPage, ListQuery, Page, list_query

CANDIDATES_READ = "candidates:read"
CANDIDATES_WRITE = "candidates:write"

router = APIRouter(prefix="/candidates", tags=["candidates"])
requisitions_router = APIRouter(prefix="/requisitions", tags=["requisitions"])

SORTABLE = ["created_at", "name", "total_experience_months"]
FIELD_LIMIT = 64 * 1024
SPOOL_IN_MEMORY = 1024 * 1024  # bytes of an uploaded file kept in memory before disk
MAX_IMPORT_FILES = 1000  # files (not archive entries) in one import request

Reader = Annotated[Principal, require(CANDIDATES_READ)]
Writer = Annotated[Principal, require(CANDIDATES_WRITE)]

_IMPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "maxItems": MAX_IMPORT_FILES,
                        },
                        "tags": {"type": "string", "description": "comma-separated"},
                        "requisition_id": {"type": "string", "format": "uuid"},
                    },
                }
            }
        },
    }
}


def _candidate(response: Response, candidate: Candidate) -> CandidateOut:
    response.headers["ETag"] = candidate.etag
    return CandidateOut.model_validate(candidate)


def _requisition(response: Response, requisition: Requisition) -> RequisitionOut:
    response.headers["ETag"] = f'W/"{requisition.version}"'
    return RequisitionOut.model_validate(requisition)


# ------------------------------------------------------------------- import
@router.post(
    "/import",
    status_code=202,
    response_model=ImportAnswer,
    openapi_extra=_IMPORT_BODY,
    max_body_size=STREAMED_BODY,  # the reader bounds it (MAX_UPLOAD_BYTES per file)
    responses={413: {}, 422: {}},
)
async def import_candidates(
    request: Request,
    principal: Writer,
    session: DbSession,
    settings: AppSettings,
) -> ImportAnswer:
    """Import CVs: repeated `files` (PDF, DOCX, text, images, or `.zip`
    archives whose entries, in nested folders too, are imported one by one);
    optional `tags` (comma-separated) and `requisition_id`. Each file becomes a
    document (one the tenant already has is reused) and a `cv.parse` job, all
    in one batch. Archives unpacking to more than `MAX_UPLOAD_BYTES` (413),
    with more than `IMPORT_MAX_ENTRIES` files or compressed more than
    `IMPORT_MAX_COMPRESSION_RATIO`:1 (422) are refused before anything is
    stored. A file that cannot be imported gets an `error` of its own."""
    reader = MultipartReader(request, max_body_bytes=MAX_IMPORT_FILES * settings.max_upload_bytes)
    fields: dict[str, str] = {}
    uploads: list[Upload] = []
    try:
        async for part in reader.parts():
            if part.name == "files" and part.is_file:
                if len(uploads) >= MAX_IMPORT_FILES:
                    raise ValidationFailed(f"At most {MAX_IMPORT_FILES} files per request")
                spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
                size = 0
                async for chunk in part.stream():
                    size += len(chunk)
                    if size > settings.max_upload_bytes:
                        spool.close()
                        raise PayloadTooLarge(
                            f"{part.filename!r} is larger than {settings.max_upload_bytes} bytes"
                        )
                    spool.write(chunk)
                uploads.append(Upload(part.filename or "upload", spool, part.content_type))
            elif part.name in ("tags", "requisition_id"):
                fields[part.name] = (await part.read_text(FIELD_LIMIT)).strip()
            else:
                await part.skip()
        if not uploads:
            raise ValidationFailed(
                "The form has no files",
                errors=[{"loc": ["body", "files"], "msg": "Field required", "type": "missing"}],
            )
        requisition_id = None
        if fields.get("requisition_id"):
            try:
                requisition_id = UUID(fields["requisition_id"])
            except ValueError:
                raise ValidationFailed(
                    "requisition_id is not a UUID",
                    errors=[
                        {
                            "loc": ["body", "requisition_id"],
                            "msg": "not a UUID",
                            "type": "uuid_parsing",
                        }
                    ],
                ) from None
        tags = [t.strip()[:100] for t in fields.get("tags", "").split(",") if t.strip()]
        return await candidate_service.import_files(
            session, settings, principal, uploads, tags=tags, requisition_id=requisition_id
        )
    finally:
        for upload in uploads:
            upload.file.close()


# ------------------------------------------------------------------- skills
@router.get("/skills", response_model=Page[TenantSkillOut] | CursorPage[TenantSkillOut])
async def list_candidate_skills(
    principal: Reader,
    session: DbSession,
    query: Annotated[ListQuery, list_query(["created_at", "name"], default="name")],
) -> Any:
    """The tenant's own skills (the built-in taxonomy is in the README)."""
    result = await candidate_service.list_skills(session, query)
    return result.envelope([TenantSkillOut.model_validate(row) for row in result.items])


@router.post("/skills", status_code=201, response_model=TenantSkillOut, responses={409: {}})
async def create_candidate_skill(
    body: TenantSkillCreate, principal: Writer, session: DbSession
) -> TenantSkillOut:
    """Add a skill (`{name, aliases}`) that CVs parsed from now on are searched for."""
    return TenantSkillOut.model_validate(
        await candidate_service.create_skill(session, principal, body)
    )


@router.delete("/skills/{name}", status_code=204)
async def delete_candidate_skill(name: str, principal: Writer, session: DbSession) -> Response:
    await candidate_service.delete_skill(session, principal, name)
    return Response(status_code=204)


@router.post("/skills/{name}/restore", response_model=TenantSkillOut)
async def restore_candidate_skill(
    name: str, principal: Writer, session: DbSession
) -> TenantSkillOut:
    return TenantSkillOut.model_validate(
        await candidate_service.restore_skill(session, principal, name)
    )


# --------------------------------------------------------------- candidates
@router.get("", response_model=Page[CandidateOut] | CursorPage[CandidateOut])
async def list_candidates(
    principal: Reader,
    session: DbSession,
    query: Annotated[ListQuery, list_query(SORTABLE)],
    q: Annotated[
        str | None,
        Query(min_length=1, max_length=500, description="Full text over the CV and profile"),
    ] = None,
    skill: Annotated[
        list[str] | None, Query(max_length=50, description="Has all of these skills")
    ] = None,
    any_skill: Annotated[
        list[str] | None, Query(max_length=50, description="Has any of these skills")
    ] = None,
    min_experience_years: Annotated[float | None, Query(ge=0, le=80)] = None,
    location: Annotated[str | None, Query(min_length=1, max_length=300)] = None,
    status: CandidateStatus | None = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    requisition_id: UUID | None = None,
    include_deleted: bool = False,
) -> Any:
    if include_deleted:
        deny_include_deleted(principal.permissions, CANDIDATES_WRITE)
    result = await candidate_service.list_candidates(
        session,
        query,
        include_deleted=include_deleted,
        q=q,
        skill=skill,
        any_skill=any_skill,
        min_experience_years=min_experience_years,
        location=location,
        status=status,
        tag=tag,
        requisition_id=requisition_id,
    )
    return result.envelope([CandidateOut.model_validate(row) for row in result.items])


@router.post("/merge", response_model=CandidateOut)
async def merge_candidates(
    body: CandidateMerge, response: Response, principal: Writer, session: DbSession
) -> CandidateOut:
    """Merge `source_id` into `target_id`: the target gains the source's
    e-mails, phones, skills, documents and tags; the source is soft-deleted."""
    return _candidate(response, await candidate_service.merge(session, principal, body))


@router.get("/{candidate_id}", response_model=CandidateOut)
async def get_candidate(
    candidate_id: UUID, response: Response, principal: Reader, session: DbSession
) -> CandidateOut:
    return _candidate(response, await candidate_service.get(session, candidate_id))


@router.patch("/{candidate_id}", response_model=CandidateOut, responses={412: {}})
async def update_candidate(
    candidate_id: UUID,
    body: CandidateUpdate,
    request: Request,
    response: Response,
    principal: Writer,
    session: DbSession,
    settings: AppSettings,
) -> CandidateOut:
    """Change profile fields (each is then listed in `edited_fields` and kept
    when later CVs are parsed), `status` or `tags`."""
    candidate = await candidate_service.update(
        session, settings, principal, candidate_id, body, if_match=request.headers.get("if-match")
    )
    return _candidate(response, candidate)


@router.delete("/{candidate_id}", status_code=204)
async def delete_candidate(candidate_id: UUID, principal: Writer, session: DbSession) -> Response:
    await candidate_service.delete(session, principal, candidate_id)
    return Response(status_code=204)


@router.post("/{candidate_id}/restore", response_model=CandidateOut)
async def restore_candidate(
    candidate_id: UUID, response: Response, principal: Writer, session: DbSession
) -> CandidateOut:
    return _candidate(response, await candidate_service.restore(session, principal, candidate_id))


@router.post("/{candidate_id}/reparse", status_code=202, response_model=JobOut)
async def reparse_candidate(
    candidate_id: UUID, principal: Writer, session: DbSession, settings: AppSettings
) -> JobOut:
    """Parse the candidate's newest CV again (a `cv.parse` job)."""
    return job_out(await candidate_service.reparse(session, settings, principal, candidate_id))


# ------------------------------------------------------------- requisitions
@requisitions_router.post("", status_code=201, response_model=RequisitionOut)
async def create_requisition(
    body: RequisitionCreate,
    request: Request,
    response: Response,
    principal: Writer,
    session: DbSession,
) -> RequisitionOut:
    """Skills are stored under their canonical names (`k8s` → `Kubernetes`)."""
    requisition = await candidate_service.create_requisition(session, principal, body)
    response.headers["Location"] = str(
        request.url_for("get_requisition", requisition_id=requisition.id)
    )
    return _requisition(response, requisition)


@requisitions_router.get("", response_model=Page[RequisitionOut] | CursorPage[RequisitionOut])
async def list_requisitions(
    principal: Reader,
    session: DbSession,
    query: Annotated[ListQuery, list_query(["created_at", "title"])],
    q: Annotated[str | None, Query(min_length=1, max_length=300)] = None,
    include_deleted: bool = False,
) -> Any:
    if include_deleted:
        deny_include_deleted(principal.permissions, CANDIDATES_WRITE)
    result = await candidate_service.list_requisitions(
        session, query, include_deleted=include_deleted, q=q
    )
    return result.envelope([RequisitionOut.model_validate(row) for row in result.items])


@requisitions_router.get("/{requisition_id}", response_model=RequisitionOut)
async def get_requisition(
    requisition_id: UUID, response: Response, principal: Reader, session: DbSession
) -> RequisitionOut:
    return _requisition(response, await candidate_service.get_requisition(session, requisition_id))


@requisitions_router.patch("/{requisition_id}", response_model=RequisitionOut, responses={412: {}})
async def update_requisition(
    requisition_id: UUID,
    body: RequisitionUpdate,
    request: Request,
    response: Response,
    principal: Writer,
    session: DbSession,
) -> RequisitionOut:
    requisition = await candidate_service.update_requisition(
        session, principal, requisition_id, body, if_match=request.headers.get("if-match")
    )
    return _requisition(response, requisition)


@requisitions_router.delete("/{requisition_id}", status_code=204)
async def delete_requisition(
    requisition_id: UUID, principal: Writer, session: DbSession
) -> Response:
    await candidate_service.delete_requisition(session, principal, requisition_id)
    return Response(status_code=204)


@requisitions_router.post("/{requisition_id}/restore", response_model=RequisitionOut)
async def restore_requisition(
    requisition_id: UUID, response: Response, principal: Writer, session: DbSession
) -> RequisitionOut:
    requisition = await candidate_service.restore_requisition(session, principal, requisition_id)
    return _requisition(response, requisition)


@requisitions_router.get(
    "/{requisition_id}/matches", response_model=Page[MatchOut] | CursorPage[MatchOut]
)
async def list_requisition_matches(
    requisition_id: UUID,
    principal: Reader,
    session: DbSession,
    query: Annotated[ListQuery, list_query(["score"], default="-score")],
    min_score: Annotated[float, Query(ge=0, le=100)] = 0,
) -> Any:
    """The tenant's candidates ranked for the requisition, best first, each with
    its score (0–100) and the breakdown that explains it. A candidate missing
    any required skill ranks below every candidate who has them all; the
    formula is in the README ("Matching")."""
    if query.sort.field != "score" or not query.sort.descending:
        raise ValidationFailed(
            "matches are sorted by -score",
            errors=[{"loc": ["query", "sort"], "msg": "only -score", "type": "value_error"}],
        )
    result = await candidate_service.matches(session, requisition_id, query, min_score=min_score)
    return result.envelope(result.items)
