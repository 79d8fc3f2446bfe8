"""The one wiring list: what every domain and workload contributes to the app.

`main.py` (the API), the worker and the CLI call `install(settings)` once at
start-up; nothing registers itself by being imported. A workload plugs in by
adding one `Plugin` to `PLUGINS`: its routers, permissions, job types, event
names, listeners, upload processing, reference checks, usage, stats and purge
providers, and the services it configures with the app's settings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from fastapi import APIRouter, Depends

from backend.admin import service as admin
from backend.admin.router import router as admin_router
from backend.api_keys.router import router as api_keys_router
from backend.audit.router import router as audit_router
from backend.auth.limits import api_rate_limit
from backend.auth.router import router as auth_router
from backend.candidates import tasks as candidate_tasks
from backend.candidates.router import requisitions_router
from backend.candidates.router import router as candidates_router
from backend.cases import tasks as case_tasks
from backend.cases.router import router as cases_router
from backend.cases.service import case_service
from backend.crawls import tasks as crawl_tasks
from backend.crawls.router import router as crawls_router
from backend.crawls.service import EVENTS as CRAWL_EVENTS
from backend.crawls.service import crawl_service
from backend.documents import purge as document_purge
from backend.documents import tasks as document_tasks
from backend.documents.meshes import MESH_MIME_TYPES
from backend.documents.router import router as documents_router
from backend.documents.service import document_service, register_processing_job
from backend.events.catalogue import EventSpec
from backend.events.catalogue import catalogue as event_catalogue
from backend.events.router import router as events_router
from backend.events.router import ws_router as events_ws_router
from backend.jobs.maintenance import MaintenanceTask, register_maintenance
from backend.jobs.router import batches_router
from backend.jobs.router import router as jobs_router
from backend.jobs.service import job_service
from backend.jobs.types import JobType, job_types_in, registry
from backend.kit.errors import ERROR_RESPONSES
from backend.kit.events import EventListener, add_event_listener
from backend.kit.references import LiveCheck, register_reference
from backend.kit.storage import sweep_staged_blobs
from backend.marking import tasks as marking_tasks
from backend.marking.router import router as marking_router
from backend.marking.service import purge_marking
from backend.roles.permissions import PermissionSpec
from backend.roles.permissions import catalogue as permission_catalogue
from backend.roles.router import permissions_router
from backend.roles.router import router as roles_router
from backend.scans import tasks as scan_tasks
from backend.scans.router import router as scans_router
from backend.scans.service import ANALYZE_JOB, SEGMENTATION_EVENTS, scan_service
from backend.settings import Settings
from backend.system.router import router as system_router
from backend.tenants import service as tenants
from backend.tenants.router import router as tenant_router
from backend.uploads.router import router as uploads_router
from backend.uploads.service import purge_uploads, upload_service
from backend.users.router import router as users_router
from backend.webhooks import tasks as webhook_tasks
from backend.webhooks.router import router as webhooks_router
from backend.webhooks.service import webhook_service

READERS = frozenset({"member", "viewer"})
WRITERS = frozenset({"member"})


@dataclass(frozen=True)
class Plugin:
    """One domain's or workload's contributions (every field optional).

    `processing_jobs` maps a job type to the MIME types whose new documents
    it processes instead of text extraction; `references` maps a resource
    name to its live check; `usage_providers`, `stats_providers` and
    `purgers` are keyed by the figure or the resource they serve; `maintenance`
    tasks run periodically in every worker.
    """

    name: str
    routers: tuple[APIRouter, ...] = ()
    root_routers: tuple[APIRouter, ...] = ()
    permissions: tuple[PermissionSpec, ...] = ()
    job_types: tuple[JobType, ...] = ()
    events: tuple[EventSpec, ...] = ()
    listeners: tuple[EventListener, ...] = ()
    processing_jobs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    references: Mapping[str, LiveCheck] = field(default_factory=dict)
    usage_providers: Mapping[str, tenants.UsageProvider] = field(default_factory=dict)
    stats_providers: Mapping[str, admin.StatsProvider] = field(default_factory=dict)
    purgers: Mapping[str, admin.Purger] = field(default_factory=dict)
    maintenance: Mapping[str, MaintenanceTask] = field(default_factory=dict)
    configure: tuple[Callable[[Settings], None], ...] = ()


def _read_write(workload: str, noun: str) -> tuple[PermissionSpec, PermissionSpec]:
    return (
        PermissionSpec(f"{workload}:read", f"Read {noun}", READERS),
        PermissionSpec(f"{workload}:write", f"Create and change {noun}", WRITERS),
    )


PLUGINS: tuple[Plugin, ...] = (
    Plugin("system", root_routers=(system_router,)),
    Plugin("storage", maintenance={"staged_blobs": sweep_staged_blobs}),
    Plugin(
        "identity",
        routers=(
            auth_router,
            users_router,
            roles_router,
            permissions_router,
            api_keys_router,
            audit_router,
            tenant_router,
            admin_router,
        ),
    ),
    Plugin(
        "jobs",
        routers=(jobs_router, batches_router),
        usage_providers={
            "running_jobs": job_service.running_jobs,
            "storage_bytes": job_service.artifact_bytes,
        },
        stats_providers={"jobs": job_service.count_by_status},
        purgers={"jobs": job_service.purge},
    ),
    Plugin(
        "webhooks",
        routers=(webhooks_router,),
        job_types=(webhook_tasks.deliver,),
        listeners=(webhook_service.fan_out,),
        configure=(webhook_service.configure,),
    ),
    Plugin("events", routers=(events_router,), root_routers=(events_ws_router,)),
    Plugin(
        "documents",
        routers=(documents_router,),
        job_types=(document_tasks.extract_text, document_tasks.extract_fields),
        references={"document": document_service.is_live},
        usage_providers={"storage_bytes": document_service.storage_usage},
        stats_providers={
            "documents": document_purge.count_documents,
            "storage_bytes": document_purge.storage_bytes_total,
        },
        purgers={"documents": document_purge.purge_documents},
    ),
    Plugin(
        "uploads",
        routers=(uploads_router,),
        usage_providers={"storage_bytes": upload_service.reserved_bytes},
        purgers={"uploads": purge_uploads},
        maintenance={"expired_uploads": upload_service.cleanup_expired},
    ),
    Plugin(
        "cases",
        routers=(cases_router,),
        job_types=(case_tasks.export_case,),
        references={"case": case_service.is_live},
        purgers={"cases": case_service.purge},
    ),
    Plugin(
        "marking",
        routers=(marking_router,),
        permissions=_read_write("marking", "marking guides and sheets"),
        job_types=(marking_tasks.mark,),
        purgers={"marking": purge_marking},
        events=(
            EventSpec(
                (
                    "marking.started",
                    "marking.completed",
                    "marking.failed",
                    "marking.batch_completed",
                ),
                "marking:read",
            ),
        ),
    ),
    Plugin(
        "candidates",
        routers=(candidates_router, requisitions_router),
        permissions=_read_write("candidates", "candidates and requisitions"),
        job_types=(candidate_tasks.parse_cv,),
        events=(
            EventSpec(
                ("candidate.created", "candidate.updated", "candidate.merged"), "candidates:read"
            ),
        ),
    ),
    Plugin(
        "crawls",
        routers=(crawls_router,),
        permissions=_read_write("crawls", "documentation crawls"),
        job_types=(crawl_tasks.crawl_site, crawl_tasks.export_crawl),
        events=(EventSpec(CRAWL_EVENTS, "crawls:read"),),
        usage_providers={"storage_bytes": crawl_service.storage_usage},
        purgers={"crawls": crawl_service.purge},
    ),
    Plugin(
        "scans",
        routers=(scans_router,),
        permissions=_read_write("scans", "3-D scans and segmentations"),
        job_types=(scan_tasks.analyze, scan_tasks.segment),
        events=(EventSpec(SEGMENTATION_EVENTS, "scans:read"),),
        processing_jobs={ANALYZE_JOB: MESH_MIME_TYPES},
        usage_providers={"storage_bytes": scan_service.storage_usage},
        purgers={"scans": scan_service.purge},
    ),
)


def install(settings: Settings, plugins: tuple[Plugin, ...] = PLUGINS) -> None:
    """Register every plugin's contributions and configure its services
    (idempotent: the API, the worker and tests may call it more than once)."""
    for plugin in plugins:
        for permission in plugin.permissions:
            permission_catalogue.register(permission)
        for job_type in plugin.job_types:
            registry.register(job_type)
        for spec in plugin.events:
            event_catalogue.register(spec)
        for listener in plugin.listeners:
            add_event_listener(listener)
        for job_type_name, mime_types in plugin.processing_jobs.items():
            register_processing_job(mime_types, job_type_name)
        for name, check in plugin.references.items():
            register_reference(name, check)
        for name, usage in plugin.usage_providers.items():
            tenants.register_usage_provider(name, usage)
        for name, stats in plugin.stats_providers.items():
            admin.register_stats_provider(name, stats)
        for name, purger in plugin.purgers.items():
            admin.register_purger(name, purger)
        for name, task in plugin.maintenance.items():
            register_maintenance(name, task)
        for configure in plugin.configure:
            configure(settings)
    for module in settings.job_modules:
        for job_type in job_types_in(module):
            registry.register(job_type)


def api_router(plugins: tuple[Plugin, ...] = PLUGINS) -> APIRouter:
    """Every plugin's routers under `/api/v1`, rate limited per principal,
    else per client IP."""
    router = APIRouter(
        prefix="/api/v1",
        responses=ERROR_RESPONSES,
        dependencies=[Depends(api_rate_limit, scope="function")],
    )
    for plugin in plugins:
        for included in plugin.routers:
            router.include_router(included)
    return router


def root_routers(plugins: tuple[Plugin, ...] = PLUGINS) -> list[APIRouter]:
    """Routers outside `/api/v1` (health, readiness, event sockets)."""
    return [router for plugin in plugins for router in plugin.root_routers]
