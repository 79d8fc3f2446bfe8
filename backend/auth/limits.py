"""The rate-limit dependencies of the API (mechanism in `backend.kit.ratelimit`).

* `api_rate_limit` — on every `/api/v1` route (router-level, in `backend/plugins.py`):
  one bucket per principal (`user:<id>`, `key:<id>`) at the principal's limit
  (an API key's own limit, else its tenant's plan tier, else
  `RATE_LIMIT_DEFAULT`); callers without valid credentials get one bucket per
  client IP at `RATE_LIMIT_ANONYMOUS`. It depends on the request's resolved
  principal, which `get_principal` reuses (FastAPI caches it per request), so
  authenticated calls are keyed by principal, never by IP.
* `login_rate_limit` — `POST /auth/token`: `RATE_LIMIT_LOGIN` attempts per
  client IP, and the failure throttle of `backend.auth.throttle` per username
  (read from the form FastAPI already parsed).
* `password_reset_rate_limit` — `POST /auth/password-reset/request`:
  `RATE_LIMIT_LOGIN` per client IP and per email.
"""

from __future__ import annotations

import json

from starlette.requests import HTTPConnection, Request

from backend.auth.authenticate import api_bucket_identifier, api_limit
from backend.auth.deps import Resolved
from backend.auth.throttle import login_throttle
from backend.kit.deps import AppSettings
from backend.kit.errors import RateLimited
from backend.kit.ratelimit import client_ip, enforce, hashed, retry_after_seconds
from backend.settings import Settings


async def api_rate_limit(connection: HTTPConnection, resolved: Resolved) -> None:
    if connection.scope["type"] != "http":
        return  # WebSocket routes: not limited per message
    settings: Settings = connection.app.state.settings
    principal = resolved.principal
    if principal is None:
        await enforce(
            connection, "api", f"ip:{client_ip(connection)}", settings.rate_limit_anonymous
        )
        return
    if principal.api_wait_ms is not None:  # counted with the credential check
        if principal.api_wait_ms > 0:
            raise RateLimited(retry_after=retry_after_seconds(principal.api_wait_ms))
        return
    limit = api_limit(settings, principal)
    await enforce(connection, "api", api_bucket_identifier(principal), limit)


async def login_rate_limit(request: Request, settings: AppSettings) -> None:
    """Attempts are counted per client IP (many accounts from one address);
    per account, failures are (`backend.auth.throttle`), so that nobody can
    lock an owner out by failing on their behalf."""
    ip = client_ip(request)
    await enforce(request, "login-ip", ip, settings.rate_limit_login)
    username = (await request.form()).get("username")  # cached: FastAPI parsed it already
    if isinstance(username, str) and username.strip():
        await login_throttle(request).check(username, ip)


async def password_reset_rate_limit(request: Request, settings: AppSettings) -> None:
    await enforce(request, "reset-ip", client_ip(request), settings.rate_limit_login)
    try:
        email = json.loads(await request.body()).get("email")  # cached body
    except (ValueError, AttributeError):
        email = None
    if isinstance(email, str) and email.strip():
        await enforce(request, "reset-email", hashed(email), settings.rate_limit_login)
