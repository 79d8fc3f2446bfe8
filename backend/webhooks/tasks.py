"""`webhook.deliver` (internal): POST one event to one endpoint, signed the
Standard Webhooks way; network errors, 5xx and 429 are retried with backoff,
other answers are final."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select

from backend import __version__
from backend.jobs.context import JobContext
from backend.jobs.types import PermanentJobError, RetryableJobError, backoff_delay, job_type
from backend.kit.security.ssrf import UnsafeUrl, pinned_url, resolve_target
from backend.settings import Settings
from backend.webhooks.models import DeliveryStatus, Webhook, WebhookDelivery
from backend.webhooks.security import decrypt_secret, sign
from backend.webhooks.service import webhook_service

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"delivery_id": {"type": "string", "format": "uuid"}},
    "required": ["delivery_id"],
}
RETRYABLE_STATUS = {408, 425, 429}
MAX_RETRY_AFTER = 3600.0


def _retry_after(response: httpx.Response | None) -> float | None:
    if response is None:
        return None
    value = response.headers.get("retry-after", "")
    return min(float(value), MAX_RETRY_AFTER) if value.isdigit() else None


async def _post_capped(
    settings: Settings,
    url: str,
    body: bytes,
    headers: dict[str, str],
    extensions: dict[str, Any],
) -> httpx.Response:
    """POST and take the answer's status and headers. The whole exchange has
    one deadline (WEBHOOK_TIMEOUT_SECONDS), not one per read, so a receiver
    trickling its answer cannot hold the worker's slot; the body is read raw
    (never decompressed: no gzip bomb) and at most WEBHOOK_MAX_RESPONSE_BYTES
    of it. Past the deadline while the body is read, the status stands."""
    until = asyncio.get_running_loop().time() + settings.webhook_timeout_seconds
    async with httpx.AsyncClient(
        timeout=settings.webhook_timeout_seconds, follow_redirects=False, trust_env=False
    ) as client:
        request = client.build_request(
            "POST",
            url,
            content=body,
            headers={**headers, "accept-encoding": "identity"},
            extensions=extensions,
        )
        async with asyncio.timeout_at(until):
            response = await client.send(request, stream=True)
        try:
            received = 0
            async with asyncio.timeout_at(until):
                async for chunk in response.aiter_raw():
                    received += len(chunk)
                    if received >= settings.webhook_max_response_bytes:
                        break
        except (TimeoutError, httpx.HTTPError):
            pass  # the answer's status is what counts
        finally:
            await response.aclose()
    return response


@job_type(
    "webhook.deliver",
    "Deliver one event to one webhook endpoint (created by webhooks, not through the API).",
    schema=SCHEMA,
    internal=True,
)
async def deliver(ctx: JobContext) -> dict[str, Any]:
    webhook_service.configure(ctx.settings)
    async with ctx.transaction() as session:
        delivery = await session.get(WebhookDelivery, ctx.payload["delivery_id"])
        webhook = (
            await session.scalar(select(Webhook).where(Webhook.id == delivery.webhook_id))
            if delivery
            else None
        )
        if delivery is None or webhook is None:
            raise PermanentJobError("The delivery no longer exists")
        if webhook.deleted_at is not None or not webhook.is_active:
            delivery.status = DeliveryStatus.FAILED
            delivery.error = "The endpoint is disabled or deleted"
            return {"status": "skipped"}
        url = webhook.url
        secret = decrypt_secret(ctx.settings, webhook.secret_ciphertext)
        body = json.dumps(delivery.payload, separators=(",", ":"), default=str).encode()
        message_id = str(delivery.event_id)

    attempt = ctx.job.attempt
    status_code: int | None = None
    response: httpx.Response | None = None
    error: str | None = None
    started = time.monotonic()
    try:
        target = await resolve_target(ctx.settings, url)
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "user-agent": f"Dossier-Webhooks/{__version__}",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, message_id, timestamp, body),
            "host": urlsplit(url).netloc,
        }
        if ctx.job.request_id:
            headers["x-request-id"] = ctx.job.request_id
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        response = await _post_capped(
            ctx.settings, pinned_url(url, target.addresses[0]), body, headers, extensions
        )
        status_code = response.status_code
    except UnsafeUrl as exc:
        error = f"Refused: {exc.detail}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    except TimeoutError:
        error = f"No answer within {ctx.settings.webhook_timeout_seconds:g} s"
    duration_ms = int((time.monotonic() - started) * 1000)

    succeeded = status_code is not None and 200 <= status_code < 300
    unsafe = error is not None and error.startswith("Refused")
    retryable = (
        not succeeded
        and not unsafe
        and (status_code is None or status_code >= 500 or status_code in RETRYABLE_STATUS)
    )
    final = succeeded or not retryable or attempt >= ctx.job.max_attempts
    delay = None
    if not final:
        delay = _retry_after(response) or backoff_delay(ctx.settings, attempt)
    if status_code is not None and not succeeded:
        error = f"HTTP {status_code}"
    async with ctx.transaction() as session:
        delivery = await session.get(WebhookDelivery, ctx.payload["delivery_id"])
        webhook = await session.get(Webhook, delivery.webhook_id) if delivery else None
        if delivery is None or webhook is None:
            raise PermanentJobError("The delivery no longer exists")
        await webhook_service.record_attempt(
            session,
            ctx.settings,
            delivery,
            webhook,
            status=DeliveryStatus.SUCCEEDED
            if succeeded
            else (DeliveryStatus.FAILED if final else DeliveryStatus.PENDING),
            attempt=attempt,
            response_code=status_code,
            duration_ms=duration_ms,
            error=error,
            next_retry_at=datetime.now(UTC) + timedelta(seconds=delay)
            if delay is not None
            else None,
        )
    if succeeded:
        return {"status_code": status_code, "duration_ms": duration_ms}
    if final:
        raise PermanentJobError(error or "Delivery failed")
    raise RetryableJobError(error or "Delivery failed", retry_after=delay)
