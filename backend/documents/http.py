"""HTTP shapes of document content: `Range`, conditional requests and
`Content-Disposition`."""

from __future__ import annotations

import re
from urllib.parse import quote

from backend.kit.errors import DossierError

_RANGE_SPEC = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


class RangeNotSatisfiable(DossierError):
    status, code = 416, "range_not_satisfiable"


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
