"""Real-time events: `WS /events`, `GET /events` (Server-Sent Events with
`Last-Event-ID` resume) and `WS /jobs/{id}/stream`.

WebSockets take the credential (bearer token or API key) as a `token` query
parameter, an `Authorization` header, or in `Sec-WebSocket-Protocol`
(`bearer, <token>` or the token alone); a bad one closes the socket with
1008. A principal receives only the events it may read.

Both WebSockets count against the principal's connection cap and the
handshake rate limit of `backend.events.limits`; SSE streams count against
the same cap.

An open socket's or stream's credential is checked again at every
keep-alive ping (`WS_PING_INTERVAL_SECONDS`): once it is no longer good
(token expired or revoked, session ended, user deactivated, key revoked,
tenant suspended) the socket closes with 1008 and the stream ends, and
changed permissions apply to what they receive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from redis.exceptions import RedisError
from starlette.requests import HTTPConnection

from backend.auth.authenticate import authenticate_credential
from backend.auth.deps import CurrentPrincipal
from backend.auth.principal import Principal
from backend.events.catalogue import catalogue
from backend.events.hub import get_hub
from backend.events.limits import TRY_AGAIN_LATER, connection_cap, handshake_allowed
from backend.jobs.service import job_service
from backend.kit.db import tenant_scope
from backend.kit.errors import DossierError, RateLimited
from backend.kit.event_bus import event_bus
from backend.kit.event_hub import Subscription
from backend.kit.security.tokens import API_KEY_PREFIX

logger = logging.getLogger("dossier.events")

router = APIRouter(tags=["events"])
# WebSockets are mounted outside the rate-limited `/api/v1` router (its
# dependencies are HTTP-only); they authenticate themselves.
ws_router = APIRouter(prefix="/api/v1", tags=["events"])

TERMINAL = {"job.succeeded", "job.failed", "job.cancelled"}
POLICY_VIOLATION = 1008


class EventFilter:
    def __init__(self, principal: Principal, types: str | None, job_id: UUID | None) -> None:
        self.principal = principal
        self.types = [t.strip() for t in (types or "").split(",") if t.strip()]
        self.job_id = str(job_id) if job_id else None

    def allows(self, event: dict[str, Any]) -> bool:
        event_type = str(event.get("type", ""))
        permission = catalogue.permission_for(event_type)
        if permission is None or not self.principal.has(permission):
            return False
        if self.types and not any(
            event_type == t or (t.endswith(".*") and event_type.startswith(t[:-1]))
            for t in self.types
        ):
            return False
        if self.job_id is not None:
            data = event.get("data") or {}
            return bool(data.get("job_id") == self.job_id)
        return True


def _credential(websocket: HTTPConnection) -> tuple[str | None, str | None]:
    """(token, subprotocol to answer with)."""
    token = websocket.query_params.get("token") or websocket.headers.get("x-api-key")
    if token:
        return token, None
    authorization = websocket.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip(), None
    offered = [
        p.strip()
        for p in websocket.headers.get("sec-websocket-protocol", "").split(",")
        if p.strip()
    ]
    if len(offered) >= 2 and offered[0].lower() == "bearer":
        return offered[1], offered[0]
    if len(offered) == 1:
        return offered[0], offered[0]
    return None, None


async def authenticate_websocket(
    websocket: HTTPConnection,
) -> tuple[Principal | None, str | None]:
    """The caller of a WebSocket (or, checked again, of an event stream)."""
    token, subprotocol = _credential(websocket)
    if not token:
        return None, subprotocol
    is_key = token.startswith(API_KEY_PREFIX)
    bearer, api_key = (None, token) if is_key else (token, None)
    try:
        return await authenticate_credential(websocket.app.state, bearer, api_key), subprotocol
    except DossierError:
        return None, subprotocol


async def _refuse(
    websocket: WebSocket, subprotocol: str | None, reason: str, code: int = POLICY_VIOLATION
) -> None:
    await websocket.accept(subprotocol=subprotocol)
    await websocket.close(code=code, reason=reason)


async def _receive_loop(websocket: WebSocket) -> None:
    """Answer client pings; return when the client goes away."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        raw = message.get("text") or ""
        with contextlib.suppress(ValueError, AttributeError):
            if raw == "ping" or json.loads(raw).get("type") == "ping":
                await websocket.send_text(json.dumps({"type": "pong"}))


async def _pump(
    websocket: WebSocket,
    subscription: Subscription,
    event_filter: EventFilter,
    ping_interval: float,
    stop_after_terminal: bool = False,
) -> None:
    while True:
        try:
            event = await asyncio.wait_for(subscription.get(), ping_interval)
        except TimeoutError:
            principal, _ = await authenticate_websocket(websocket)
            if principal is None or principal.tenant_id != event_filter.principal.tenant_id:
                await websocket.close(code=POLICY_VIOLATION, reason="credentials no longer valid")
                return
            event_filter.principal = principal
            await websocket.send_text(json.dumps({"type": "ping"}))
            continue
        if event_filter.allows(event):
            await websocket.send_text(json.dumps(event))
            if stop_after_terminal and event.get("type") in TERMINAL:
                return


async def _serve(websocket: WebSocket, subscription: Subscription, sender: Any) -> None:
    receiver = asyncio.create_task(_receive_loop(websocket))
    sending = asyncio.create_task(sender)
    try:
        done, _ = await asyncio.wait({receiver, sending}, return_when=asyncio.FIRST_COMPLETED)
        if sending in done and receiver not in done:
            with contextlib.suppress(Exception):
                sending.result()
            with contextlib.suppress(Exception):
                await websocket.close(code=1000)
    finally:
        subscription.close()
        for task in (receiver, sending):
            task.cancel()
        await asyncio.gather(receiver, sending, return_exceptions=True)


async def _admit(
    websocket: WebSocket, held: contextlib.AsyncExitStack, permission: str | None = None
) -> tuple[Principal, str | None] | None:
    """The caller of a new socket and the subprotocol to answer with, its
    slot under the principal's connection cap held until `held` closes. None
    when refused, the socket closed already: too many handshakes from its
    address or open sockets of its principal (1013), bad credentials or a
    missing `permission` (1008)."""
    if not await handshake_allowed(websocket):
        await _refuse(websocket, None, "too many connection attempts", TRY_AGAIN_LATER)
        return None
    principal, subprotocol = await authenticate_websocket(websocket)
    if principal is None:
        await _refuse(websocket, subprotocol, "invalid credentials")
        return None
    if permission is not None and not principal.has(permission):
        await _refuse(websocket, subprotocol, f"permission denied: {permission}")
        return None
    if not await held.enter_async_context(connection_cap(websocket.app).hold(principal.id)):
        await _refuse(websocket, subprotocol, "too many open sockets", TRY_AGAIN_LATER)
        return None
    return principal, subprotocol


@ws_router.websocket("/events")
async def events_websocket(
    websocket: WebSocket,
    types: Annotated[str | None, Query(max_length=1000)] = None,
    job_id: UUID | None = None,
) -> None:
    async with contextlib.AsyncExitStack() as held:
        admitted = await _admit(websocket, held)
        if admitted is None:
            return
        principal, subprotocol = admitted
        await websocket.accept(subprotocol=subprotocol)
        subscription = await get_hub(websocket.app).subscribe(principal.tenant_id)
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await _serve(
                websocket,
                subscription,
                _pump(
                    websocket,
                    subscription,
                    EventFilter(principal, types, job_id),
                    websocket.app.state.settings.ws_ping_interval_seconds,
                ),
            )


@ws_router.websocket("/jobs/{job_id}/stream")
async def job_stream_websocket(websocket: WebSocket, job_id: UUID) -> None:
    async with contextlib.AsyncExitStack() as held:
        admitted = await _admit(websocket, held, "jobs:read")
        if admitted is None:
            return
        principal, subprotocol = admitted
        await _stream_job(websocket, principal, subprotocol, job_id)


async def _stream_job(
    websocket: WebSocket, principal: Principal, subprotocol: str | None, job_id: UUID
) -> None:
    """The job's state, then its events until it ends."""
    app = websocket.app
    subscription = await get_hub(app).subscribe(principal.tenant_id)
    try:
        with tenant_scope(principal.tenant_id):
            async with app.state.db.transaction() as session:
                job = await job_service.get_job(session, job_id)
    except DossierError:
        subscription.close()
        await _refuse(websocket, subprotocol, "job not found")
        return
    await websocket.accept(subprotocol=subprotocol)
    await websocket.send_text(
        json.dumps({"type": "job.state", "data": job.model_dump(mode="json")})
    )
    if job.status in ("succeeded", "failed", "cancelled"):
        subscription.close()
        await websocket.close(code=1000)
        return
    event_filter = EventFilter(principal, "job.*", job_id)
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await _serve(
            websocket,
            subscription,
            _pump(
                websocket,
                subscription,
                event_filter,
                app.state.settings.ws_ping_interval_seconds,
                True,
            ),
        )


def _sse(event: dict[str, Any]) -> str:
    return f"id: {event['id']}\nevent: {event['type']}\ndata: {json.dumps(event)}\n\n"


@router.get(
    "/events",
    summary="The tenant's events as Server-Sent Events",
    description="`Accept: text/event-stream`. Optional `types` (comma-separated, `job.*` "
    "allowed) and `job_id` filters. With `Last-Event-ID`, recent events after that one are "
    "sent first. The stream counts against the caller's open event streams "
    "(`WS_MAX_CONNECTIONS_PER_PRINCIPAL`, WebSockets included): past it the answer is 429 "
    "`rate_limited`; a stream that loses the last slot to another opened at the same "
    "moment sends one `error` event and ends.",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, 429: {}},
)
async def stream_events(
    request: Request,
    principal: CurrentPrincipal,
    types: Annotated[str | None, Query(max_length=1000)] = None,
    job_id: UUID | None = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=100)] = None,
) -> StreamingResponse:
    app = request.app
    cap = connection_cap(app)
    ping_interval = app.state.settings.ws_ping_interval_seconds
    if not await cap.has_room(principal.id):
        raise RateLimited(
            retry_after=max(1, round(ping_interval)),
            detail="Too many open event streams: close one first",
        )
    event_filter = EventFilter(principal, types, job_id)

    async def stream() -> AsyncIterator[str]:
        """Everything held (the slot, the subscription) is taken here, so a
        response that never starts holds nothing."""
        async with cap.hold(principal.id) as admitted:
            if not admitted:
                yield 'event: error\ndata: {"detail": "Too many open event streams"}\n\n'
                return
            subscription = await get_hub(app).subscribe(principal.tenant_id)
            try:
                yield ": connected\n\n"
                sent: set[str] = set()
                for event in await _backlog(principal.tenant_id, last_event_id):
                    sent.add(str(event.get("id")))
                    if event_filter.allows(event):
                        yield _sse(event)
                while True:
                    try:
                        event = await asyncio.wait_for(subscription.get(), ping_interval)
                    except TimeoutError:
                        current, _ = await authenticate_websocket(request)
                        if current is None or current.tenant_id != principal.tenant_id:
                            return  # the credential is no longer good: end the stream
                        event_filter.principal = current
                        yield ": ping\n\n"
                        continue
                    if str(event.get("id")) in sent:
                        continue
                    if event_filter.allows(event):
                        yield _sse(event)
            finally:
                subscription.close()

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _backlog(tenant_id: UUID, last_event_id: str | None) -> list[dict[str, Any]]:
    """Recent events after `last_event_id`, for a stream that resumes; none
    while Redis cannot answer."""
    bus = event_bus()
    if not last_event_id or bus is None:
        return []
    try:
        return await bus.recent(tenant_id, last_event_id)
    except (RedisError, OSError):
        logger.warning("event backlog unavailable: Redis down")
        return []
