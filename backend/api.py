"""Every domain's router, mounted under `/api/v1` (one line per domain)."""

from __future__ import annotations

from fastapi import APIRouter

from backend.kit.errors import ERROR_RESPONSES

api_router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)
