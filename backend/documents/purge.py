"""Platform-wide numbers and purging of documents, plugged into the admin
domain (`register_stats_provider`, `register_purger`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, and_, delete, exists, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.documents.models import Document
from backend.kit.storage import active_storage, delete_after_commit


async def count_documents(session: AsyncSession) -> int:
    stmt = select(func.count()).select_from(Document).where(Document.deleted_at.is_(None))
    return int(await session.scalar(stmt) or 0)


async def storage_bytes_total(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.coalesce(func.sum(Document.size), 0))) or 0)


def purged_by(cutoff: datetime, tenant_ids: list[UUID]) -> ColumnElement[bool]:
    """The documents a purge removes: soft-deleted before `cutoff`, or of a
    tenant being purged (never NULL, so that its negation holds too)."""
    condition = and_(Document.deleted_at.is_not(None), Document.deleted_at < cutoff)
    if tenant_ids:
        condition = or_(condition, Document.tenant_id.in_(tenant_ids))
    return condition


def kept_by_purge(document_id: Any, cutoff: datetime, tenant_ids: list[UUID]) -> Any:
    """SQL true when the document whose id is the expression `document_id`
    exists and this purge keeps it: what another domain's purger deletes its
    dependants by, before or after `purge_documents` ran in the transaction."""
    return exists().where(Document.id == document_id, not_(purged_by(cutoff, tenant_ids)))


async def purge_documents(session: AsyncSession, cutoff: datetime, tenant_ids: list[UUID]) -> int:
    """Hard-delete documents soft-deleted before `cutoff` and every document
    of the tenants being purged; their blobs are deleted after the commit.
    Runs in the admin's system scope."""
    storage = active_storage()
    rows = await session.execute(
        delete(Document)
        .where(purged_by(cutoff, tenant_ids))
        .returning(Document.id, Document.storage_key)
    )
    purged = 0
    for _, storage_key in rows:
        delete_after_commit(session, storage, storage_key)
        purged += 1
    return purged
