"""The benchmark harness (bench/): its load generators against a real server
subprocess, its scenario registry and ratios, and one short end-to-end run.

Only counts and the shape of the figures are asserted, never timings or ratios.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from backend.documents.models import Document
from backend.kit.db import tenant_scope
from backend.kit.security.jwt import issue_access_token
from backend.settings import Settings
from bench import transfer
from bench.baseline_app import create_app as create_baseline
from bench.load import drive, wrk_available, wrk_script
from bench.profile import py_spy, summarize
from bench.registry import (
    CustomScenario,
    HttpScenario,
    Measurement,
    Request,
    RunOptions,
    load_all,
    plan,
    select,
)
from bench.report import as_json, table
from bench.runner import combine, run_all, run_one
from bench.services import Server, app_environment
from tests.factories import bearer_headers, make_tenant
from tests.support.server import ROOT, clean_env

TOOLS = [
    "python",
    pytest.param("wrk", marks=pytest.mark.skipif(not wrk_available(), reason="no wrk")),
]


@pytest.fixture(scope="module")
def server(database_url: str, redis_url: str, tmp_path_factory: Any) -> Iterator[Server]:
    """The Dossier app as `python -m bench` runs it: uvicorn, one worker."""
    env = app_environment(
        database_url,
        redis_url,
        "dossier-test-bench",
        tmp_path_factory.mktemp("bench-app"),
        log_level="WARNING",
    )
    with Server("dossier", "backend.main:create_app", env, ready_path="/ready") as running:
        yield running


def assert_valid(measurement: Measurement) -> None:
    assert measurement.count > 0
    assert measurement.throughput > 0
    assert measurement.duration_s > 0
    assert measurement.p50_ms is not None
    assert measurement.p99_ms is not None
    assert all(math.isfinite(v) for v in (measurement.p50_ms, measurement.p99_ms))
    assert 0 < measurement.p50_ms <= measurement.p99_ms


@pytest.mark.parametrize("tool", TOOLS)
async def test_load_generator_drives_health(server: Server, tool: str) -> None:
    measurement = await drive(
        server.url, [Request("/health")], duration=1, connections=4, tool=tool
    )
    assert_valid(measurement)
    assert measurement.errors == 0
    assert measurement.details["tool"] == ("wrk" if tool == "wrk" else "pyload")


@pytest.mark.parametrize("tool", TOOLS)
async def test_load_generator_counts_unexpected_statuses(server: Server, tool: str) -> None:
    mixed = [Request("/health"), Request("/no-such-route")]
    tolerated = await drive(
        server.url, mixed, duration=1, connections=2, expected=(200, 404), tool=tool
    )
    assert_valid(tolerated)
    assert tolerated.errors == 0
    refused = await drive(server.url, mixed, duration=1, connections=2, expected=(200,), tool=tool)
    assert refused.count > 0
    assert refused.errors > 0


def test_wrk_script_escapes_and_rotates_requests() -> None:
    requests = [
        Request("/a", headers={"Authorization": 'Bearer x"y\\z'}),
        Request("/b", method="POST", body=b'{"n":1}\n'),
    ]
    script = wrk_script(requests, (200,))
    assert "request = function()" in script
    for escaped in ("\\034", "\\092", "\\010"):  # " \ and newline
        assert escaped in script
    single = wrk_script(requests[:1], (200,))
    assert 'wrk.path = "/a"' in single
    assert "request = function()" not in single


def test_registry_plans_baselines_first_and_selects_by_area() -> None:
    available = load_all()
    assert {"bare-health", "bare-query", "health"} <= set(available)
    order = [scenario.name for scenario in plan(["health"], available)]
    assert order == ["bare-health", "health"]
    assert set(select(["foundation"], available)) >= {"bare-health", "bare-query", "health"}
    assert select(["bare-*"], available)[:2] == ["bare-health", "bare-query"]
    with pytest.raises(KeyError):
        select(["no-such-scenario"], available)
    with pytest.raises(KeyError):
        plan(["x"], {"x": HttpScenario("x", baseline="missing")})


async def test_custom_scenarios_get_ratios_to_their_baseline_per_round() -> None:
    calls: list[str] = []

    def fixed(name: str, value: float) -> Any:
        async def run(context: Any, options: RunOptions) -> Measurement:
            calls.append(name)
            return Measurement(throughput=value, unit="jobs/s", count=int(value))

        return run

    async def broken(context: Any, options: RunOptions) -> Measurement:
        raise RuntimeError("no worker")

    scenarios = [
        CustomScenario("bare-loop", fixed("bare-loop", 200.0)),
        CustomScenario("jobs", fixed("jobs", 50.0), baseline="bare-loop", target_ratio=0.5),
        CustomScenario("broken", broken, baseline="bare-loop"),
    ]
    context = SimpleNamespace(options=RunOptions(duration=1, connections=1))
    results = await run_all(scenarios, context, rounds=2, progress=lambda _: None)  # type: ignore[arg-type]
    by_name = {result.name: result for result in results}
    assert calls == ["bare-loop", "jobs", "bare-loop", "jobs"]
    assert by_name["jobs"].ratio == pytest.approx(0.25)
    assert by_name["jobs"].measurement is not None
    assert by_name["jobs"].measurement.details["samples"] == [50.0, 50.0]
    assert by_name["broken"].error == "RuntimeError: no worker"
    assert not by_name["broken"].ok
    rendered = table(results)
    for shown in ("0.25x", "MISS", "broken FAILED: RuntimeError: no worker"):
        assert shown in rendered
    document = as_json(results, {"duration_s": 1})
    assert [entry["name"] for entry in document["results"]] == ["bare-loop", "jobs", "broken"]
    assert document["results"][1]["unit"] == "jobs/s"


@pytest.mark.slow
def test_bench_command_runs_end_to_end(pg_server_url: str, redis_url: str, tmp_path: Path) -> None:
    """`python -m bench` for one second per scenario: fresh database, both
    servers, seeding, the table and the JSON file."""
    output = tmp_path / "result.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "foundation",
            "--duration",
            "1",
            "--warmup",
            "0",
            "--connections",
            "4",
            "--output",
            str(output),
        ],
        env=clean_env(DATABASE_URL=pg_server_url, REDIS_URL=redis_url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "ratio" in completed.stdout
    document = json.loads(output.read_text())
    results = {entry["name"]: entry for entry in document["results"]}
    assert {"bare-health", "bare-query", "health", "tenant-read"} <= set(results)
    for entry in results.values():
        assert entry["error"] is None
        assert entry["count"] > 0
        assert entry["errors"] == 0
        assert entry["p50_ms"] > 0
    for name in ("health", "tenant-read"):
        assert results[name]["ratio"] is not None
        assert results[name]["ratio"] > 0


def test_profile_summary_groups_samples_by_package_and_project_function(tmp_path: Path) -> None:
    stacks = tmp_path / "stacks.txt"
    stacks.write_text(
        "main (uvicorn/main.py:1);get_tenant (/work/main/backend/tenants/router.py:40);"
        "execute (/x/site-packages/asyncpg/connection.py:3) 6\n"
        "main (uvicorn/main.py:1);get_tenant (/work/main/backend/tenants/router.py:40) 2\n"
        "run (anyio/x.py:1);Condition.wait (/usr/lib/python3.11/threading.py:327) 50\n"
        " 7\n"
    )
    summary = summarize(stacks)
    assert summary.startswith("8 busy samples")
    assert "75.0%  asyncpg" in summary
    assert "25.0%  backend.tenants" in summary
    assert "100.0%  get_tenant (backend/tenants/router.py)" in summary
    assert "threading" not in summary


async def test_stale_baseline_is_measured_again_after_setup_next_to_its_scenario() -> None:
    calls: list[str] = []
    throughputs = iter([100.0, 400.0])

    async def baseline(context: Any, options: RunOptions) -> Measurement:
        calls.append("bare")
        return Measurement(throughput=next(throughputs))

    async def seed(context: Any) -> None:
        calls.append("setup")

    async def scenario(context: Any, options: RunOptions) -> Measurement:
        calls.append("scenario")
        return Measurement(throughput=100.0)

    scenarios = [
        CustomScenario("bare", baseline),
        CustomScenario("x", scenario, baseline="bare", setup=seed),
    ]
    context = SimpleNamespace(options=RunOptions(duration=1, connections=1))
    results = await run_all(
        scenarios,
        context,  # type: ignore[arg-type]
        baseline_max_age=0,
        progress=lambda _: None,
    )
    assert calls == ["bare", "setup", "bare", "scenario"]
    by_name = {result.name: result for result in results}
    assert by_name["x"].ratio == pytest.approx(0.25)  # against the adjacent 400, not 100
    assert by_name["bare"].measurement is not None
    assert by_name["bare"].measurement.details["samples"] == [100.0, 400.0]


async def test_naive_stack_lists_the_callers_documents_and_refuses_bad_tokens(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The naive baseline (`bench/naive_app.py`) must be a working list, or
    Dossier's lead over it means nothing: the caller's tenant's documents
    only, newest first, and 401 for a token it cannot verify."""
    settings = app.state.settings
    monkeypatch.setenv("BENCH_NAIVE_DATABASE_URL", settings.database_url.get_secret_value())
    monkeypatch.setenv("BENCH_NAIVE_JWT_SECRET", settings.jwt_secret.get_secret_value())
    monkeypatch.setenv("BENCH_NAIVE_JWT_ALGORITHM", settings.jwt_algorithm)
    monkeypatch.setenv("BENCH_NAIVE_JWT_AUDIENCE", settings.jwt_audience)
    monkeypatch.setenv("BENCH_NAIVE_JWT_ISSUER", settings.jwt_issuer)
    monkeypatch.delenv("BENCH_BASELINE_DSN", raising=False)
    tenant, other = await make_tenant(app, "A"), await make_tenant(app, "B")
    with tenant_scope(tenant.id):
        async with app.state.db.transaction() as session:
            for title in ("first", "second"):
                await session.execute(
                    insert(Document).values(
                        tenant_id=tenant.id,
                        title=title,
                        filename=f"{title}.pdf",
                        mime_type="application/pdf",
                        size=1,
                        sha256=title[0] * 64,
                        storage_key=f"k/{title}",
                        tags=[],
                    )
                )
    naive = create_baseline()
    async with naive.router.lifespan_context(naive):
        transport = httpx.ASGITransport(app=naive)
        async with httpx.AsyncClient(transport=transport, base_url="http://naive") as client:
            mine = await client.get("/naive/documents", headers=bearer_headers(app, tenant.owner))
            theirs = await client.get("/naive/documents", headers=bearer_headers(app, other.owner))
            forged = await client.get("/naive/documents", headers={"Authorization": "Bearer x.y.z"})
    assert mine.status_code == 200, mine.text
    assert [item["title"] for item in mine.json()] == ["second", "first"]
    assert theirs.json() == []
    assert forged.status_code == 401


async def test_transfer_client_sends_and_receives_whole_files_through_the_app(
    app: Any, server: Server
) -> None:
    """bench/transfer.py, the client of the MB/s scenarios: an upload sent in
    several 1 MiB pieces becomes a document of the right size and sha256, and
    a download counts every byte of it."""
    tenant = await make_tenant(app)
    server_settings = Settings(**{key.lower(): value for key, value in server.env.items()})  # type: ignore[arg-type]
    token, _ = issue_access_token(
        server_settings,
        user_id=tenant.owner.id,
        tenant_id=tenant.id,
        session_id=uuid.uuid4(),
    )
    headers = {"Authorization": f"Bearer {token}"}
    data = b"%PDF-1.7\n" + os.urandom(3 * transfer.PIECE + 12345)
    sent = await asyncio.to_thread(
        transfer.upload,
        server.url,
        "/api/v1/documents",
        headers,
        field="file",
        filename="transfer.pdf",
        content_type="application/pdf",
        data=data,
    )
    assert sent.status == 201, sent.body
    document = json.loads(sent.body)
    assert document["size"] == len(data)
    assert document["sha256"] == hashlib.sha256(data).hexdigest()
    received = await asyncio.to_thread(
        transfer.download, server.url, f"/api/v1/documents/{document['id']}/content", headers
    )
    assert (received.status, received.size, received.body) == (200, len(data), b"")
    missing = await asyncio.to_thread(
        transfer.download, server.url, f"/api/v1/documents/{uuid.uuid4()}/content", headers
    )
    assert missing.status == 404


def test_combined_rounds_report_the_median_of_numeric_details() -> None:
    rounds = [
        Measurement(throughput=t, details={"server_cpu_s": cpu, "file_mb": 100, "tool": tool})
        for t, cpu, tool in ((1.0, 0.5, "a"), (3.0, 0.3, "b"), (2.0, 0.4, "c"))
    ]
    combined = combine(rounds)
    assert combined.throughput == 2.0
    assert combined.details["server_cpu_s"] == 0.4
    assert combined.details["file_mb"] == 100
    assert combined.details["tool"] == "a"
    assert combined.details["samples"] == [1.0, 3.0, 2.0]


@pytest.mark.skipif(py_spy() is None, reason="no py-spy")
async def test_profiled_custom_scenario_samples_the_app_while_it_runs(tmp_path: Path) -> None:
    """`--profile` on a custom scenario marked `profile=True`: py-spy samples
    the app process while the scenario runs, and only then."""
    busy = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import time\nwhile True: sum(range(10000)); time.sleep(0)"
    )

    async def scenario(context: Any, options: RunOptions) -> Measurement:
        await asyncio.sleep(1.5)
        return Measurement(throughput=1.0, unit="MB/s")

    context = SimpleNamespace(
        options=RunOptions(duration=1, connections=1),
        profile_dir=tmp_path / "profile",
        app_pid=busy.pid,
        pinning=SimpleNamespace(client=None),
    )
    try:
        measurement = await run_one(
            CustomScenario("transfer", scenario, profile=True),
            context,  # type: ignore[arg-type]
            tool="python",
            warmup=0,
        )
        unprofiled = await run_one(
            CustomScenario("plain", scenario),
            context,  # type: ignore[arg-type]
            tool="python",
            warmup=0,
        )
    finally:
        busy.kill()
        await busy.wait()
    assert measurement.details["profile"] == str(tmp_path / "profile" / "transfer.txt")
    assert "busy samples" in measurement.details["profile_summary"]
    assert "profile" not in unprofiled.details
