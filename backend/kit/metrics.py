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
