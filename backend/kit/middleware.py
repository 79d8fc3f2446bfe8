"""The outermost request middleware: request id, client address, access log,
metrics, and the last-resort 500.

It is plain ASGI (not `BaseHTTPMiddleware`) so that it adds no task per
request and sees every answer, errors included.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

from fastapi.routing import iter_route_contexts
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.kit.errors import error_response, nul_error, problem_response
from backend.kit.metrics import HTTP_LATENCY, HTTP_REQUESTS
from backend.kit.request_context import (
    ClientInfo,
    accept_request_id,
    bind_request,
    unbind_request,
)

access_log = logging.getLogger("dossier.access")
error_log = logging.getLogger("dossier.errors")

Networks = Sequence[IPv4Network | IPv6Network]


def _is_trusted(address: str, trusted: Networks) -> bool:
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in trusted)


def client_address(peer: str | None, forwarded_for: str | None, trusted: Networks) -> str | None:
    """The client's address: `X-Forwarded-For` is believed only from trusted proxies.

    Walking the list from the right, every hop added by a trusted proxy is
    skipped; the first untrusted address is the client.
    """
    if peer is None or not forwarded_for or not _is_trusted(peer, trusted):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


_WANTED = (b"x-request-id", b"x-forwarded-for", b"user-agent")


def _scan_headers(scope: Scope) -> tuple[dict[bytes, str], int]:
    """The headers this middleware reads (first occurrence each) and the
    total size of all headers, in one pass over them."""
    found: dict[bytes, str] = {}
    size = 0
    for key, value in scope.get("headers", ()):
        size += len(key) + len(value)
        if key in _WANTED and key not in found:
            found[key] = value.decode("latin-1")
    return found, size


def _nul_in_url_or_headers(scope: Scope) -> list[str] | None:
    """Where a NUL character (raw or percent-encoded) stands in the path, the
    query string or a header value, if anywhere: no handler ever sees one."""
    if b"%00" in scope.get("raw_path", b"") or "\x00" in scope.get("path", ""):
        return ["path"]
    if b"%00" in scope.get("query_string", b"") or b"\x00" in scope.get("query_string", b""):
        return ["query"]
    for key, value in scope.get("headers", ()):
        if b"\x00" in value:
            return ["header", key.decode("latin-1")]
    return None


class RouteTemplates:
    """The full path template of a matched route (`/api/v1/jobs/{job_id}`),
    the label of metrics and access logs.

    A route inside an included router keeps only its own path
    (`/{job_id}`); the application's route contexts carry the prefixes. They
    are read once, at the first request, when every router is included."""

    def __init__(self) -> None:
        self._by_route: dict[int, str] | None = None

    def template(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:
            return "unmatched"
        if self._by_route is None:
            routes = getattr(scope.get("app"), "routes", ())
            self._by_route = {
                id(context.original_route): context.path
                for context in iter_route_contexts(routes)
                if context.path
            }
        template = self._by_route.get(id(route))
        return template if template is not None else str(getattr(route, "path", "unmatched"))


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, trusted_proxies: Networks, max_header_bytes: int) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies
        self.max_header_bytes = max_header_bytes
        self.routes = RouteTemplates()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers, header_bytes = _scan_headers(scope)
        request_id = accept_request_id(headers.get(b"x-request-id"))
        peer = scope["client"][0] if scope.get("client") else None
        client = ClientInfo(
            ip=client_address(peer, headers.get(b"x-forwarded-for"), self.trusted_proxies),
            user_agent=(headers.get(b"user-agent") or "")[:512] or None,
        )
        scope.setdefault("state", {})["client"] = client
        tokens = bind_request(request_id, client)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            if header_bytes > self.max_header_bytes:
                await problem_response(431, "headers_too_large", "Request headers are too large")(
                    scope, receive, send_with_request_id
                )
            elif (where := _nul_in_url_or_headers(scope)) is not None:
                await error_response(nul_error(where))(scope, receive, send_with_request_id)
            else:
                await self.app(scope, receive, send_with_request_id)
        except Exception:
            error_log.exception("unhandled error")
            if scope["type"] != "http" or response_started:
                raise
            response = problem_response(500, "internal_error", "An internal error occurred")
            await response(scope, receive, send_with_request_id)
        finally:
            if scope["type"] == "http":
                self._record(scope, status, time.perf_counter() - started, client)
            unbind_request(tokens)

    def _record(self, scope: Scope, status: int, elapsed: float, client: ClientInfo) -> None:
        template = self.routes.template(scope)
        method = scope["method"]
        HTTP_REQUESTS.labels(method, template, str(status)).inc()
        HTTP_LATENCY.labels(method, template).observe(elapsed)
        access_log.info(
            "request",
            extra={
                "method": method,
                "route": template,
                "status": status,
                "latency_ms": round(elapsed * 1000, 2),
                "client_ip": client.ip,
                **client.log_fields,
            },
        )
