"""Webhooks: CRUD, secret shown once, SSRF refusal, signed deliveries verified
with the `standardwebhooks` package, retries on 5xx, none on 4xx, ping,
redelivery, and auto-disable with an audit event."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import text
from standardwebhooks import Webhook as StandardWebhook

from backend.settings import Settings
from tests.factories import bearer_headers, make_tenant
from tests.jobs.helpers import running_worker, wait_for_job


@dataclass
class Receiver:
    """A loopback HTTP endpoint answering with scripted status codes."""

    statuses: list[int] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {
            k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append((headers, body))
        status = self.statuses.pop(0) if self.statuses else 200
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    server = await asyncio.start_server(found.handle, "127.0.0.1", 0)
    found.port = server.sockets[0].getsockname()[1]
    yield found
    server.close()


@pytest.fixture
def permissive(app: Any) -> Any:
    """Private http targets allowed (the receiver runs on 127.0.0.1)."""
    original: Settings = app.state.settings
    app.state.settings = original.model_copy(
        update={"webhook_allow_private_targets": True, "webhook_allow_http": True}
    )
    yield app
    app.state.settings = original


async def _create(
    client: Any, headers: dict[str, str], url: str, events: list[str]
) -> dict[str, Any]:
    answer = await client.post(
        "/api/v1/webhooks", json={"url": url, "events": events}, headers=headers
    )
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:192.168.0.1]/hook",
        "https://localhost/hook",
        "http://example.com/hook",
        "ftp://example.com/hook",
        "https://user:pw@93.184.216.34/hook",
    ],
)
async def test_unsafe_targets_are_refused(client: Any, app: Any, url: str) -> None:
    tenant = await make_tenant(app)
    answer = await client.post(
        "/api/v1/webhooks",
        json={"url": url, "events": ["job.succeeded"]},
        headers=bearer_headers(app, tenant.owner),
    )
    assert answer.status_code == 422
    assert answer.json()["code"] == "unsafe_url"


async def test_crud_secret_once_and_permissions(
    client: Any, permissive: Any, receiver: Receiver
) -> None:
    app = permissive
    tenant = await make_tenant(app, roles=("owner", "member"))
    other = await make_tenant(app, "Other")
    headers = bearer_headers(app, tenant.owner)
    created = await _create(client, headers, receiver.url, ["job.succeeded", "job.failed"])
    assert created["secret"].startswith("whsec_")
    fetched = (await client.get(f"/api/v1/webhooks/{created['id']}", headers=headers)).json()
    assert "secret" not in fetched
    assert fetched["events"] == ["job.failed", "job.succeeded"]
    listed = (await client.get("/api/v1/webhooks", headers=headers)).json()
    assert listed["total"] == 1
    assert "secret" not in listed["items"][0]

    bad_event = await client.post(
        "/api/v1/webhooks", json={"url": receiver.url, "events": ["nope"]}, headers=headers
    )
    assert bad_event.status_code == 422
    patched = await client.patch(
        f"/api/v1/webhooks/{created['id']}", json={"description": "builds"}, headers=headers
    )
    assert patched.json()["description"] == "builds"
    member = bearer_headers(app, tenant.users["member"])
    assert (await client.get("/api/v1/webhooks", headers=member)).status_code == 403
    stranger = bearer_headers(app, other.owner)
    assert (
        await client.get(f"/api/v1/webhooks/{created['id']}", headers=stranger)
    ).status_code == 404
    assert (
        await client.delete(f"/api/v1/webhooks/{created['id']}", headers=headers)
    ).status_code == 204
    assert (
        await client.get(f"/api/v1/webhooks/{created['id']}", headers=headers)
    ).status_code == 404
    restored = await client.post(f"/api/v1/webhooks/{created['id']}/restore", headers=headers)
    assert restored.status_code == 200
    assert restored.json()["deleted_at"] is None
    actions = (
        await client.get("/api/v1/audit-events?resource_type=webhook", headers=headers)
    ).json()
    assert {"webhook.created", "webhook.updated", "webhook.deleted", "webhook.restored"} <= {
        e["action"] for e in actions["items"]
    }


async def test_event_delivered_signed_after_retrying_a_5xx(
    client: Any, permissive: Any, receiver: Receiver
) -> None:
    app = permissive
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    hook = await _create(client, headers, receiver.url, ["job.succeeded"])
    receiver.statuses = [503]
    job = (await client.post("/api/v1/jobs", json={"type": "test.noop"}, headers=headers)).json()
    async with running_worker(app):
        await wait_for_job(client, headers, job["id"])
        for _ in range(200):
            deliveries = (
                await client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=headers)
            ).json()
            if deliveries["items"] and deliveries["items"][0]["status"] == "succeeded":
                break
            await asyncio.sleep(0.05)
    delivery = deliveries["items"][0]
    assert delivery["status"] == "succeeded"
    assert delivery["attempt"] == 2
    assert delivery["response_code"] == 200
    assert len(receiver.requests) == 2
    request_headers, body = receiver.requests[-1]
    verified = StandardWebhook(hook["secret"]).verify(body, request_headers)
    assert verified["type"] == "job.succeeded"
    assert verified["data"]["job_id"] == job["id"]
    assert request_headers["webhook-id"] == verified["id"] == delivery["event_id"]
    assert set(json.loads(body)) == {"id", "type", "created_at", "data"}
    # Only subscribed events: job.queued/started were not delivered.
    assert all(json.loads(b)["type"] == "job.succeeded" for _, b in receiver.requests)


async def test_4xx_is_not_retried_ping_and_redeliver(
    client: Any, permissive: Any, receiver: Receiver
) -> None:
    app = permissive
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    hook = await _create(client, headers, receiver.url, ["job.succeeded"])
    receiver.statuses = [400]
    ping = await client.post(f"/api/v1/webhooks/{hook['id']}/ping", headers=headers)
    assert ping.status_code == 202
    async with running_worker(app):
        job = await wait_for_job(client, headers, ping.json()["job_id"])
        assert job["status"] == "failed"
        assert job["attempts"] == 1
        delivery = (
            await client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=headers)
        ).json()["items"][0]
        assert delivery["status"] == "failed"
        assert delivery["response_code"] == 400
        again = await client.post(
            f"/api/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}/redeliver", headers=headers
        )
        assert again.status_code == 202
        await wait_for_job(client, headers, again.json()["job_id"])
    bodies = [json.loads(body) for _, body in receiver.requests]
    assert [b["type"] for b in bodies] == ["webhook.ping", "webhook.ping"]
    assert bodies[0]["id"] == bodies[1]["id"]
    StandardWebhook(hook["secret"]).verify(receiver.requests[1][1], receiver.requests[1][0])


async def test_endpoint_failing_for_the_configured_period_is_disabled(
    client: Any, permissive: Any, receiver: Receiver, owner_engine: Any
) -> None:
    app = permissive
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    hook = await _create(client, headers, receiver.url, ["job.succeeded"])
    async with owner_engine.begin() as connection:
        await connection.execute(
            text("UPDATE webhooks SET failing_since = now() - interval '4 days' WHERE id = :id"),
            {"id": hook["id"]},
        )
    receiver.statuses = [500] * 20
    ping = (await client.post(f"/api/v1/webhooks/{hook['id']}/ping", headers=headers)).json()
    async with running_worker(app):
        await wait_for_job(client, headers, ping["job_id"])
    fetched = (await client.get(f"/api/v1/webhooks/{hook['id']}", headers=headers)).json()
    assert fetched["is_active"] is False
    assert fetched["disabled_at"]
    audit = (
        await client.get("/api/v1/audit-events?action=webhook.disabled", headers=headers)
    ).json()
    assert audit["items"][0]["actor_type"] == "system"
    # Re-enabling clears the failure streak.
    enabled = await client.patch(
        f"/api/v1/webhooks/{hook['id']}", json={"is_active": True}, headers=headers
    )
    assert enabled.json()["is_active"] is True
    assert enabled.json()["disabled_at"] is None


async def test_delivery_refuses_a_private_target_when_not_allowed(
    client: Any, app: Any, permissive: Any, receiver: Receiver
) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    hook = await _create(client, headers, receiver.url, ["job.succeeded"])
    ping = (await client.post(f"/api/v1/webhooks/{hook['id']}/ping", headers=headers)).json()
    strict = {"webhook_allow_private_targets": False, "webhook_allow_http": True}
    async with running_worker(app, **strict):
        job = await wait_for_job(client, headers, ping["job_id"])
    assert job["status"] == "failed"
    assert "Refused" in job["error"]
    assert receiver.requests == []
