"""Prometheus metrics of the process, served at `/metrics`.

With several uvicorn workers, set `PROMETHEUS_MULTIPROC_DIR` so that every
worker's samples are aggregated (the client library's multiprocess mode).
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

HTTP_REQUESTS = Counter(
    "dossier_http_requests_total", "HTTP requests handled", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "dossier_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DB_POOL = Gauge(
    "dossier_db_pool_connections",
    "Database pool connections",
    ["state"],
    multiprocess_mode="livesum",
)
RATE_LIMITER_FAILURES = Counter(
    "dossier_rate_limiter_failures_total", "Rate-limit checks skipped because Redis failed"
)


def render_metrics() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


JOB_OUTCOMES = Counter(
    "dossier_job_outcomes_total", "Job attempts finished by a worker", ["type", "outcome"]
)
JOB_DURATION = Histogram(
    "dossier_job_duration_seconds",
    "Job attempt run time in the worker",
    ["type"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
JOBS_BY_STATUS = Gauge(
    "dossier_jobs",
    "Jobs in the queue table by type and status",
    ["type", "status"],
    multiprocess_mode="liveall",
)
JOBS_OLDEST_QUEUED = Gauge(
    "dossier_jobs_oldest_queued_age_seconds",
    "Age of the oldest queued job",
    multiprocess_mode="liveall",
)
JOB_RUN_SECONDS = Gauge(
    "dossier_jobs_run_seconds",
    "Total run time of finished jobs by type and status (sum, count)",
    ["type", "status", "stat"],
    multiprocess_mode="liveall",
)
