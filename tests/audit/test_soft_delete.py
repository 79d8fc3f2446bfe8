"""The shared soft-delete and restore step (`backend/audit/soft_delete.py`):
each change recorded once, a live row restored as it is with nothing
recorded, a refusing check leaving the row deleted, unknown ids NotFound."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit.models import ActorType, AuditEvent
from backend.audit.soft_delete import SoftDeletion
from backend.candidates.models import Requisition
from backend.candidates.repository import RequisitionRepository
from backend.kit.db import tenant_scope
from backend.kit.errors import Conflict, NotFound
from tests.factories import make_tenant

DELETION = SoftDeletion(RequisitionRepository, "requisition", "test.deleted", "test.restored")


@dataclass(frozen=True)
class _Actor:
    id: UUID
    actor_type: ActorType = ActorType.USER


async def _actions(session: AsyncSession, row_id: UUID) -> list[str]:
    rows = await session.execute(
        select(AuditEvent.action)
        .where(AuditEvent.resource_id == str(row_id))
        .order_by(AuditEvent.created_at, AuditEvent.action)
    )
    return list(rows.scalars())


async def test_delete_then_restore_records_each_once(app: Any) -> None:
    tenant = await make_tenant(app)
    actor = _Actor(tenant.owner.id)
    with tenant_scope(tenant.id):
        async with app.state.db.transaction() as session:
            repository = RequisitionRepository(session)
            row = await repository.create(title="Engineer")
            deleted = await DELETION.delete(session, actor, row.id)
            assert deleted is row
            assert row.deleted_at is not None
            assert row.deleted_by == actor.id
            with pytest.raises(NotFound):
                await DELETION.delete(session, actor, row.id)
            assert await _actions(session, row.id) == ["test.deleted"]

            restored, was_deleted = await DELETION.restore(session, actor, row.id)
            assert (restored, was_deleted) == (row, True)
            assert row.deleted_at is None
            assert row.deleted_by is None
            again, was_deleted = await DELETION.restore(session, actor, row.id)
            assert (again, was_deleted) == (row, False)
            assert sorted(await _actions(session, row.id)) == ["test.deleted", "test.restored"]


async def test_a_refusing_check_leaves_the_row_deleted(app: Any) -> None:
    tenant = await make_tenant(app)
    actor = _Actor(tenant.owner.id)
    checked: list[Requisition] = []

    async def refuse(row: Requisition) -> None:
        checked.append(row)
        raise Conflict("not now")

    async def allow(row: Requisition) -> None:
        checked.append(row)

    with tenant_scope(tenant.id):
        async with app.state.db.transaction() as session:
            row = await RequisitionRepository(session).create(title="Engineer")
            await DELETION.delete(session, actor, row.id)
            with pytest.raises(Conflict):
                await DELETION.restore(session, actor, row.id, check=refuse)
            assert row.deleted_at is not None
            assert await _actions(session, row.id) == ["test.deleted"]
            await DELETION.restore(session, actor, row.id, check=allow)
            assert row.deleted_at is None
            # A live row is not checked: there is nothing to restore.
            await DELETION.restore(session, actor, row.id, check=refuse)
            assert checked == [row, row]


async def test_unknown_ids_are_not_found(app: Any) -> None:
    tenant = await make_tenant(app)
    actor = _Actor(tenant.owner.id)
    with tenant_scope(tenant.id):
        async with app.state.db.transaction() as session:
            with pytest.raises(NotFound):
                await DELETION.delete(session, actor, uuid.uuid4())
            with pytest.raises(NotFound):
                await DELETION.restore(session, actor, uuid.uuid4())
