"""Plans and the limits a tenant gets: the plan's defaults (setting `PLANS`)
with the tenant's own overrides (`tenants.limits`, set by platform admins)
on top."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backend.settings import RateLimit, Settings

LIMIT_NAMES = ("storage_bytes", "max_running_jobs", "rate_limit", "max_crawl_pages")


@dataclass(frozen=True, slots=True)
class TenantLimits:
    storage_bytes: int
    max_running_jobs: int
    rate_limit: RateLimit
    max_crawl_pages: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "storage_bytes": self.storage_bytes,
            "max_running_jobs": self.max_running_jobs,
            "rate_limit": str(self.rate_limit),
            "max_crawl_pages": self.max_crawl_pages,
        }


def plan_names(settings: Settings) -> list[str]:
    return sorted(settings.plans)


def resolve_limits(
    settings: Settings, plan: str, overrides: Mapping[str, Any] | None
) -> TenantLimits:
    """A tenant's effective limits. An unknown plan (removed from `PLANS`
    after tenants were put on it) falls back to `free`."""
    spec = settings.plans.get(plan) or settings.plans["free"]
    overrides = overrides or {}
    storage = overrides.get("storage_bytes", spec.storage_bytes)
    running = overrides.get("max_running_jobs", spec.max_running_jobs)
    rate = overrides.get("rate_limit") or spec.rate_limit
    return TenantLimits(
        storage_bytes=int(storage),
        max_running_jobs=int(running),
        rate_limit=RateLimit.parse(rate) if rate else settings.rate_limit_default,
        max_crawl_pages=int(overrides.get("max_crawl_pages", spec.max_crawl_pages)),
    )


def tenant_rate_limit(
    settings: Settings, plan: str, overrides: Mapping[str, Any] | None
) -> RateLimit:
    """The default limit of a tenant's users and keys (a key's own limit wins)."""
    return resolve_limits(settings, plan, overrides).rate_limit


def capped_rate_limit(own: RateLimit | None, tenant: RateLimit) -> RateLimit:
    """An API key's limit: its own, but never more than its tenant's (plans
    can shrink after a key was made, so this is applied at every use)."""
    return own if own is not None and not own.exceeds(tenant) else tenant
