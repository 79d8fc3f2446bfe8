"""A pull-based streaming `multipart/form-data` reader.

`MultipartReader(request)` yields the parts of the body in order; a file
part's bytes are pulled from the network as the consumer reads them
(`part.stream()`), so a file of any size passes through in chunks and memory
stays flat. Text fields are read whole but capped in size. Anything the
parser cannot make sense of is a 400 `malformed_request`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from backend.kit.errors import (
    MalformedRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
    nul_error,
)

_BEGIN, _DATA, _END, _DONE = "begin", "data", "end", "done"


@dataclass(slots=True)
class Part:
    name: str
    filename: str | None
    content_type: str | None
    _reader: MultipartReader = field(repr=False)
    _consumed: bool = False

    @property
    def is_file(self) -> bool:
        return self.filename is not None

    async def stream(self) -> AsyncIterator[bytes]:
        """The part's bytes, pulled from the request as they are read."""
        if self._consumed:
            return
        self._consumed = True
        while True:
            kind, payload = await self._reader._next_event()
            if kind == _DATA:
                yield payload
            elif kind == _END:
                return
            else:
                raise MalformedRequest("A multipart part is truncated")

    async def read_text(self, limit: int) -> str:
        chunks: list[bytes] = []
        size = 0
        async for chunk in self.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"Form field {self.name!r} is longer than {limit} bytes")
            chunks.append(chunk)
        try:
            value = b"".join(chunks).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedRequest(f"Form field {self.name!r} is not UTF-8") from None
        if "\x00" in value:
            raise nul_error(["body", self.name])
        return value

    async def skip(self) -> None:
        async for _ in self.stream():
            pass


def _content_disposition(value: str) -> tuple[str, dict[str, str]]:
    message = Message()
    message["content-disposition"] = value
    params = dict(message.get_params(header="content-disposition", failobj=[]) or [])
    disposition = message.get_content_disposition() or ""
    cleaned = {k.lower(): (v if isinstance(v, str) else str(v)) for k, v in params.items()}
    filename = message.get_filename()
    if filename is not None:
        cleaned["filename"] = filename
    return disposition, cleaned


class MultipartReader:
    def __init__(self, request: Request, *, max_body_bytes: int) -> None:
        content_type = request.headers.get("content-type", "")
        media, options = parse_options_header(content_type)
        if media != b"multipart/form-data":
            raise UnsupportedMediaType("The body must be multipart/form-data")
        boundary = options.get(b"boundary")
        if not boundary:
            raise MalformedRequest("The multipart body has no boundary")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            raise PayloadTooLarge(f"The request body is larger than {max_body_bytes} bytes")
        self.max_body_bytes = max_body_bytes
        self.received = 0
        self._body = request.stream()
        self._events: deque[tuple[str, Any]] = deque()
        self._headers: list[tuple[str, str]] = []
        self._field = b""
        self._value = b""
        self._finished = False
        callbacks: Any = {
            "on_part_begin": self._on_part_begin,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_end": self._on_end,
        }
        self._parser = MultipartParser(boundary, callbacks, max_header_count=16)

    # Parser callbacks: they only queue events.
    def _on_part_begin(self) -> None:
        self._headers = []

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers.append(
            (self._field.decode("latin-1").lower(), self._value.decode("utf-8", "replace"))
        )
        self._field, self._value = b"", b""

    def _on_headers_finished(self) -> None:
        self._events.append((_BEGIN, dict(self._headers)))

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if end > start:
            self._events.append((_DATA, bytes(data[start:end])))

    def _on_part_end(self) -> None:
        self._events.append((_END, None))

    def _on_end(self) -> None:
        self._events.append((_DONE, None))

    async def _next_event(self) -> tuple[str, Any]:
        while not self._events:
            if self._finished:
                raise MalformedRequest("The multipart body ended early")
            try:
                chunk = await self._body.__anext__()
            except StopAsyncIteration:
                self._finished = True
                try:
                    self._parser.finalize()
                except MultipartParseError:
                    raise MalformedRequest("The multipart body is malformed") from None
                continue
            except ClientDisconnect:
                raise MalformedRequest("The client disconnected mid-body") from None
            self.received += len(chunk)
            if self.received > self.max_body_bytes:
                raise PayloadTooLarge(
                    f"The request body is larger than {self.max_body_bytes} bytes"
                )
            try:
                self._parser.write(chunk)
            except MultipartParseError:
                raise MalformedRequest("The multipart body is malformed") from None
        return self._events.popleft()

    async def parts(self) -> AsyncIterator[Part]:
        previous: Part | None = None
        while True:
            if previous is not None and not previous._consumed:
                await previous.skip()
            kind, payload = await self._next_event()
            if kind == _DONE:
                return
            if kind != _BEGIN:
                raise MalformedRequest("The multipart body is malformed")
            disposition, params = _content_disposition(payload.get("content-disposition", ""))
            if disposition != "form-data" or not params.get("name"):
                raise MalformedRequest("A multipart part lacks a form-data name")
            previous = Part(
                name=params["name"],
                filename=params.get("filename"),
                content_type=payload.get("content-type"),
                _reader=self,
            )
            yield previous
