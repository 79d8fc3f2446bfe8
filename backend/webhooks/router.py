"""HTTP routes of webhooks (`webhooks:manage`)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from backend.auth.deps import require
from backend.auth.principal import Principal
from backend.kit.deps import AppSettings, DbSession
from backend.kit.pagination import CursorPage, Page, list_query
from backend.webhooks.schemas import (
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookUpdate,
)
from backend.webhooks.service import webhook_service

router = APIRouter(tags=["webhooks"])

Manager = Annotated[Principal, require("webhooks:manage")]


@router.post(
    "/webhooks",
    status_code=201,
    response_model=WebhookCreated,
    summary="Create a webhook",
    description="Answers the signing secret (`whsec_…`) once. Private, loopback and link-local "
    "targets are 422 `unsafe_url`.",
)
async def create_webhook(
    body: WebhookCreate, principal: Manager, session: DbSession, settings: AppSettings
) -> JSONResponse:
    webhook_service.configure(settings)
    created = await webhook_service.create_webhook(session, settings, principal, body)
    return JSONResponse(
        created.model_dump(mode="json"),
        status_code=201,
        headers={"Location": f"/api/v1/webhooks/{created.id}"},
    )


@router.get(
    "/webhooks",
    response_model=Page[WebhookOut] | CursorPage[WebhookOut],
    description="Sort fields: `created_at`, `url`.",
)
async def list_webhooks(
    principal: Manager,
    session: DbSession,
    query: Annotated[Any, list_query(["created_at", "url"])],
    include_deleted: bool = False,
) -> Page[WebhookOut] | CursorPage[WebhookOut]:
    page = await webhook_service.list_webhooks(session, query, include_deleted)
    return page.envelope([WebhookOut.model_validate(w) for w in page.items])


@router.get("/webhooks/{webhook_id}", response_model=WebhookOut)
async def get_webhook(webhook_id: UUID, principal: Manager, session: DbSession) -> WebhookOut:
    return WebhookOut.model_validate(await webhook_service.get_webhook(session, webhook_id))


@router.patch("/webhooks/{webhook_id}", response_model=WebhookOut)
async def update_webhook(
    webhook_id: UUID,
    body: WebhookUpdate,
    principal: Manager,
    session: DbSession,
    settings: AppSettings,
) -> WebhookOut:
    webhook = await webhook_service.update_webhook(session, settings, principal, webhook_id, body)
    return WebhookOut.model_validate(webhook)


@router.delete("/webhooks/{webhook_id}", status_code=204)
async def delete_webhook(webhook_id: UUID, principal: Manager, session: DbSession) -> Response:
    await webhook_service.delete_webhook(session, principal, webhook_id)
    return Response(status_code=204)


@router.post("/webhooks/{webhook_id}/restore", response_model=WebhookOut)
async def restore_webhook(webhook_id: UUID, principal: Manager, session: DbSession) -> WebhookOut:
    return WebhookOut.model_validate(
        await webhook_service.restore_webhook(session, principal, webhook_id)
    )


@router.post(
    "/webhooks/{webhook_id}/ping",
    status_code=202,
    response_model=DeliveryOut,
    summary="Send a `webhook.ping` event",
)
async def ping_webhook(
    webhook_id: UUID, principal: Manager, session: DbSession, settings: AppSettings
) -> DeliveryOut:
    webhook_service.configure(settings)
    return DeliveryOut.model_validate(
        await webhook_service.ping(session, settings, principal, webhook_id)
    )


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    response_model=Page[DeliveryOut] | CursorPage[DeliveryOut],
    description="Sort fields: `created_at`.",
)
async def list_webhook_deliveries(
    webhook_id: UUID,
    principal: Manager,
    session: DbSession,
    query: Annotated[Any, list_query(["created_at"])],
) -> Page[DeliveryOut] | CursorPage[DeliveryOut]:
    page = await webhook_service.list_deliveries(session, webhook_id, query)
    return page.envelope([DeliveryOut.model_validate(d) for d in page.items])


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=DeliveryOut,
    summary="Send a delivery's event again (a new delivery)",
)
async def redeliver_webhook_delivery(
    webhook_id: UUID,
    delivery_id: UUID,
    principal: Manager,
    session: DbSession,
    settings: AppSettings,
) -> DeliveryOut:
    delivery = await webhook_service.redeliver(
        session, settings, principal, webhook_id, delivery_id
    )
    return DeliveryOut.model_validate(delivery)
