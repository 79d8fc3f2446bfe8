"""Limits of WebSocket event streams: handshakes per client IP, connections
per principal.

A handshake is counted per client IP (`RATE_LIMIT_WS_HANDSHAKE`) before the
credential is checked, so nobody can make the server authenticate sockets
without bound; past it the socket is closed with 1013 (try again later).
Each principal (a user or an API key) holds at most
`WS_MAX_CONNECTIONS_PER_PRINCIPAL` open sockets in one API process; the next
one is closed with 1013 too. (Counted per process: with N processes a
principal can hold N times the cap, still bounded.)
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from uuid import UUID

from starlette.requests import HTTPConnection

from backend.kit.ratelimit import client_ip, get_backend

TRY_AGAIN_LATER = 1013


class ConnectionCap:
    """Open sockets per principal in this process."""

    def __init__(self) -> None:
        self._open: Counter[UUID] = Counter()

    @contextlib.contextmanager
    def hold(self, principal_id: UUID, cap: int) -> Iterator[bool]:
        """Yields whether the socket may stay open; it is counted meanwhile."""
        if self._open[principal_id] >= cap:
            yield False
            return
        self._open[principal_id] += 1
        try:
            yield True
        finally:
            self._open[principal_id] -= 1
            if self._open[principal_id] <= 0:
                del self._open[principal_id]


connection_cap = ConnectionCap()


async def handshake_allowed(connection: HTTPConnection) -> bool:
    settings = connection.app.state.settings
    wait_ms = await get_backend(connection).hit(
        "ws-ip", client_ip(connection), settings.rate_limit_ws_handshake
    )
    return wait_ms == 0
