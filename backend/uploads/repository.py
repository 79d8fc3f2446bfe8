"""SQL of resumable uploads and their parts."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, select

from backend.kit.repository import Repository, tenant_total
from backend.uploads.models import Upload, UploadPart, UploadStatus


class UploadRepository(Repository[Upload]):
    model = Upload
    resource_name = "Upload"

    async def get_for_update(self, upload_id: UUID) -> Upload | None:
        stmt = self.select().where(Upload.id == upload_id).with_for_update()
        row: Upload | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return row

    async def expired(self, now: datetime, limit: int) -> list[Upload]:
        stmt = (
            self.select()
            .where(Upload.expires_at < now)
            .order_by(Upload.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def open_count(self, tenant_id: UUID) -> int:
        """Open uploads of the tenant."""
        stmt = select(func.count()).where(
            Upload.tenant_id == tenant_id, Upload.status == UploadStatus.PENDING
        )
        return int(await self.session.scalar(stmt) or 0)

    @staticmethod
    def reserved_bytes_of(tenant_id: Any) -> Any:
        """The bytes the open uploads of the tenant `tenant_id` (an expression)
        declared, as a scalar subquery."""
        return tenant_total(
            Upload.size, Upload.tenant_id, tenant_id, Upload.status == UploadStatus.PENDING
        )

    async def of_tenants(self, tenant_ids: list[UUID]) -> list[Upload]:
        stmt = self.select().where(Upload.tenant_id.in_(tenant_ids))
        return list((await self.session.execute(stmt)).scalars())

    async def delete(self, upload: Upload) -> None:
        await self.session.delete(upload)
        await self.session.flush()


class UploadPartRepository(Repository[UploadPart]):
    model = UploadPart
    resource_name = "Upload part"

    async def parts(self, upload_id: UUID) -> list[UploadPart]:
        stmt = self.select().where(UploadPart.upload_id == upload_id).order_by(UploadPart.number)
        return list((await self.session.execute(stmt)).scalars())

    async def part(self, upload_id: UUID, number: int) -> UploadPart | None:
        stmt = (
            self.select()
            .where(UploadPart.upload_id == upload_id, UploadPart.number == number)
            .with_for_update()
        )
        row: UploadPart | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return row

    async def delete_of(self, upload_id: UUID) -> list[str]:
        stmt = (
            delete(UploadPart)
            .where(UploadPart.upload_id == upload_id)
            .returning(UploadPart.storage_key)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def keys_of(self, upload_ids: list[UUID]) -> list[str]:
        stmt = select(UploadPart.storage_key).where(UploadPart.upload_id.in_(upload_ids))
        return list((await self.session.execute(stmt)).scalars())
