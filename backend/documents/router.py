"""HTTP routes of documents: upload (single and bulk, streamed), list, get,
change, delete, restore, content download and signed download URLs."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import Field

from backend.auth.deps import ScopedRead, require, scoped_read
from backend.auth.principal import Principal
from backend.documents.intelligence.render import DEFAULT_WIDTH, MAX_WIDTH, MIN_WIDTH
from backend.documents.models import Document, DocumentPage, DocumentStatus, DocumentType
from backend.documents.schemas import (
    BulkAnswer,
    DocumentOut,
    DocumentUpdate,
    PageDetail,
    PageOut,
    SearchRequest,
)
from backend.documents.service import (
    deny_include_deleted,
    document_blob,
    document_service,
)
from backend.documents.uploading import upload_service
from backend.kit.body_limit import STREAMED_BODY
from backend.kit.db import tenant_scope
from backend.kit.deps import AppSettings, DbSession
from backend.kit.errors import NotFound, ValidationFailed
from backend.kit.http import BLOB_RESPONSES, blob_response, etag_matches
from backend.kit.multipart import MultipartReader
from backend.kit.pagination import CursorPage, ListParams, Page, page_json, sort_field
from backend.kit.security.signing import DownloadUrl
from backend.kit.storage import get_storage
from backend.roles.permissions import Permission
from backend.settings import Settings

router = APIRouter(prefix="/documents", tags=["documents"])

SORTABLE = ("created_at", "updated_at", "title", "size")
_FILTERS = {
    "status",
    "case_id",
    "tag",
    "mime_type",
    "created_after",
    "created_before",
    "document_type",
    "language",
    "supplier",
    "q",
}
FORM_OVERHEAD = 5 * 1024 * 1024  # room for the form fields around the file(s)
METADATA_KEY = re.compile(r"^metadata\.([A-Za-z0-9_\-]{1,64})$")
MAX_METADATA_FILTERS = 10
BULK_MAX_FILES = 1000  # the ceiling of BULK_UPLOAD_MAX_FILES


def _upload_body(files_field: str, many: bool) -> dict[str, Any]:
    file_schema: dict[str, Any] = {"type": "string", "format": "binary"}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": [files_field],
                        "properties": {
                            files_field: {
                                "type": "array",
                                "items": file_schema,
                                "maxItems": BULK_MAX_FILES,
                                "description": "at most BULK_UPLOAD_MAX_FILES files",
                            }
                            if many
                            else file_schema,
                            "title": {"type": "string", "maxLength": 500},
                            "description": {"type": "string"},
                            "tags": {"type": "string", "description": "comma-separated"},
                            "case_id": {"type": "string", "format": "uuid"},
                            "metadata": {
                                "type": "string",
                                "description": "a JSON object (at most 16 KiB)",
                            },
                        },
                    }
                }
            },
        }
    }


def _etag_headers(response: Response, document: Document) -> None:
    response.headers["ETag"] = document.etag


@router.post(
    "",
    status_code=201,
    response_model=DocumentOut,
    openapi_extra=_upload_body("file", many=False),
    max_body_size=STREAMED_BODY,
    responses={413: {}, 415: {}},
)
async def create_document(
    request: Request,
    response: Response,
    principal: Annotated[Principal, require(Permission.DOCUMENTS_WRITE)],
    session: DbSession,
    settings: AppSettings,
    allow_duplicate: bool = False,
) -> Document:
    """Upload one file (`multipart/form-data`: `file`, optional `title`,
    `description`, `tags` (comma-separated) and `case_id`), streamed to
    storage. The type comes from the file's bytes; duplicates of a live
    document are refused unless `allow_duplicate=true`."""
    reader = MultipartReader(request, max_body_bytes=settings.max_upload_bytes + FORM_OVERHEAD)
    document = await upload_service.upload_one(
        session, settings, principal, reader.parts(), allow_duplicate=allow_duplicate
    )
    response.headers["Location"] = str(request.url_for("get_document", document_id=document.id))
    _etag_headers(response, document)
    return document


@router.post(
    "/bulk",
    status_code=207,
    response_model=BulkAnswer,
    openapi_extra=_upload_body("files", many=True),
    max_body_size=STREAMED_BODY,
)
async def create_documents_bulk(
    request: Request,
    principal: Annotated[Principal, require(Permission.DOCUMENTS_WRITE)],
    session: DbSession,
    settings: AppSettings,
    allow_duplicate: bool = False,
) -> BulkAnswer:
    """Upload several files (repeated `files` fields; `description`, `tags`
    and `case_id` apply to each). Every file succeeds or fails on its own:
    207 with one result per file."""
    reader = MultipartReader(
        request,
        max_body_bytes=settings.bulk_upload_max_files * settings.max_upload_bytes + FORM_OVERHEAD,
    )
    return await upload_service.upload_many(
        session, settings, principal, reader.parts(), allow_duplicate=allow_duplicate
    )


class DocumentListParams(ListParams):
    sortable: ClassVar[tuple[str, ...]] = SORTABLE

    sort: str = sort_field(SORTABLE)
    status: DocumentStatus | None = None
    case_id: UUID | None = None
    tag: str | None = Field(None, max_length=100)
    mime_type: str | None = Field(None, max_length=100)
    created_after: datetime | None = None
    created_before: datetime | None = None
    document_type: DocumentType | None = None
    language: str | None = Field(None, max_length=20)
    supplier: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Case-insensitive substring of `supplier_name`, or an exact `supplier_vat_id`",
    )
    q: str | None = Field(
        None,
        min_length=1,
        max_length=500,
        description="Full-text search over title, description and extracted text "
        "(web-search syntax). Without `sort`, offset pages are ranked by relevance.",
    )
    include_deleted: bool = False


@router.get("", response_model=Page[DocumentOut] | CursorPage[DocumentOut])
async def list_documents(
    read: Annotated[ScopedRead, scoped_read(Permission.DOCUMENTS_READ)],
    request: Request,
    params: Annotated[DocumentListParams, Query()],
) -> Response:
    """Filters also take `metadata.<key>=<value>` (string equality of the
    user metadata's key; several are ANDed)."""
    if params.include_deleted:
        deny_include_deleted(read.principal.permissions, Permission.DOCUMENTS_DELETE)
    filters = params.model_dump(include=_FILTERS, exclude_none=True)
    result = await document_service.list_documents(
        read.connection,
        params.list_query(),
        rank="sort" not in params.model_fields_set,
        include_deleted=params.include_deleted,
        metadata=_metadata_filter(request),
        **filters,
    )
    return page_json(result)


def _metadata_filter(request: Request) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        match = METADATA_KEY.match(name)
        if match is None:
            if name.startswith("metadata."):
                raise ValidationFailed(
                    "metadata keys are 1-64 letters, digits, _ or -",
                    errors=[{"loc": ["query", name], "msg": "invalid key", "type": "value_error"}],
                )
            continue
        if len(value) > 500:
            raise ValidationFailed(
                "metadata values are at most 500 characters",
                errors=[{"loc": ["query", name], "msg": "too long", "type": "string_too_long"}],
            )
        found[match.group(1)] = value
    if len(found) > MAX_METADATA_FILTERS:
        raise ValidationFailed(
            f"At most {MAX_METADATA_FILTERS} metadata filters",
            errors=[{"loc": ["query"], "msg": "too many metadata filters", "type": "value_error"}],
        )
    return found


@router.post(
    "/search",
    response_model=Page[DocumentOut] | CursorPage[DocumentOut],
    responses={422: {}},
)
async def search_documents(
    body: SearchRequest,
    principal: Annotated[Principal, require(Permission.DOCUMENTS_READ)],
    session: DbSession,
) -> Any:
    """Documents matching a filter in the JSON filter language (`and`, `or`,
    `not`, `{"field", "op", "value"}`; see the README), optionally a
    full-text `q` (in each document's language), with the list contract
    (`sort`, `limit`/`cursor` or `page`/`page_size`). Without `sort`, a
    search with `q` is ranked by relevance."""
    result = await document_service.search(session, body)
    return page_json(result)


@router.get("/{document_id}", response_model=DocumentOut)
async def get_document(
    document_id: UUID,
    response: Response,
    principal: Annotated[Principal, require(Permission.DOCUMENTS_READ)],
    session: DbSession,
) -> Document:
    document = await document_service.get(session, document_id)
    _etag_headers(response, document)
    return document


@router.patch("/{document_id}", response_model=DocumentOut, responses={412: {}})
async def update_document(
    document_id: UUID,
    body: DocumentUpdate,
    request: Request,
    response: Response,
    principal: Annotated[Principal, require(Permission.DOCUMENTS_WRITE)],
    session: DbSession,
) -> Document:
    """Change `title`, `description`, `tags` or `case_id`; send the `ETag`
    as `If-Match` to refuse the change (412) if someone changed it meanwhile."""
    document = await document_service.update(
        session, principal, document_id, body, if_match=request.headers.get("if-match")
    )
    _etag_headers(response, document)
    return document


@router.delete("/{document_id}", status_code=204)
async def delete_document(
    document_id: UUID,
    principal: Annotated[Principal, require(Permission.DOCUMENTS_DELETE)],
    session: DbSession,
) -> Response:
    await document_service.delete(session, principal, document_id)
    return Response(status_code=204)


@router.post("/{document_id}/restore", response_model=DocumentOut)
async def restore_document(
    document_id: UUID,
    response: Response,
    principal: Annotated[Principal, require(Permission.DOCUMENTS_DELETE)],
    session: DbSession,
) -> Document:
    document = await document_service.restore(session, principal, document_id)
    _etag_headers(response, document)
    return document


async def _content_response(
    request: Request, settings: Settings, document: Document, disposition: str
) -> Response:
    return blob_response(request, get_storage(settings), document_blob(document), disposition)


@router.get(
    "/{document_id}/content",
    response_class=StreamingResponse,
    responses=BLOB_RESPONSES,
)
async def get_document_content(
    document_id: UUID,
    request: Request,
    principal: Annotated[Principal, require(Permission.DOCUMENTS_READ)],
    session: DbSession,
    settings: AppSettings,
    disposition: Literal["attachment", "inline"] = "attachment",
) -> Response:
    """The file itself: `Range` (206/416), strong `ETag` (the sha256) with
    `If-None-Match` (304), `?disposition=inline` to preview."""
    document = await document_service.get(session, document_id)
    return await _content_response(request, settings, document, disposition)


@router.get("/{document_id}/download-url", response_model=DownloadUrl)
async def get_document_download_url(
    document_id: UUID,
    request: Request,
    principal: Annotated[Principal, require(Permission.DOCUMENTS_READ)],
    session: DbSession,
    settings: AppSettings,
) -> DownloadUrl:
    """A URL that downloads the file without credentials until `expires_at`."""
    document = await document_service.get(session, document_id)
    params, expires_at = document_service.sign_download(settings, document)
    base = str(request.url_for("download_document", document_id=document.id))
    return DownloadUrl(url=f"{base}?{urlencode(params)}", expires_at=expires_at)


@router.get(
    "/{document_id}/download",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The file"}},
)
async def download_document(
    document_id: UUID,
    request: Request,
    session: DbSession,
    settings: AppSettings,
    tenant: Annotated[str, Query(max_length=64)],
    expires: Annotated[str, Query(max_length=20)],
    sig: Annotated[str, Query(max_length=128)],
    disposition: Literal["attachment", "inline"] = "attachment",
) -> Response:
    """A signed link from `download-url` (no credentials): 403 when tampered
    with or expired, 404 once the document is deleted."""
    tenant_id = document_service.verify_download(settings, document_id, tenant, expires, sig)
    with tenant_scope(tenant_id):
        try:
            document = await document_service.get(session, document_id)
        except NotFound:
            raise NotFound("Document not found") from None
        return await _content_response(request, settings, document, disposition)


PageNumber = Annotated[int, Path(ge=1, le=100_000)]


@router.get(
    "/{document_id}/text",
    response_class=PlainTextResponse,
    responses={
        200: {"content": {"text/plain": {}}, "description": "The text"},
        404: {},
        409: {"description": "`not_processed`: extraction has not succeeded yet"},
    },
)
async def get_document_text(
    document_id: UUID,
    principal: Annotated[Principal, require(Permission.DOCUMENTS_READ)],
    session: DbSession,
    page: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> Response:
    """The extracted text, pages separated by a form feed (`\\f`); `?page=N`
    for one page (404 past the last)."""
    body = await document_service.text_of(session, document_id, page)
    return PlainTextResponse(body, media_type="text/plain; charset=utf-8")


@router.get("/{document_id}/pages", response_model=list[PageOut], responses={409: {}})
async def list_document_pages(
    document_id: UUID,
    principal: Annotated[Principal, require(Permission.DOCUMENTS_READ)],
    session: DbSession,
) -> list[DocumentPage]:
    """Each page: how it was read (`text` layer or `ocr`), its characters,
    OCR confidence, language and size (points for PDF pages, pixels for images)."""
    return await document_service.list_pages(session, document_id)


@router.get(
    "/{document_id}/pages/{number}", response_model=PageDetail, responses={404: {}, 409: {}}
)
async def get_document_page(
    document_id: UUID,
    number: PageNumber,
    principal: Annotated[Principal, require(Permission.DOCUMENTS_READ)],
    session: DbSession,
) -> DocumentPage:
    return await document_service.get_page(session, document_id, number)


@router.get(
    "/{document_id}/pages/{number}/image",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "The page as PNG"},
        304: {"description": "Not modified (`If-None-Match`)"},
        404: {},
        415: {"description": "Not a PDF or image document"},
    },
)
async def get_document_page_image(
    document_id: UUID,
    number: PageNumber,
    request: Request,
    principal: Annotated[Principal, require(Permission.DOCUMENTS_READ)],
    session: DbSession,
    settings: AppSettings,
    width: Annotated[int, Query(ge=MIN_WIDTH, le=MAX_WIDTH)] = DEFAULT_WIDTH,
) -> Response:
    """A PNG preview of one page of a PDF or image document, `width` pixels
    wide (64-2000), with a strong `ETag`; rendered off the event loop."""
    document = await document_service.get(session, document_id)
    etag = document_service.page_image_etag(document, number, width)
    headers = {"ETag": etag, "Cache-Control": "private, max-age=3600"}
    if etag_matches(request.headers.get("if-none-match"), etag) and (
        document.mime_type in ("application/pdf", "image/png", "image/jpeg", "image/tiff")
    ):
        return Response(status_code=304, headers=headers)
    image, etag = await document_service.page_image(session, settings, document_id, number, width)
    return Response(image, media_type="image/png", headers=headers)
