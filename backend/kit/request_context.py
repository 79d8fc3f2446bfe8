"""Per-request context that logs, errors, jobs and webhooks carry along."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar, Token
from dataclasses import dataclass, field

_request_id: ContextVar[str | None] = ContextVar("dossier_request_id", default=None)
_client: ContextVar[ClientInfo | None] = ContextVar("dossier_client", default=None)

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(slots=True)
class ClientInfo:
    ip: str | None = None
    user_agent: str | None = None
    log_fields: dict[str, str] = field(default_factory=dict)


def current_request_id() -> str | None:
    return _request_id.get()


def current_client() -> ClientInfo:
    return _client.get() or ClientInfo()


def accept_request_id(candidate: str | None) -> str:
    """Echo a client's id when it is safe to log and to put in headers."""
    if candidate and _SAFE_REQUEST_ID.match(candidate):
        return candidate
    return uuid.uuid4().hex


RequestTokens = tuple[Token[str | None], Token["ClientInfo | None"]]


def bind_request(request_id: str, client: ClientInfo) -> RequestTokens:
    return _request_id.set(request_id), _client.set(client)


def unbind_request(tokens: RequestTokens) -> None:
    request_token, client_token = tokens
    _request_id.reset(request_token)
    _client.reset(client_token)


def annotate_log(**fields: str) -> None:
    """Add fields (tenant, principal) to this request's access-log line."""
    client = _client.get()
    if client is not None:
        client.log_fields.update(fields)
