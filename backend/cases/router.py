"""HTTP routes of cases: CRUD with transitions, their documents and timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response

from backend.audit.schemas import AuditEventOut
from backend.auth.deps import require
from backend.auth.principal import Principal
from backend.cases.models import Case, CasePriority, CaseStatus
from backend.cases.schemas import CaseCreate, CaseDocumentAttach, CaseOut, CaseUpdate
from backend.cases.service import case_service
from backend.documents.schemas import DocumentOut
from backend.documents.service import deny_include_deleted
from backend.kit.deps import AppSettings, DbSession
from backend.kit.pagination import CursorPage, ListQuery, Page, list_query, page_json
from backend.roles.permissions import Permission

router = APIRouter(prefix="/cases", tags=["cases"])

SORTABLE = ["created_at", "updated_at", "due_at", "title", "reference", "priority", "status"]


def _answer(response: Response, case: Case) -> CaseOut:
    response.headers["ETag"] = f'W/"{case.version}"'
    return CaseOut.model_validate(case)


@router.post("", status_code=201, response_model=CaseOut)
async def create_case(
    body: CaseCreate,
    request: Request,
    response: Response,
    principal: Annotated[Principal, require(Permission.CASES_WRITE)],
    session: DbSession,
    settings: AppSettings,
) -> CaseOut:
    """A new case gets the tenant's next reference (`CASE-000001`, …)."""
    case = await case_service.create(session, settings, principal, body)
    response.headers["Location"] = str(request.url_for("get_case", case_id=case.id))
    return _answer(response, case)


@router.get("", response_model=Page[CaseOut] | CursorPage[CaseOut])
async def list_cases(
    principal: Annotated[Principal, require(Permission.CASES_READ)],
    session: DbSession,
    query: Annotated[ListQuery, list_query(SORTABLE)],
    status: CaseStatus | None = None,
    priority: CasePriority | None = None,
    assignee_id: UUID | None = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=500,
            description="Full-text search: reference, title, description",
        ),
    ] = None,
    due_after: datetime | None = None,
    due_before: datetime | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    include_deleted: bool = False,
) -> Any:
    if include_deleted:
        deny_include_deleted(principal.permissions, Permission.CASES_DELETE)
    result = await case_service.list_cases(
        session,
        query,
        include_deleted=include_deleted,
        status=status,
        priority=priority,
        assignee_id=assignee_id,
        tag=tag,
        q=q,
        due_after=due_after,
        due_before=due_before,
        created_after=created_after,
        created_before=created_before,
    )
    return result.envelope([CaseOut.model_validate(row) for row in result.items])


@router.get("/{case_id}", response_model=CaseOut)
async def get_case(
    case_id: UUID,
    response: Response,
    principal: Annotated[Principal, require(Permission.CASES_READ)],
    session: DbSession,
) -> CaseOut:
    return _answer(response, await case_service.get(session, case_id))


@router.patch("/{case_id}", response_model=CaseOut, responses={412: {}})
async def update_case(
    case_id: UUID,
    body: CaseUpdate,
    request: Request,
    response: Response,
    principal: Annotated[Principal, require(Permission.CASES_WRITE)],
    session: DbSession,
    settings: AppSettings,
) -> CaseOut:
    """Change a case. Status moves: `open → in_progress | on_hold | closed`,
    `in_progress → on_hold | closed`, `on_hold → in_progress | closed`,
    `closed → open`; others are 409 `invalid_transition`. `If-Match` → 412 when stale."""
    case = await case_service.update(
        session, settings, principal, case_id, body, if_match=request.headers.get("if-match")
    )
    return _answer(response, case)


@router.delete("/{case_id}", status_code=204)
async def delete_case(
    case_id: UUID,
    principal: Annotated[Principal, require(Permission.CASES_DELETE)],
    session: DbSession,
) -> Response:
    await case_service.delete(session, principal, case_id)
    return Response(status_code=204)


@router.post("/{case_id}/restore", response_model=CaseOut)
async def restore_case(
    case_id: UUID,
    response: Response,
    principal: Annotated[Principal, require(Permission.CASES_DELETE)],
    session: DbSession,
) -> CaseOut:
    return _answer(response, await case_service.restore(session, principal, case_id))


@router.post("/{case_id}/documents", response_model=DocumentOut)
async def create_case_document(
    case_id: UUID,
    body: CaseDocumentAttach,
    principal: Annotated[Principal, require(Permission.CASES_WRITE, Permission.DOCUMENTS_WRITE)],
    session: DbSession,
) -> DocumentOut:
    """Attach a document (moving it from any other case)."""
    document = await case_service.attach(session, principal, case_id, body.document_id)
    return DocumentOut.model_validate(document)


@router.delete("/{case_id}/documents/{document_id}", status_code=204)
async def delete_case_document(
    case_id: UUID,
    document_id: UUID,
    principal: Annotated[Principal, require(Permission.CASES_WRITE, Permission.DOCUMENTS_WRITE)],
    session: DbSession,
) -> Response:
    await case_service.detach(session, principal, case_id, document_id)
    return Response(status_code=204)


@router.get("/{case_id}/documents", response_model=Page[DocumentOut] | CursorPage[DocumentOut])
async def list_case_documents(
    case_id: UUID,
    principal: Annotated[Principal, require(Permission.CASES_READ, Permission.DOCUMENTS_READ)],
    session: DbSession,
    query: Annotated[ListQuery, list_query(["created_at", "updated_at", "title", "size"])],
) -> Any:
    result = await case_service.list_documents(session, case_id, query)
    return page_json(result)


@router.get("/{case_id}/timeline", response_model=Page[AuditEventOut] | CursorPage[AuditEventOut])
async def list_case_timeline(
    case_id: UUID,
    principal: Annotated[Principal, require(Permission.CASES_READ)],
    session: DbSession,
    query: Annotated[ListQuery, list_query(["created_at"], default="created_at")],
) -> Any:
    """The audit events of the case, oldest first, and those of its documents
    for callers who may read documents (`documents:read`)."""
    with_documents = principal.has(Permission.DOCUMENTS_READ)
    result = await case_service.timeline(session, case_id, query, with_documents=with_documents)
    return result.envelope([AuditEventOut.model_validate(row) for row in result.items])
