"""Business rules of resumable uploads: declare, send parts (idempotently),
complete into a document through the same path as a direct upload, abort,
and clean up uploads that expired."""

from __future__ import annotations

import math
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit.service import Actor, audit_service
from backend.documents.content import sanitise_filename
from backend.documents.models import Document
from backend.documents.schemas import DocumentMetadata
from backend.documents.service import StagedFile, document_service
from backend.kit.db import after_commit, current_tenant_id
from backend.kit.errors import (
    Conflict,
    DossierError,
    NotFound,
    PayloadTooLarge,
    ValidationFailed,
)
from backend.kit.models import uuid7
from backend.kit.references import is_live
from backend.kit.storage import (
    S3Storage,
    Storage,
    active_storage,
    commit_after_commit,
    delete_after_commit,
    get_storage,
    key_for,
)
from backend.settings import Settings
from backend.tenants.storage_quota import check_storage_quota
from backend.uploads.models import Upload, UploadPart, UploadStatus
from backend.uploads.repository import UploadPartRepository, UploadRepository
from backend.uploads.schemas import UploadCreate


class ChecksumMismatch(DossierError):
    status, code = 422, "checksum_mismatch"


class TooManyOpenUploads(DossierError):
    status, code = 429, "too_many_open_uploads"


def _error(field: str, message: str, where: str = "body") -> ValidationFailed:
    return ValidationFailed(
        message, errors=[{"loc": [where, field], "msg": message, "type": "value_error"}]
    )


# SigV4 presigned URLs live at most a week.
MAX_PART_URL_SECONDS = 7 * 24 * 3600


def direct_key(upload: Upload) -> str:
    """Where a direct upload's parts are assembled (and the document's blob stays)."""
    return key_for("tenants", upload.tenant_id, "uploads", upload.id, "object")


def _missing(missing: list[int]) -> ValidationFailed:
    return ValidationFailed(
        "Some parts have not arrived",
        errors=[{"loc": ["parts"], "msg": f"missing parts: {missing[:20]}", "type": "missing"}],
        missing_parts=missing[:100],
    )


def expected_part_size(upload: Upload, number: int) -> int:
    if number < upload.part_count:
        return upload.part_size
    return upload.size - (upload.part_count - 1) * upload.part_size


class UploadService:
    async def initiate(
        self, session: AsyncSession, settings: Settings, actor: Actor, data: UploadCreate
    ) -> tuple[Upload, list[str] | None]:
        """The upload, and with the S3 backend presigned `PUT` URLs for its
        parts (a multipart upload clients send straight to the bucket)."""
        tenant_id = current_tenant_id()
        assert tenant_id is not None
        if data.size > settings.max_upload_bytes:
            raise PayloadTooLarge(f"The file is larger than {settings.max_upload_bytes} bytes")
        open_uploads = await UploadRepository(session).open_count(tenant_id)
        if open_uploads >= settings.max_open_uploads:
            raise TooManyOpenUploads(
                f"At most {settings.max_open_uploads} open uploads: complete or abort one first"
            )
        # The declared size is reserved (counted as used) until complete or abort.
        await check_storage_quota(session, settings, tenant_id, data.size, lock=True)
        if data.case_id is not None and not await is_live(session, "case", data.case_id):
            raise _error("case_id", "No such case in this tenant")
        part_size = settings.upload_part_size
        upload = await UploadRepository(session).create(
            tenant_id=tenant_id,
            filename=sanitise_filename(data.filename),
            size=data.size,
            sha256=data.sha256.lower() if data.sha256 else None,
            content_type=data.content_type,
            title=data.title,
            description=data.description,
            tags=data.tags,
            case_id=data.case_id,
            allow_duplicate=data.allow_duplicate,
            part_size=part_size,
            part_count=math.ceil(data.size / part_size),
            expires_at=datetime.now(UTC) + timedelta(seconds=settings.upload_expiry_seconds),
            created_by=actor.id,
        )
        await audit_service.record(
            session,
            actor,
            "upload.created",
            "upload",
            upload.id,
            {"filename": upload.filename, "size": upload.size},
        )
        storage = get_storage(settings)
        if not isinstance(storage, S3Storage):
            return upload, None
        key = direct_key(upload)
        upload_id = await storage.start_direct(key, upload.content_type)
        # The maintenance sweep aborts multipart uploads older than
        # STAGING_MAX_AGE_SECONDS: the links do not outlive the parts' upload.
        seconds = int(
            min(
                settings.upload_expiry_seconds,
                settings.staging_max_age_seconds,
                MAX_PART_URL_SECONDS,
            )
        )
        return upload, await storage.part_urls(key, upload_id, upload.part_count, seconds)

    async def get(
        self, session: AsyncSession, settings: Settings, upload_id: UUID
    ) -> tuple[Upload, list[int]]:
        """The upload and the numbers of the parts received (through the API
        or, with S3, straight into the bucket)."""
        upload = await UploadRepository(session).get_or_raise(upload_id)
        parts = {part.number for part in await UploadPartRepository(session).parts(upload.id)}
        direct = await self._direct(settings, upload)
        if direct is not None:
            storage, upload_id_s3 = direct
            parts |= set(await storage.direct_parts(direct_key(upload), upload_id_s3))
        return upload, sorted(parts)

    async def _direct(self, settings: Settings, upload: Upload) -> tuple[S3Storage, str] | None:
        """The S3 storage and multipart upload id of a pending direct upload."""
        storage = get_storage(settings)
        if not isinstance(storage, S3Storage) or upload.status != UploadStatus.PENDING:
            return None
        found = await storage.find_direct(direct_key(upload))
        return (storage, found) if found else None

    async def _pending(self, session: AsyncSession, upload_id: UUID) -> Upload:
        upload = await UploadRepository(session).get_for_update(upload_id)
        if upload is None or upload.expires_at < datetime.now(UTC):
            raise NotFound("Upload not found")
        if upload.status != UploadStatus.PENDING:
            raise Conflict("This upload is already completed")
        return upload

    async def put_part(
        self,
        session: AsyncSession,
        settings: Settings,
        actor: Actor,
        upload_id: UUID,
        number: int,
        body: AsyncIterable[bytes],
    ) -> UploadPart:
        """Store part `number`; sending it again replaces it.

        The body is streamed to staging before the first query: no database
        connection (nor the upload's row lock) waits on a slow client. Only
        then is the upload locked, in a short transaction, and the part
        checked against it (a refused part's staged blob is discarded)."""
        tenant_id = current_tenant_id()
        assert tenant_id is not None
        limit = settings.upload_part_size
        received = 0

        async def measured() -> AsyncIterator[bytes]:
            nonlocal received
            async for chunk in body:
                received += len(chunk)
                if received > limit:
                    raise _error("body", f"A part is at most {limit} bytes", "body")
                yield chunk

        storage = get_storage(settings)
        key = key_for("tenants", tenant_id, "uploads", upload_id, f"part-{number}-{uuid7()}")
        staged = await storage.put_stream(key, measured())
        try:
            upload = await self._pending(session, upload_id)
            if not 1 <= number <= upload.part_count:
                raise _error("number", f"Part numbers run from 1 to {upload.part_count}", "path")
            expected = expected_part_size(upload, number)
            if received != expected:
                raise _error("body", f"Part {number} must be {expected} bytes", "body")
        except BaseException:
            await storage.discard(staged)
            raise
        parts = UploadPartRepository(session)
        part = await parts.part(upload.id, number)
        if part is None:
            part = await parts.create(
                tenant_id=upload.tenant_id,
                upload_id=upload.id,
                number=number,
                size=received,
                sha256=staged.sha256,
                storage_key=key,
            )
        else:
            delete_after_commit(session, storage, part.storage_key)
            part.size, part.sha256, part.storage_key = received, staged.sha256, key
            await session.flush()
        commit_after_commit(session, storage, staged)
        return part

    async def complete(
        self, session: AsyncSession, settings: Settings, actor: Actor, upload_id: UUID
    ) -> Document:
        """Check every part arrived, the size and the sha256, then create the
        document exactly as a direct upload does."""
        upload = await self._pending(session, upload_id)
        parts_repository = UploadPartRepository(session)
        parts = await parts_repository.parts(upload.id)
        direct = None if parts else await self._direct(settings, upload)
        if direct is not None:
            file = await self._assemble_direct(settings, upload, *direct)
        else:
            missing = sorted(set(range(1, upload.part_count + 1)) - {part.number for part in parts})
            if missing:
                raise _missing(missing)
            total = sum(part.size for part in parts)
            if total != upload.size:
                raise ChecksumMismatch(f"Received {total} bytes, declared {upload.size}")
            file = await document_service.stage_file(
                session,
                settings,
                source=_concatenate(get_storage(settings), [part.storage_key for part in parts]),
                filename=upload.filename,
                claimed_type=upload.content_type,
            )
        storage = get_storage(settings)
        if file.size != upload.size or (upload.sha256 and file.sha256 != upload.sha256):
            await document_service.discard(session, file)
            raise ChecksumMismatch("The received bytes do not match the declared sha256")
        # The reservation ends here: the document's own bytes count instead.
        upload.status = UploadStatus.COMPLETED
        await session.flush()
        metadata = DocumentMetadata(
            title=upload.title,
            description=upload.description,
            tags=list(upload.tags),
            case_id=upload.case_id,
        )
        document = await document_service.create_document(
            session, settings, actor, file, metadata, allow_duplicate=upload.allow_duplicate
        )
        for key in await parts_repository.delete_of(upload.id):
            delete_after_commit(session, storage, key)
        upload.status = UploadStatus.COMPLETED
        upload.document_id = document.id
        await session.flush()
        await audit_service.record(
            session,
            actor,
            "upload.completed",
            "upload",
            upload.id,
            {"document_id": str(document.id)},
        )
        return document

    async def _assemble_direct(
        self, settings: Settings, upload: Upload, storage: S3Storage, upload_id_s3: str
    ) -> StagedFile:
        """Check the parts sent to the bucket (all there, each of its size),
        assemble them, and stream the object back for its type and sha256."""
        key = direct_key(upload)
        parts = await storage.direct_parts(key, upload_id_s3)
        missing = sorted(set(range(1, upload.part_count + 1)) - set(parts))
        if missing:
            raise _missing(missing)
        wrong = [
            number
            for number, part in sorted(parts.items())
            if number > upload.part_count or part["Size"] != expected_part_size(upload, number)
        ]
        if wrong:
            raise ChecksumMismatch(f"Parts {wrong[:20]} do not have the size the upload declares")
        await storage.finish_direct(key, upload_id_s3, parts)
        return await document_service.stage_stored(
            settings,
            storage=storage,
            key=key,
            filename=upload.filename,
            claimed_type=upload.content_type,
        )

    def reserved_bytes(self, tenant_id: Any) -> Any:
        """Usage `storage_bytes` share: what open uploads declared, as SQL
        over the tenant `tenant_id`."""
        return UploadRepository.reserved_bytes_of(tenant_id)

    async def abort(
        self, session: AsyncSession, settings: Settings, actor: Actor, upload_id: UUID
    ) -> None:
        repository = UploadRepository(session)
        upload = await repository.get_for_update(upload_id)
        if upload is None:
            raise NotFound("Upload not found")
        await self._remove(session, get_storage(settings), upload)
        await audit_service.record(session, actor, "upload.aborted", "upload", upload.id)

    async def _remove(self, session: AsyncSession, storage: Storage, upload: Upload) -> None:
        for key in await UploadPartRepository(session).delete_of(upload.id):
            delete_after_commit(session, storage, key)
        if isinstance(storage, S3Storage) and upload.status == UploadStatus.PENDING:
            upload_id_s3 = await storage.find_direct(direct_key(upload))
            if upload_id_s3 is not None:
                key = direct_key(upload)

                async def abort() -> None:
                    await storage.abort_direct(key, upload_id_s3)

                after_commit(session, abort)
        await UploadRepository(session).delete(upload)

    async def cleanup_expired(
        self, session: AsyncSession, settings: Settings | None = None, *, limit: int = 500
    ) -> int:
        """Remove uploads past `expires_at` (finished or not) and their parts'
        blobs (after commit). In a tenant's scope, or every tenant's inside
        `system_scope(...)`; call it periodically."""
        storage = get_storage(settings) if settings else active_storage()
        expired = await UploadRepository(session).expired(datetime.now(UTC), limit)
        for upload in expired:
            await self._remove(session, storage, upload)
        return len(expired)

    async def purge_tenants(self, session: AsyncSession, tenant_ids: list[UUID]) -> int:
        storage = active_storage()
        uploads = await UploadRepository(session).of_tenants(tenant_ids)
        for upload in uploads:
            await self._remove(session, storage, upload)
        return len(uploads)


async def _concatenate(storage: Storage, keys: list[str]) -> AsyncIterator[bytes]:
    for key in keys:
        async for chunk in storage.open_range(key):
            yield chunk


async def purge_uploads(session: AsyncSession, cutoff: datetime, tenant_ids: list[UUID]) -> int:
    """Admin purge: expired uploads of every tenant, and all of purged tenants'."""
    removed = await upload_service.cleanup_expired(session)
    if tenant_ids:
        removed += await upload_service.purge_tenants(session, tenant_ids)
    return removed


upload_service = UploadService()
