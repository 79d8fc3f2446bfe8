"""Issue 11: the CV workload.

* `cv-parse`: `cv.parse` jobs per second in one worker process over
  text-layer CVs (PDF, DOCX, text) whose text is already extracted (OCR and
  extraction excluded), next to `cv-extract`: `document.extract_text` over
  the same documents in the same kind of worker (the extraction alone).
  Target: at least 20 CVs/s.
* `cv-import-zip`: a zip of 500 CVs through `POST /candidates/import`, then
  one worker until the batch is done (extraction and parsing): reported.
* `requisition-matches`: `GET /requisitions/{id}/matches` over 10,000
  candidates of one tenant (p50 target < 200 ms), next to
  `candidates-bare-ranking`: the bare baseline app ranking the same rows by
  skill overlap in one SQL query.

The CVs come from the tests' generated corpus (`tests/candidates/corpus.py`).
"""

from __future__ import annotations

import asyncio
import io
import sys
import time
import uuid
import zipfile
from typing import Any

import asyncpg
import httpx

from backend.plugins import install
from bench.context import BenchContext
from bench.registry import CustomScenario, HttpScenario, Measurement, RunOptions, register

PARSE_CVS = 300
ZIP_CVS = 500
MATCH_CANDIDATES = 10_000
WORKER_TASKS = 4
WORKER_ENV = {"LOG_LEVEL": "WARNING"}
REQUIRED = ["Python", "Kubernetes"]
PREFERRED = ["Terraform", "Go", "PostgreSQL"]


def _corpus_files(count: int) -> list[tuple[str, bytes]]:
    from tests.candidates.corpus import build_corpus, render

    return [render(cv) for cv in build_corpus(count, seed=2026)]


def _zip(files: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as handle:
        for index, (name, data) in enumerate(files):
            handle.writestr(f"cvs/batch-{index % 5}/{index:04d}-{name}", data)
    return buffer.getvalue()


async def _cv_tenant(ctx: BenchContext, key: str, *, auto_extract: bool) -> Any:
    tenant = ctx.state.get(key)
    if tenant is None:
        # The workload permissions join the catalogue (and so the system roles
        # of tenants provisioned here) through the plugin list.
        install(ctx.settings)
        tenant = ctx.state[key] = await ctx.make_tenant(f"CV bench {key}")
        connection = await asyncpg.connect(ctx.dsn)
        try:
            await connection.execute(
                "UPDATE tenants SET limits = limits || "
                '\'{"max_running_jobs": 1000, "storage_bytes": 100000000000}\', '
                "settings = settings || jsonb_build_object('country', 'DE', "
                "'auto_extract_text', CAST($2 AS boolean)) WHERE id = $1",
                tenant.id,
                auto_extract,
            )
        finally:
            await connection.close()
    return tenant


async def _import(ctx: BenchContext, tenant: Any, archive: bytes) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=ctx.app_url, timeout=900) as http:
        answer = await http.post(
            "/api/v1/candidates/import",
            headers=ctx.bearer(tenant.owner),
            files=[("files", ("cvs.zip", archive, "application/zip"))],
        )
    if answer.status_code != 202:
        raise RuntimeError(f"import answered {answer.status_code}: {answer.text[:300]}")
    body: dict[str, Any] = answer.json()
    return body


async def _seed_parse_documents(ctx: BenchContext) -> list[uuid.UUID]:
    """The documents of `PARSE_CVS` CVs, stored but neither extracted nor parsed."""
    if "cv.documents" in ctx.state:
        documents: list[uuid.UUID] = ctx.state["cv.documents"]
        return documents
    tenant = await _cv_tenant(ctx, "parse", auto_extract=False)
    files = await asyncio.to_thread(_corpus_files, PARSE_CVS)
    body = await _import(ctx, tenant, _zip(files))
    documents = [uuid.UUID(item["document_id"]) for item in body["items"] if item["document_id"]]
    connection = await asyncpg.connect(ctx.dsn)
    try:  # the import's own cv.parse jobs are not part of this measurement
        await connection.execute("DELETE FROM jobs WHERE tenant_id = $1", tenant.id)
    finally:
        await connection.close()
    ctx.state["cv.documents"] = documents
    return documents


async def _run_jobs(ctx: BenchContext, job_type: str, payloads: bool) -> Measurement:
    tenant = await _cv_tenant(ctx, "parse", auto_extract=False)
    documents = await _seed_parse_documents(ctx)
    connection = await asyncpg.connect(ctx.dsn)
    try:
        await connection.execute("DELETE FROM jobs WHERE tenant_id = $1", tenant.id)
        await connection.executemany(
            "INSERT INTO jobs (id, tenant_id, type, payload, document_id, run_after, max_attempts)"
            " VALUES (gen_random_uuid(), $1, $2, $3::jsonb, $4, now(), 1)",
            [
                (
                    tenant.id,
                    job_type,
                    f'{{"document_id": "{document}"}}' if payloads else "{}",
                    document,
                )
                for document in documents
            ],
        )

        async def finished() -> int:
            return int(
                await connection.fetchval(
                    "SELECT count(*) FROM jobs WHERE tenant_id = $1 AND type = $2 "
                    "AND status IN ('succeeded', 'failed')",
                    tenant.id,
                    job_type,
                )
            )

        with ctx.process(
            sys.executable,
            "-m",
            "backend",
            "worker",
            "--concurrency",
            str(WORKER_TASKS),
            env=WORKER_ENV,
            cpus=None,
        ):
            while await finished() == 0:  # start-up is not measured
                await asyncio.sleep(0.02)
            first, started = await finished(), time.monotonic()
            deadline = started + 600
            while (done := await finished()) < len(documents) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            elapsed = time.monotonic() - started
        failed = int(
            await connection.fetchval(
                "SELECT count(*) FROM jobs WHERE tenant_id = $1 AND type = $2 "
                "AND status = 'failed'",
                tenant.id,
                job_type,
            )
        )
    finally:
        await connection.close()
    count = done - first
    return Measurement(
        throughput=count / elapsed if elapsed else 0.0,
        unit="CVs/s",
        count=count,
        duration_s=elapsed,
        errors=failed,
        details={"documents": len(documents), "worker_tasks": WORKER_TASKS},
    )


async def cv_extract(ctx: BenchContext, options: RunOptions) -> Measurement:
    measurement = await _run_jobs(ctx, "document.extract_text", payloads=False)
    ctx.state["cv.extracted"] = True
    return measurement


async def cv_parse(ctx: BenchContext, options: RunOptions) -> Measurement:
    if "cv.extracted" not in ctx.state:  # the text must be there: run the extraction once
        await _run_jobs(ctx, "document.extract_text", payloads=False)
        ctx.state["cv.extracted"] = True
    return await _run_jobs(ctx, "cv.parse", payloads=True)


async def cv_import_zip(ctx: BenchContext, options: RunOptions) -> Measurement:
    tenant = await _cv_tenant(ctx, "zip", auto_extract=True)
    files = await asyncio.to_thread(_corpus_files, ZIP_CVS)
    archive = _zip(files)
    started = time.monotonic()
    body = await _import(ctx, tenant, archive)
    uploaded = time.monotonic() - started
    connection = await asyncpg.connect(ctx.dsn)
    try:
        with ctx.process(
            sys.executable,
            "-m",
            "backend",
            "worker",
            "--concurrency",
            str(WORKER_TASKS),
            env=WORKER_ENV,
            cpus=None,
        ):
            deadline = time.monotonic() + 900
            while time.monotonic() < deadline:
                pending = await connection.fetchval(
                    "SELECT count(*) FROM jobs WHERE batch_id = $1 "
                    "AND status NOT IN ('succeeded', 'failed', 'cancelled')",
                    uuid.UUID(body["batch_id"]),
                )
                if pending == 0:
                    break
                await asyncio.sleep(0.1)
        elapsed = time.monotonic() - started
        failed = await connection.fetchval(
            "SELECT count(*) FROM jobs WHERE batch_id = $1 AND status = 'failed'",
            uuid.UUID(body["batch_id"]),
        )
        candidates = await connection.fetchval(
            "SELECT count(*) FROM candidates WHERE tenant_id = $1", tenant.id
        )
    finally:
        await connection.close()
    return Measurement(
        throughput=ZIP_CVS / elapsed,
        unit="CVs/s",
        count=ZIP_CVS,
        duration_s=elapsed,
        errors=int(failed),
        details={
            "zip_mb": round(len(archive) / 1e6, 2),
            "import_request_s": round(uploaded, 2),
            "end_to_end_s": round(elapsed, 2),
            "candidates": int(candidates),
        },
    )


_WORDS = [
    "python",
    "kubernetes",
    "terraform",
    "payments",
    "platform",
    "observability",
    "services",
    "api",
    "team",
    "postgres",
    "latency",
    "migration",
    "data",
    "pipeline",
    "cloud",
    "security",
    "frontend",
    "react",
    "design",
    "mentoring",
    "delivery",
    "reliability",
    "infrastructure",
    "monitoring",
    "analytics",
    "customers",
]
_SKILLS = [
    "Python", "Kubernetes", "Terraform", "Go", "PostgreSQL", "Java", "JavaScript", "React",
    "Docker", "Amazon Web Services", "Apache Kafka", "Redis", "TypeScript", "Linux", "SQL",
    "Scrum", "Git", "Jenkins", "Ansible", "GraphQL", "Node.js", "Django", "Flask", "Rust",
]  # fmt: skip


async def _seed_matches(ctx: BenchContext) -> None:
    if "matches.requisition" in ctx.state:
        return
    tenant = await _cv_tenant(ctx, "matches", auto_extract=False)
    connection = await asyncpg.connect(ctx.dsn)
    try:
        await connection.execute(
            """
            INSERT INTO candidates (id, tenant_id, name, emails, skills, cv_text,
                                    total_experience_months, location)
            SELECT gen_random_uuid(), $1, 'Candidate ' || g,
                   ARRAY['c' || g || '@bench.example'],
                   ARRAY(SELECT s FROM unnest($2::text[]) AS s
                         WHERE random() < 0.25 + 0 * g),
                   array_to_string(ARRAY(SELECT ($3::text[])[1 + floor(random() * $4)::int]
                                         FROM generate_series(1, 250 + 0 * g)), ' '),
                   floor(random() * 240)::int,
                   (ARRAY['Berlin, Germany', 'London, UK', 'Paris, France'])[1 + g % 3]
            FROM generate_series(1, $5) AS g
            """,
            tenant.id,
            _SKILLS,
            _WORDS,
            len(_WORDS),
            MATCH_CANDIDATES,
        )
        await connection.execute("ANALYZE candidates")
    finally:
        await connection.close()
    async with httpx.AsyncClient(base_url=ctx.app_url, timeout=60) as http:
        answer = await http.post(
            "/api/v1/requisitions",
            headers=ctx.bearer(tenant.owner),
            json={
                "title": "Platform engineer",
                "description": "Payments platform on Kubernetes: observability, reliability, "
                "Terraform-managed cloud infrastructure and Python services.",
                "required_skills": REQUIRED,
                "preferred_skills": PREFERRED,
                "min_experience_years": 5,
            },
        )
    if answer.status_code != 201:
        raise RuntimeError(f"requisition answered {answer.status_code}: {answer.text[:300]}")
    ctx.state["matches.requisition"] = answer.json()["id"]


def _matches_path(ctx: BenchContext) -> str:
    return f"/api/v1/requisitions/{ctx.state['matches.requisition']}/matches?page_size=20"


async def _matches_headers(ctx: BenchContext) -> dict[str, str]:
    tenant = await _cv_tenant(ctx, "matches", auto_extract=False)
    return ctx.bearer(tenant.owner)


async def _bare_path(ctx: BenchContext) -> str:
    await _seed_matches(ctx)
    tenant = await _cv_tenant(ctx, "matches", auto_extract=False)
    skills = "&".join(f"skill={s}" for s in REQUIRED + PREFERRED)
    return f"/candidates/{tenant.id}/ranking?{skills}"


register(
    CustomScenario(
        "cv-extract",
        cv_extract,
        description=f"baseline: document.extract_text of {PARSE_CVS} text-layer CVs, one worker",
    ),
    CustomScenario(
        "cv-parse",
        cv_parse,
        baseline="cv-extract",
        description=f"cv.parse of {PARSE_CVS} extracted CVs in one worker (target >= 20 CVs/s)",
    ),
    CustomScenario(
        "cv-import-zip",
        cv_import_zip,
        description=f"POST /candidates/import of a {ZIP_CVS}-CV zip until its batch is done",
    ),
    HttpScenario(
        "candidates-bare-ranking",
        path=_bare_path,
        target="baseline",
        description=f"baseline: one SQL query ranking {MATCH_CANDIDATES} rows by skill overlap",
    ),
    HttpScenario(
        "requisition-matches",
        path=_matches_path,
        headers=_matches_headers,
        setup=_seed_matches,
        baseline="candidates-bare-ranking",
        description=f"GET /requisitions/{{id}}/matches over {MATCH_CANDIDATES} candidates "
        "(p50 target < 200 ms)",
    ),
)
