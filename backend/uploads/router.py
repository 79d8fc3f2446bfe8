"""HTTP routes of resumable uploads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Request, Response
from starlette.requests import ClientDisconnect

from backend.auth.deps import require
from backend.auth.principal import Principal
from backend.documents.schemas import DocumentOut
from backend.kit.body_limit import STREAMED_BODY
from backend.kit.deps import AppSettings, DbSession
from backend.kit.errors import MalformedRequest
from backend.roles.permissions import Permission
from backend.uploads.schemas import PartOut, UploadCreate, UploadCreated, UploadOut
from backend.uploads.service import upload_service

router = APIRouter(prefix="/uploads", tags=["uploads"])


@router.post("", status_code=201, response_model=UploadCreated, responses={413: {}})
async def create_upload(
    body: UploadCreate,
    request: Request,
    response: Response,
    principal: Annotated[Principal, require(Permission.DOCUMENTS_WRITE)],
    session: DbSession,
    settings: AppSettings,
) -> UploadCreated:
    """Declare a file to send in parts: answers the part size and count.
    Every part but the last is exactly `part_size` bytes. With the S3
    storage backend, `part_urls` holds a presigned `PUT` URL per part (valid
    until the upload expires, at most `STAGING_MAX_AGE_SECONDS` and 7 days):
    send the parts straight to storage, then `complete` checks them and the
    sha256 of the whole."""
    upload, part_urls = await upload_service.initiate(session, settings, principal, body)
    response.headers["Location"] = str(request.url_for("get_upload", upload_id=upload.id))
    return UploadCreated(
        id=upload.id,
        part_size=upload.part_size,
        part_count=upload.part_count,
        expires_at=upload.expires_at,
        part_urls=part_urls,
    )


@router.get("/{upload_id}", response_model=UploadOut)
async def get_upload(
    upload_id: UUID,
    principal: Annotated[Principal, require(Permission.DOCUMENTS_WRITE)],
    session: DbSession,
    settings: AppSettings,
) -> UploadOut:
    upload, received = await upload_service.get(session, settings, upload_id)
    return UploadOut(
        id=upload.id,
        filename=upload.filename,
        size=upload.size,
        part_size=upload.part_size,
        part_count=upload.part_count,
        received_parts=received,
        status=upload.status,
        expires_at=upload.expires_at,
        document_id=upload.document_id,
    )


async def _body(request: Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect:
        raise MalformedRequest("The client disconnected mid-body") from None


@router.put(
    "/{upload_id}/parts/{number}",
    response_model=PartOut,
    max_body_size=STREAMED_BODY,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def update_upload_part(
    upload_id: UUID,
    number: Annotated[int, Path(ge=1, le=100_000)],
    request: Request,
    principal: Annotated[Principal, require(Permission.DOCUMENTS_WRITE)],
    session: DbSession,
    settings: AppSettings,
) -> PartOut:
    """Send part `number` as the raw body; sending a part again replaces it."""
    part = await upload_service.put_part(
        session, settings, principal, upload_id, number, _body(request)
    )
    return PartOut(number=part.number, size=part.size, sha256=part.sha256)


@router.post("/{upload_id}/complete", status_code=201, response_model=DocumentOut)
async def complete_upload(
    upload_id: UUID,
    request: Request,
    response: Response,
    principal: Annotated[Principal, require(Permission.DOCUMENTS_WRITE)],
    session: DbSession,
    settings: AppSettings,
) -> DocumentOut:
    """Check the parts, size and sha256 (422 `checksum_mismatch`), then
    create the document as a direct upload would (type, duplicate, quota)."""
    document = await upload_service.complete(session, settings, principal, upload_id)
    response.headers["Location"] = str(request.url_for("get_document", document_id=document.id))
    response.headers["ETag"] = document.etag
    return DocumentOut.model_validate(document)


@router.delete("/{upload_id}", status_code=204)
async def delete_upload(
    upload_id: UUID,
    principal: Annotated[Principal, require(Permission.DOCUMENTS_WRITE)],
    session: DbSession,
    settings: AppSettings,
) -> Response:
    """Abort: the upload and its parts are removed."""
    await upload_service.abort(session, settings, principal, upload_id)
    return Response(status_code=204)
