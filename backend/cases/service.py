"""Business rules of cases: references, status transitions, assignees,
metadata limits, attaching documents and the timeline."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit.models import AuditEvent
from backend.audit.service import Actor, audit_service
from backend.cases.models import Case, CaseStatus
from backend.cases.repository import CaseRepository
from backend.cases.schemas import CaseCreate, CaseUpdate
from backend.documents.models import Document
from backend.documents.service import document_service
from backend.kit.db import current_tenant_id
from backend.kit.errors import DossierError, NotFound, ValidationFailed
from backend.kit.events import emit
from backend.kit.http import check_if_match
from backend.kit.pagination import ListQuery, PageResult
from backend.settings import Settings
from backend.users.service import user_service

# Allowed moves; setting the current status again is a no-op.
TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    CaseStatus.OPEN: frozenset({CaseStatus.IN_PROGRESS, CaseStatus.ON_HOLD, CaseStatus.CLOSED}),
    CaseStatus.IN_PROGRESS: frozenset({CaseStatus.ON_HOLD, CaseStatus.CLOSED}),
    CaseStatus.ON_HOLD: frozenset({CaseStatus.IN_PROGRESS, CaseStatus.CLOSED}),
    CaseStatus.CLOSED: frozenset({CaseStatus.OPEN}),
}


class InvalidTransition(DossierError):
    status, code = 409, "invalid_transition"


def _field_error(field: str, message: str, kind: str = "value_error") -> ValidationFailed:
    return ValidationFailed(
        message, errors=[{"loc": ["body", field], "msg": message, "type": kind}]
    )


def _depth(value: Any, limit: int, level: int = 1) -> int:
    """Nesting depth of a JSON value, stopping once past `limit`."""
    if level > limit:
        return level
    if isinstance(value, dict):
        children = list(value.values())
    elif isinstance(value, list):
        children = value
    else:
        return level - 1
    return max([level, *(_depth(child, limit, level + 1) for child in children)])


def check_metadata(settings: Settings, metadata: dict[str, Any]) -> None:
    if _depth(metadata, settings.case_metadata_max_depth) > settings.case_metadata_max_depth:
        raise _field_error(
            "metadata", f"metadata nests deeper than {settings.case_metadata_max_depth} levels"
        )
    size = len(json.dumps(metadata, separators=(",", ":")).encode())
    if size > settings.case_metadata_max_bytes:
        raise _field_error(
            "metadata", f"metadata is larger than {settings.case_metadata_max_bytes} bytes"
        )


def reference(number: int) -> str:
    return f"CASE-{number:06d}"


def case_event(case: Case) -> dict[str, Any]:
    return {
        "id": str(case.id),
        "reference": case.reference,
        "title": case.title,
        "status": case.status,
        "priority": case.priority,
        "assignee_id": str(case.assignee_id) if case.assignee_id else None,
    }


class CaseService:
    async def is_live(self, session: AsyncSession, case_id: UUID) -> bool:
        return await CaseRepository(session).get(case_id) is not None

    async def _check_assignee(self, session: AsyncSession, assignee_id: UUID | None) -> None:
        """An assignee is an active, not deleted user of the case's tenant."""
        if assignee_id is None:
            return
        try:
            user = await user_service.get_user(session, assignee_id)
        except NotFound:
            user = None
        if user is None or not user.is_active:
            raise _field_error("assignee_id", "No such active user in this tenant")

    async def create(
        self, session: AsyncSession, settings: Settings, actor: Actor, data: CaseCreate
    ) -> Case:
        tenant_id = current_tenant_id()
        assert tenant_id is not None
        check_metadata(settings, data.metadata)
        await self._check_assignee(session, data.assignee_id)
        repository = CaseRepository(session)
        number = await repository.next_reference_number(tenant_id)
        now = datetime.now(UTC)
        case = await repository.create(
            tenant_id=tenant_id,
            reference=reference(number),
            title=data.title,
            description=data.description,
            status=data.status,
            priority=data.priority,
            assignee_id=data.assignee_id,
            tags=data.tags,
            due_at=data.due_at,
            metadata_=data.metadata,
            closed_at=now if data.status is CaseStatus.CLOSED else None,
            created_by=actor.id,
        )
        await audit_service.record(
            session,
            actor,
            "case.created",
            "case",
            case.id,
            {"reference": case.reference, "title": case.title, "status": case.status},
        )
        emit(session, "case.created", case_event(case))
        return case

    async def get(
        self, session: AsyncSession, case_id: UUID, *, include_deleted: bool = False
    ) -> Case:
        return await CaseRepository(session).get_or_raise(case_id, include_deleted=include_deleted)

    async def list_cases(
        self, session: AsyncSession, query: ListQuery, **filters: Any
    ) -> PageResult[Case]:
        repository = CaseRepository(session)
        return await repository.paginate(repository.filtered(**filters), query)

    async def update(
        self,
        session: AsyncSession,
        settings: Settings,
        actor: Actor,
        case_id: UUID,
        data: CaseUpdate,
        *,
        if_match: str | None,
    ) -> Case:
        repository = CaseRepository(session)
        case = await repository.get_or_raise(case_id)
        check_if_match(if_match, case.version)
        values = data.model_dump(exclude_unset=True)
        for field in ("title", "status", "priority", "tags", "metadata"):
            if field in values and values[field] is None:
                raise _field_error(field, f"{field} cannot be null")
        if "metadata" in values:
            check_metadata(settings, values["metadata"])
            values["metadata_"] = values.pop("metadata")
        if "assignee_id" in values:
            await self._check_assignee(session, values["assignee_id"])
        status = values.get("status")
        if status is not None and status != case.status:
            if status not in TRANSITIONS[CaseStatus(case.status)]:
                raise InvalidTransition(f"A case cannot go from {case.status} to {status}")
            values["closed_at"] = datetime.now(UTC) if status is CaseStatus.CLOSED else None
        changes = await repository.update(case, values)
        if "metadata_" in changes:
            changes["metadata"] = changes.pop("metadata_")
        if changes:
            await audit_service.record(session, actor, "case.updated", "case", case.id, changes)
            emit(session, "case.updated", {**case_event(case), "changes": sorted(changes)})
        return case

    async def delete(self, session: AsyncSession, actor: Actor, case_id: UUID) -> None:
        repository = CaseRepository(session)
        case = await repository.get_or_raise(case_id)
        await repository.soft_delete(case, by=actor.id)
        await audit_service.record(session, actor, "case.deleted", "case", case.id)
        emit(session, "case.deleted", case_event(case))

    async def restore(self, session: AsyncSession, actor: Actor, case_id: UUID) -> Case:
        repository = CaseRepository(session)
        case = await repository.get_or_raise(case_id, include_deleted=True)
        if case.deleted_at is not None:
            await repository.restore(case)
            await audit_service.record(session, actor, "case.restored", "case", case.id)
            emit(session, "case.updated", {**case_event(case), "changes": ["deleted_at"]})
        return case

    async def attach(
        self, session: AsyncSession, actor: Actor, case_id: UUID, document_id: UUID
    ) -> Document:
        case = await self.get(session, case_id)
        try:
            document = await document_service.get(session, document_id)
        except NotFound:
            raise _field_error("document_id", "No such document in this tenant") from None
        previous = document.case_id
        document = await document_service.move_to_case(session, actor, document.id, case.id)
        if previous != case.id:
            await audit_service.record(
                session,
                actor,
                "case.document_attached",
                "case",
                case.id,
                {"document_id": str(document.id)},
            )
        return document

    async def detach(
        self, session: AsyncSession, actor: Actor, case_id: UUID, document_id: UUID
    ) -> None:
        case = await self.get(session, case_id)
        document = await document_service.get(session, document_id)
        if document.case_id != case.id:
            raise NotFound("This document is not attached to this case")
        await document_service.move_to_case(session, actor, document.id, None)
        await audit_service.record(
            session,
            actor,
            "case.document_detached",
            "case",
            case.id,
            {"document_id": str(document.id)},
        )

    async def list_documents(
        self, session: AsyncSession, case_id: UUID, query: ListQuery
    ) -> PageResult[Any]:
        """The case's documents as `documents.service` lists them (mappings)."""
        await self.get(session, case_id)
        connection = await session.connection()
        return await document_service.list_documents(connection, query, case_id=case_id)

    async def timeline(
        self, session: AsyncSession, case_id: UUID, query: ListQuery, *, with_documents: bool
    ) -> PageResult[AuditEvent]:
        await self.get(session, case_id)
        resources = {"case": [str(case_id)]}
        if with_documents:
            document_ids = await document_service.ids_in_case(session, case_id)
            resources["document"] = [str(item) for item in document_ids]
        return await audit_service.list_for_resources(session, resources, query)

    async def purge(self, session: AsyncSession, cutoff: datetime, tenant_ids: list[UUID]) -> int:
        """Hard-delete cases soft-deleted before `cutoff` (admin system scope);
        their documents stay, detached. Tenants being purged lose theirs by cascade."""
        return await CaseRepository(session).purge_deleted_before(cutoff)


case_service = CaseService()
