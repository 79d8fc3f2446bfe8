"""Business rules of documents: streaming an upload into storage with its
checks (size, type, emptiness, quota, duplicates), reading, changing,
deleting, restoring, purging and signing download URLs.

An upload is two steps so that a direct upload and a completed resumable
upload share one path: `stage_file` streams the bytes to a staged blob while
hashing and type-checking them; `create_document` validates the metadata,
applies the duplicate and quota rules, writes the row and arranges for the
blob to become visible when the transaction commits (and to vanish if it
rolls back).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit.service import Actor, audit_service
from backend.documents.content import InspectedStream, sanitise_filename
from backend.documents.models import Document
from backend.documents.repository import DocumentRepository
from backend.documents.schemas import DocumentMetadata, DocumentUpdate
from backend.jobs.service import job_service
from backend.kit.db import current_tenant_id
from backend.kit.errors import (
    DossierError,
    PayloadTooLarge,
    PermissionDenied,
    ValidationFailed,
)
from backend.kit.events import emit
from backend.kit.http import Blob, check_if_match
from backend.kit.models import uuid7
from backend.kit.pagination import ListQuery, PageResult
from backend.kit.references import is_live
from backend.kit.storage import (
    StagedObject,
    Storage,
    commit_after_commit,
    get_storage,
    key_for,
)
from backend.kit.storage import discard_now as discard_staged
from backend.settings import Settings
from backend.tenants.service import tenant_service

TEXT_EXTRACTION = "document.extract_text"
# MIME type -> the job queued for a new document of that type, for types
# that a plugin processes otherwise than by text extraction.
_processing_jobs: dict[str, str] = {}


def register_processing_job(mime_types: Iterable[str], job_type: str) -> None:
    for mime_type in mime_types:
        _processing_jobs[mime_type] = job_type


class DuplicateDocument(DossierError):
    status, code = 409, "duplicate_document"


class QuotaExceeded(DossierError):
    status, code = 413, "quota_exceeded"


class LinkInvalid(DossierError):
    status, code = 403, "permission_denied"


@dataclass(slots=True)
class StagedFile:
    """An uploaded file in storage but not yet visible, with what was learnt
    while it streamed."""

    document_id: UUID
    staged: StagedObject
    storage: Storage
    filename: str
    mime_type: str
    size: int
    sha256: str


def _field_error(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        message, errors=[{"loc": ["body", field], "msg": message, "type": "value_error"}]
    )


def document_key(tenant_id: UUID, document_id: UUID) -> str:
    return key_for("tenants", tenant_id, "documents", document_id)


def document_blob(document: Document) -> Blob:
    return Blob(
        storage_key=document.storage_key,
        size=document.size,
        sha256=document.sha256,
        content_type=document.mime_type,
        filename=document.filename,
    )


def document_event(document: Document) -> dict[str, Any]:
    return {
        "id": str(document.id),
        "title": document.title,
        "filename": document.filename,
        "mime_type": document.mime_type,
        "size": document.size,
        "status": document.status,
        "case_id": str(document.case_id) if document.case_id else None,
    }


class DocumentService:
    # ------------------------------------------------------------------ upload
    async def check_quota(
        self, session: AsyncSession, settings: Settings, tenant_id: UUID, incoming: int
    ) -> None:
        """413 `quota_exceeded` when `incoming` more bytes would pass the plan's storage."""
        limits = await tenant_service.limits_for(session, tenant_id, settings)
        used = await DocumentRepository(session).storage_bytes(tenant_id)
        if used + incoming > limits.storage_bytes:
            raise QuotaExceeded(
                "This upload would exceed the tenant's storage quota",
                storage_bytes=limits.storage_bytes,
                used_bytes=used,
            )

    async def stage_file(
        self,
        session: AsyncSession,
        settings: Settings,
        *,
        source: AsyncIterable[bytes],
        filename: str | None,
        claimed_type: str | None,
        declared_size: int | None = None,
    ) -> StagedFile:
        """Stream `source` into a staged blob while hashing, measuring and
        type-checking it; refuse early when the declared size already breaks
        the size limit or the quota."""
        tenant_id = _tenant()
        if declared_size is not None and declared_size > settings.max_upload_bytes:
            raise PayloadTooLarge(f"The file is larger than {settings.max_upload_bytes} bytes")
        if declared_size is not None:
            await self.check_quota(session, settings, tenant_id, declared_size)
        document_id = uuid7()
        storage = get_storage(settings)
        inspected = InspectedStream(
            source,
            max_bytes=settings.max_upload_bytes,
            allowed_types=settings.upload_allowed_types,
            claimed_type=claimed_type,
        )
        staged = await storage.put_stream(
            document_key(tenant_id, document_id), inspected, content_type=None
        )
        assert inspected.mime_type is not None
        staged.content_type = inspected.mime_type
        return StagedFile(
            document_id=document_id,
            staged=staged,
            storage=storage,
            filename=sanitise_filename(filename),
            mime_type=inspected.mime_type,
            size=inspected.size,
            sha256=staged.sha256,
        )

    async def discard(self, session: AsyncSession, file: StagedFile) -> None:
        await discard_staged(session, file.storage, file.staged)

    async def create_document(
        self,
        session: AsyncSession,
        settings: Settings,
        actor: Actor,
        file: StagedFile,
        metadata: DocumentMetadata,
        *,
        allow_duplicate: bool = False,
    ) -> Document:
        """The row for a staged file; the staged blob is discarded if any rule refuses it."""
        try:
            return await self._create(session, settings, actor, file, metadata, allow_duplicate)
        except BaseException:
            await self.discard(session, file)
            raise

    async def _create(
        self,
        session: AsyncSession,
        settings: Settings,
        actor: Actor,
        file: StagedFile,
        metadata: DocumentMetadata,
        allow_duplicate: bool,
    ) -> Document:
        tenant_id = _tenant()
        repository = DocumentRepository(session)
        if metadata.case_id is not None:
            await _ensure_live_case(session, metadata.case_id, "case_id")
        await repository.lock_tenant_storage(tenant_id)
        existing = await repository.live_with_sha256(file.sha256)
        if existing is not None and not allow_duplicate:
            raise DuplicateDocument(
                "A document with the same content already exists", existing_id=str(existing.id)
            )
        await self.check_quota(session, settings, tenant_id, file.size)
        document = Document(
            id=file.document_id,
            tenant_id=tenant_id,
            title=metadata.title or file.filename,
            description=metadata.description,
            filename=file.filename,
            mime_type=file.mime_type,
            size=file.size,
            sha256=file.sha256,
            is_duplicate=existing is not None,
            storage_key=file.staged.key,
            tags=metadata.tags,
            case_id=metadata.case_id,
            created_by=actor.id,
        )
        try:
            async with session.begin_nested():
                await repository.add(document)
        except IntegrityError:
            # A concurrent upload of the same content committed first.
            existing = await repository.live_with_sha256(file.sha256)
            raise DuplicateDocument(
                "A document with the same content already exists",
                existing_id=str(existing.id) if existing else None,
            ) from None
        commit_after_commit(session, file.storage, file.staged)
        await audit_service.record(
            session,
            actor,
            "document.created",
            "document",
            document.id,
            {
                "filename": document.filename,
                "size": document.size,
                "sha256": document.sha256,
                "mime_type": document.mime_type,
                "case_id": str(document.case_id) if document.case_id else None,
            },
        )
        emit(session, "document.created", document_event(document))
        await self._after_document_created(session, settings, actor, document)
        return document

    async def _after_document_created(
        self, session: AsyncSession, settings: Settings, actor: Actor, document: Document
    ) -> None:
        """Runs in the creating transaction after every new document, whether
        uploaded directly, in bulk or through a resumable upload: queues the
        job that processes its type (text extraction unless a plugin chose
        another job for the type, or the tenant turned extraction off)."""
        job_type = _processing_jobs.get(document.mime_type, TEXT_EXTRACTION)
        if job_type == TEXT_EXTRACTION:
            tenant = await tenant_service.get_tenant(session, document.tenant_id)
            if tenant.settings.get("auto_extract_text", True) is False:
                return
        await job_service.enqueue(
            session,
            job_type,
            {},
            document_id=document.id,
            max_attempts=settings.job_default_max_attempts,
            created_by=actor.id,
        )

    # -------------------------------------------------------------------- read
    async def get(
        self, session: AsyncSession, document_id: UUID, *, include_deleted: bool = False
    ) -> Document:
        return await DocumentRepository(session).get_or_raise(
            document_id, include_deleted=include_deleted
        )

    async def list_documents(
        self,
        session: AsyncSession,
        query: ListQuery,
        *,
        rank: bool = False,
        **filters: Any,
    ) -> PageResult[Any]:
        """A page of `LISTED` columns as mappings. A hot read: plain rows, the
        statement compiled once per combination of filters and page shape by
        SQLAlchemy's cache. `rank`: offset pages searching `q` are ordered by
        relevance."""
        repository = DocumentRepository(session)
        stmt = repository.listed_rows(_tenant(), **filters)
        q = filters.get("q")
        if rank and q is not None and not query.keyset:
            return await repository.paginate_ranked(stmt, q, query)
        return await repository.paginate_rows(stmt, query)

    # ------------------------------------------------------------------ change
    async def update(
        self,
        session: AsyncSession,
        actor: Actor,
        document_id: UUID,
        changes: DocumentUpdate,
        *,
        if_match: str | None,
    ) -> Document:
        repository = DocumentRepository(session)
        document = await repository.get_or_raise(document_id)
        check_if_match(if_match, document.version)
        values = changes.model_dump(exclude_unset=True)
        for field in ("title", "tags"):
            if field in values and values[field] is None:
                raise _field_error(field, f"{field} cannot be null")
        if values.get("case_id") is not None:
            await _ensure_live_case(session, values["case_id"], "case_id")
        applied = await repository.update(document, values)
        if applied:
            await audit_service.record(
                session, actor, "document.updated", "document", document.id, applied
            )
            emit(
                session,
                "document.updated",
                {**document_event(document), "changes": sorted(applied)},
            )
        return document

    async def move_to_case(
        self, session: AsyncSession, actor: Actor, document_id: UUID, case_id: UUID | None
    ) -> Document:
        """Attach (`case_id`) or detach (None) a live document; audited as an update."""
        repository = DocumentRepository(session)
        document = await repository.get_or_raise(document_id)
        applied = await repository.update(document, {"case_id": case_id})
        if applied:
            await audit_service.record(
                session, actor, "document.updated", "document", document.id, applied
            )
            emit(
                session,
                "document.updated",
                {**document_event(document), "changes": ["case_id"]},
            )
        return document

    async def delete(self, session: AsyncSession, actor: Actor, document_id: UUID) -> None:
        repository = DocumentRepository(session)
        document = await repository.get_or_raise(document_id)
        await repository.soft_delete(document, by=actor.id)
        await audit_service.record(session, actor, "document.deleted", "document", document.id)
        emit(session, "document.deleted", document_event(document))

    async def restore(self, session: AsyncSession, actor: Actor, document_id: UUID) -> Document:
        repository = DocumentRepository(session)
        document = await repository.get_or_raise(document_id, include_deleted=True)
        if document.deleted_at is None:
            return document
        if not document.is_duplicate:
            existing = await repository.live_with_sha256(document.sha256)
            if existing is not None:
                raise DuplicateDocument(
                    "A live document with the same content exists",
                    existing_id=str(existing.id),
                )
        await repository.restore(document)
        await audit_service.record(session, actor, "document.restored", "document", document.id)
        emit(session, "document.updated", {**document_event(document), "changes": ["deleted_at"]})
        return document

    async def announce_change(
        self, session: AsyncSession, document_id: UUID, changes: list[str]
    ) -> None:
        """`document.updated` in its one shape: the document's fields and the
        names of those that changed (for changes made outside `update`)."""
        document = await DocumentRepository(session).get(document_id)
        if document is not None:
            data = {**document_event(document), "changes": sorted(changes)}
            emit(session, "document.updated", data)

    async def is_live(self, session: AsyncSession, document_id: UUID) -> bool:
        return await DocumentRepository(session).get(document_id) is not None

    def storage_usage(self, tenant_id: Any) -> Any:
        """Bytes the tenant whose id is the expression `tenant_id` holds in
        documents, as a scalar subquery (a `UsageQuery`)."""
        return DocumentRepository.storage_bytes_of(tenant_id)

    async def ids_in_case(self, session: AsyncSession, case_id: UUID) -> list[UUID]:
        return await DocumentRepository(session).in_case(case_id)

    # --------------------------------------------------------- signed download
    def sign_download(
        self, settings: Settings, document: Document, now: float | None = None
    ) -> tuple[dict[str, str], datetime]:
        expires = int((now or time.time()) + settings.download_url_ttl_seconds)
        signature = _signature(settings, document.id, document.tenant_id, expires)
        params = {"tenant": str(document.tenant_id), "expires": str(expires), "sig": signature}
        return params, datetime.fromtimestamp(expires, UTC)

    def verify_download(
        self, settings: Settings, document_id: UUID, tenant: str, expires: str, sig: str
    ) -> UUID:
        """The tenant a valid signed link is for; 403 when tampered or expired."""
        try:
            tenant_id = UUID(tenant)
            expires_at = int(expires)
        except ValueError:
            raise LinkInvalid("The download link is invalid") from None
        expected = _signature(settings, document_id, tenant_id, expires_at)
        if not hmac.compare_digest(expected.encode(), sig.encode()):
            raise LinkInvalid("The download link is invalid")
        if expires_at < time.time():
            raise LinkInvalid("The download link has expired")
        return tenant_id


def _signature(settings: Settings, document_id: UUID, tenant_id: UUID, expires: int) -> str:
    key = hashlib.sha256(
        b"dossier.download.v1:" + settings.signing_secret.get_secret_value().encode()
    ).digest()
    message = f"{document_id}:{tenant_id}:{expires}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _tenant() -> UUID:
    tenant_id = current_tenant_id()
    if tenant_id is None:
        raise RuntimeError("documents belong to a tenant")
    return tenant_id


async def _ensure_live_case(session: AsyncSession, case_id: UUID, field: str) -> None:
    if not await is_live(session, "case", case_id):
        raise _field_error(field, "No such case in this tenant")


def deny_include_deleted(permissions: frozenset[str], permission: str) -> None:
    if permission not in permissions:
        raise PermissionDenied(f"include_deleted needs {permission}")


document_service = DocumentService()
