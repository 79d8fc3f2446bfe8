"""Request body limits: every body is bounded while it is read.

The default limit (`MAX_JSON_BYTES`) is enforced on the bytes as they arrive,
before anything parses them, so an anonymous client cannot make the server
read and parse 100 MiB of nested arrays: a declared `Content-Length` above it
is refused at the first read, a chunked body as soon as it passes it (413
`payload_too_large`, rendered by the one error handler).

Routes that stream files (direct and bulk uploads, resumable parts) declare
`max_body_size=STREAMED_BODY` on their decorator (FastAPI's own per-route
setting, read here from the matched route) and enforce `MAX_UPLOAD_BYTES` or
the part size themselves while streaming to storage.
"""

from __future__ import annotations

import sys

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The per-route override for routes that stream their body to storage and
# count it themselves.
STREAMED_BODY = sys.maxsize


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {limit} bytes")


def _declared_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            # The route is matched before its body is read: its own limit wins.
            route_limit = getattr(scope.get("route"), "max_body_size", None)
            limit = route_limit if route_limit is not None else self.max_bytes
            declared = _declared_length(scope) if received == 0 else None
            if declared is not None and declared > limit:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)
