"""HTTP shapes of stored files and mutable resources: `Range`, conditional
requests (`If-None-Match`, `If-Match`), `Content-Disposition`, and the one
streamed answer for a blob that documents, job artifacts and workloads' files
share."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from backend.kit.errors import DossierError, PreconditionFailed
from backend.kit.storage import Storage

TEXT = "text/plain"

_RANGE_SPEC = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


class RangeNotSatisfiable(DossierError):
    status, code = 416, "range_not_satisfiable"


# The answers of a route serving a blob (`blob_response`), for OpenAPI.
BLOB_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {}}, "description": "The file"},
    206: {"description": "The requested byte range"},
    304: {"description": "Not modified (`If-None-Match`)"},
    416: {"description": "Range not satisfiable"},
}


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one inclusive byte range to serve, or None for the whole body.

    Several ranges are answered with the whole body (multi-range is optional);
    a header that does not parse, or a range outside the body, is a 416.
    """
    if header is None:
        return None
    unsatisfiable = RangeNotSatisfiable(
        "The requested range cannot be served", headers={"Content-Range": f"bytes */{size}"}
    )
    unit, sep, specs = header.partition("=")
    if not sep or unit.strip().lower() != "bytes" or len(header) > 1024:
        raise unsatisfiable
    ranges: list[tuple[int, int]] = []
    for spec in specs.split(","):
        match = _RANGE_SPEC.match(spec)
        if not match or (not match.group(1) and not match.group(2)):
            raise unsatisfiable
        first, last = match.group(1), match.group(2)
        if first:
            start = int(first)
            end = int(last) if last else size - 1
            if end < start:
                raise unsatisfiable
            if start >= size:
                continue
            ranges.append((start, min(end, size - 1)))
        else:
            suffix = int(last)
            if suffix == 0 or size == 0:
                continue
            ranges.append((max(0, size - suffix), size - 1))
    if not ranges:
        raise unsatisfiable
    if len(ranges) > 1:
        return None
    return ranges[0]


def etag_matches(header: str | None, etag: str) -> bool:
    if header is None:
        return False
    candidates = [item.strip().removeprefix("W/") for item in header.split(",")]
    return "*" in candidates or etag in candidates


def content_disposition(filename: str, disposition: str) -> str:
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in filename)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def parse_if_match(header: str | None) -> list[str] | None:
    """The versions an `If-Match` header accepts (`*`: any); None without one."""
    if header is None:
        return None
    values = []
    for item in header.split(","):
        item = item.strip()
        if item == "*":
            return ["*"]
        item = item.removeprefix("W/").strip('"')
        values.append(item)
    return values


def check_if_match(header: str | None, version: int) -> None:
    """412 when `If-Match` names versions and `version` is not one of them."""
    accepted = parse_if_match(header)
    if accepted is None or "*" in accepted:
        return
    if str(version) not in accepted:
        raise PreconditionFailed("The resource changed since this version was read")


@dataclass(frozen=True, slots=True)
class Blob:
    """A stored file as it is downloaded."""

    storage_key: str
    size: int
    sha256: str
    content_type: str
    filename: str


def blob_response(
    request: Request, storage: Storage, blob: Blob, disposition: str = "attachment"
) -> Response:
    """The file with a strong `ETag` (its sha256) and `If-None-Match` (304),
    one `Range` (206/416), and `Content-Disposition`."""
    etag = f'"{blob.sha256}"'
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Content-Disposition": content_disposition(blob.filename, disposition),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-transform",
    }
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    media_type = f"{TEXT}; charset=utf-8" if blob.content_type == TEXT else blob.content_type
    selected = parse_range(request.headers.get("range"), blob.size)
    if selected is None:
        body = storage.open_range(blob.storage_key)
        headers["Content-Length"] = str(blob.size)
        return StreamingResponse(body, media_type=media_type, headers=headers)
    start, end = selected
    body = storage.open_range(blob.storage_key, start, end)
    headers["Content-Range"] = f"bytes {start}-{end}/{blob.size}"
    headers["Content-Length"] = str(end - start + 1)
    return StreamingResponse(body, status_code=206, media_type=media_type, headers=headers)
