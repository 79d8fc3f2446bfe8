"""Webhooks: endpoints, fan-out of events into deliveries (one
`webhook.deliver` job each, in the transaction of the change), ping,
redelivery, and disabling endpoints that keep failing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.audit.service import audit_service
from backend.auth.grants import current_permissions
from backend.auth.principal import Principal
from backend.events.catalogue import PING_EVENT, catalogue
from backend.jobs.service import WEBHOOK_JOB_TYPE, job_service
from backend.kit.errors import NotFound, PermissionDenied
from backend.kit.event_bus import Event
from backend.kit.models import uuid7
from backend.kit.pagination import ListQuery, PageResult
from backend.kit.repository import Repository
from backend.kit.request_context import current_request_id
from backend.kit.security.ssrf import resolve_target
from backend.settings import Settings, get_settings
from backend.webhooks.models import DeliveryStatus, Webhook, WebhookDelivery
from backend.webhooks.schemas import WebhookCreate, WebhookCreated, WebhookOut, WebhookUpdate
from backend.webhooks.security import encrypt_secret, new_secret


class WebhookRepository(Repository[Webhook]):
    model = Webhook
    resource_name = "Webhook"


class DeliveryRepository(Repository[WebhookDelivery]):
    model = WebhookDelivery
    resource_name = "Delivery"


def _require_events(permissions: frozenset[str], events: list[str], whose: str) -> None:
    """A webhook carries only what its creator may read: `document.*` needs
    `documents:read`, `case.*` `cases:read`, `job.*` `jobs:read`, …"""
    missing = sorted(
        {
            needed
            for name in events
            if (needed := catalogue.permission_for(name)) and needed not in permissions
        }
    )
    if missing:
        raise PermissionDenied(f"{whose} may not read these events: needs {', '.join(missing)}")


class WebhookService:
    settings: Settings | None = None  # set by the app and the worker at start

    def configure(self, settings: Settings) -> None:
        self.settings = settings

    async def create_webhook(
        self, session: AsyncSession, settings: Settings, principal: Principal, body: WebhookCreate
    ) -> WebhookCreated:
        await resolve_target(settings, body.url)
        _require_events(principal.permissions, body.events, "You")
        secret = new_secret()
        webhook = await WebhookRepository(session).create(
            url=body.url,
            events=sorted(set(body.events)),
            description=body.description,
            secret_ciphertext=encrypt_secret(settings, secret),
            created_by=principal.id,
        )
        await audit_service.record(
            session,
            principal,
            "webhook.created",
            "webhook",
            webhook.id,
            {"url": webhook.url, "events": webhook.events},
        )
        out = WebhookOut.model_validate(webhook)
        return WebhookCreated(**out.model_dump(), secret=secret)

    async def list_webhooks(
        self, session: AsyncSession, query: ListQuery, include_deleted: bool
    ) -> PageResult[Webhook]:
        repository = WebhookRepository(session)
        return await repository.paginate(repository.select(include_deleted=include_deleted), query)

    async def get_webhook(self, session: AsyncSession, webhook_id: UUID) -> Webhook:
        return await WebhookRepository(session).get_or_raise(webhook_id)

    async def update_webhook(
        self,
        session: AsyncSession,
        settings: Settings,
        principal: Principal,
        webhook_id: UUID,
        body: WebhookUpdate,
    ) -> Webhook:
        repository = WebhookRepository(session)
        webhook = await repository.get_or_raise(webhook_id)
        values: dict[str, Any] = body.model_dump(exclude_unset=True)
        if "url" in values:
            if values["url"] is None:
                values.pop("url")
            else:
                await resolve_target(settings, values["url"])
        if values.get("events") is not None:
            _require_events(principal.permissions, values["events"], "You")
            values["events"] = sorted(set(values["events"]))
        else:
            values.pop("events", None)
        if values.get("is_active") is None:
            values.pop("is_active", None)
        elif values["is_active"]:
            values.update(failing_since=None, disabled_at=None)
        changes = await repository.update(webhook, values)
        if changes:
            await audit_service.record(
                session, principal, "webhook.updated", "webhook", webhook.id, changes
            )
        return webhook

    async def delete_webhook(
        self, session: AsyncSession, principal: Principal, webhook_id: UUID
    ) -> None:
        repository = WebhookRepository(session)
        webhook = await repository.get_or_raise(webhook_id)
        await repository.soft_delete(webhook, by=principal.id)
        await audit_service.record(session, principal, "webhook.deleted", "webhook", webhook.id)

    async def restore_webhook(
        self, session: AsyncSession, principal: Principal, webhook_id: UUID
    ) -> Webhook:
        repository = WebhookRepository(session)
        webhook = await repository.get_or_raise(webhook_id, include_deleted=True)
        if webhook.deleted_at is not None:
            await repository.restore(webhook)
            await audit_service.record(
                session, principal, "webhook.restored", "webhook", webhook.id
            )
        return webhook

    async def ping(
        self, session: AsyncSession, settings: Settings, principal: Principal, webhook_id: UUID
    ) -> WebhookDelivery:
        webhook = await WebhookRepository(session).get_or_raise(webhook_id)
        event = Event(
            type=PING_EVENT,
            tenant_id=webhook.tenant_id,
            data={"webhook_id": str(webhook.id)},
            webhooks=False,
        )
        delivery = await self._deliver(
            session, settings, webhook, event.as_dict(), event.id, event.type
        )
        await audit_service.record(
            session,
            principal,
            "webhook.pinged",
            "webhook",
            webhook.id,
            {"delivery_id": str(delivery.id)},
        )
        return delivery

    async def list_deliveries(
        self, session: AsyncSession, webhook_id: UUID, query: ListQuery
    ) -> PageResult[WebhookDelivery]:
        await WebhookRepository(session).get_or_raise(webhook_id)
        repository = DeliveryRepository(session)
        stmt = repository.select().where(WebhookDelivery.webhook_id == webhook_id)
        return await repository.paginate(stmt, query)

    async def redeliver(
        self,
        session: AsyncSession,
        settings: Settings,
        principal: Principal,
        webhook_id: UUID,
        delivery_id: UUID,
    ) -> WebhookDelivery:
        webhook = await WebhookRepository(session).get_or_raise(webhook_id)
        original = await DeliveryRepository(session).get_or_raise(delivery_id)
        if original.webhook_id != webhook.id:
            raise NotFound("Delivery not found")
        creator = await current_permissions(session, webhook.tenant_id, webhook.created_by)
        _require_events(creator, [original.event_type], "The webhook's creator")
        delivery = await self._deliver(
            session, settings, webhook, original.payload, original.event_id, original.event_type
        )
        await audit_service.record(
            session,
            principal,
            "webhook.redelivered",
            "webhook_delivery",
            delivery.id,
            {"original_id": str(original.id)},
        )
        return delivery

    async def _deliver(
        self,
        session: AsyncSession,
        settings: Settings,
        webhook: Webhook,
        payload: dict[str, Any],
        event_id: UUID,
        event_type: str,
    ) -> WebhookDelivery:
        delivery = WebhookDelivery(
            id=uuid7(),
            tenant_id=webhook.tenant_id,
            webhook_id=webhook.id,
            event_id=event_id,
            event_type=event_type,
            payload=payload,
            request_id=current_request_id(),
        )
        session.add(delivery)
        await session.flush()
        job = await job_service.enqueue(
            session,
            WEBHOOK_JOB_TYPE,
            {"delivery_id": str(delivery.id)},
            tenant_id=webhook.tenant_id,
            max_attempts=settings.webhook_max_attempts,
        )
        delivery.job_id = job.id
        await session.flush()
        return delivery

    async def fan_out(self, session: AsyncSession, events: list[Event]) -> None:
        """Each event a live, active webhook subscribes to becomes a delivery."""
        tenants = {event.tenant_id for event in events}
        types = sorted({event.type for event in events})
        stmt = select(Webhook).where(
            Webhook.tenant_id.in_(tenants),
            Webhook.is_active.is_(True),
            Webhook.deleted_at.is_(None),
            Webhook.events.overlap(types),
        )
        webhooks = list((await session.execute(stmt)).scalars())
        if not webhooks:
            return
        settings = self.settings or get_settings()
        # Checked at every fan-out: the creator's permissions may have shrunk.
        creators: dict[tuple[UUID, UUID | None], frozenset[str]] = {}
        for webhook in webhooks:
            key = (webhook.tenant_id, webhook.created_by)
            if key not in creators:
                creators[key] = await current_permissions(session, *key)
        for event in events:
            needed = catalogue.permission_for(event.type)
            for webhook in webhooks:
                readable = (
                    needed is None or needed in creators[(webhook.tenant_id, webhook.created_by)]
                )
                if (
                    webhook.tenant_id == event.tenant_id
                    and event.type in webhook.events
                    and readable
                ):
                    await self._deliver(
                        session, settings, webhook, event.as_dict(), event.id, event.type
                    )

    async def record_attempt(
        self,
        session: AsyncSession,
        settings: Settings,
        delivery: WebhookDelivery,
        webhook: Webhook,
        *,
        status: DeliveryStatus,
        attempt: int,
        response_code: int | None,
        duration_ms: int | None,
        error: str | None,
        next_retry_at: datetime | None,
    ) -> None:
        """Store an attempt's outcome; disable the endpoint once it has failed
        continuously for `WEBHOOK_DISABLE_AFTER_SECONDS`."""
        now = datetime.now(UTC)
        delivery.status = status
        delivery.attempt = attempt
        delivery.response_code = response_code
        delivery.duration_ms = duration_ms
        delivery.error = error
        delivery.next_retry_at = next_retry_at
        if status is DeliveryStatus.SUCCEEDED:
            delivery.delivered_at = now
            webhook.failing_since = None
        else:
            if webhook.failing_since is None:
                webhook.failing_since = now
            failing_for = (now - webhook.failing_since).total_seconds()
            if webhook.is_active and failing_for >= settings.webhook_disable_after_seconds:
                webhook.is_active = False
                webhook.disabled_at = now
                await audit_service.record(
                    session,
                    None,
                    "webhook.disabled",
                    "webhook",
                    webhook.id,
                    {
                        "reason": f"failing continuously for {int(failing_for)} seconds",
                        "is_active": {"before": True, "after": False},
                    },
                    tenant_id=webhook.tenant_id,
                )
        await session.flush()


webhook_service = WebhookService()
