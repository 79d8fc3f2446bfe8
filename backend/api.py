"""Every domain's router, mounted under `/api/v1` (one line per domain)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from backend.admin.router import router as admin_router
from backend.api_keys.router import router as api_keys_router
from backend.audit.router import router as audit_router
from backend.auth.limits import api_rate_limit
from backend.auth.router import router as auth_router
from backend.cases.router import router as cases_router
from backend.documents.router import router as documents_router
from backend.events.router import router as events_router
from backend.jobs.router import batches_router
from backend.jobs.router import router as jobs_router
from backend.kit.errors import ERROR_RESPONSES
from backend.roles.router import permissions_router
from backend.roles.router import router as roles_router
from backend.tenants.router import router as tenant_router
from backend.uploads.router import router as uploads_router
from backend.users.router import router as users_router
from backend.webhooks.router import router as webhooks_router

# Every /api/v1 route is rate limited per principal, else per client IP.
api_router = APIRouter(
    prefix="/api/v1",
    responses=ERROR_RESPONSES,
    dependencies=[Depends(api_rate_limit, scope="function")],
)

api_router.include_router(auth_router)
api_router.include_router(users_router)
api_router.include_router(roles_router)
api_router.include_router(permissions_router)
api_router.include_router(api_keys_router)
api_router.include_router(audit_router)
api_router.include_router(tenant_router)
api_router.include_router(admin_router)
api_router.include_router(jobs_router)
api_router.include_router(batches_router)
api_router.include_router(webhooks_router)
api_router.include_router(events_router)
api_router.include_router(documents_router)
api_router.include_router(uploads_router)
api_router.include_router(cases_router)
