"""The crawler through the API and a real worker, against the generated
documentation site on 127.0.0.1: a crawl from request to exports, headers
sealed, documents made from pages, conversion without refetch, wait mode,
cancel within a second, retry and resume after a worker restart without
refetching, validate/estimate, refused targets (schemes, credentials,
private addresses with the setting off), the plan's page limit, permissions
and isolation."""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from backend.kit.event_bus import event_bus
from backend.kit.storage import get_storage
from backend.settings import Settings
from bench.crawl_site import Reply, SiteServer, docs_site
from tests.factories import bearer_headers, make_tenant, run_sql
from tests.jobs.helpers import raise_job_cap, running_worker, wait_for_job

LOOPBACK = {
    "webhook_allow_private_targets": True,
    "crawl_timeout_seconds": 1.5,
    "crawl_max_page_bytes": 100_000,
}

# The slow sites below hold every page back: a timeout well above that delay.
PATIENT = {**LOOPBACK, "crawl_timeout_seconds": 5}


@pytest.fixture
def permissive(app: Any) -> Iterator[Any]:
    """Loopback targets allowed (the test site runs on 127.0.0.1)."""
    original: Settings = app.state.settings
    app.state.settings = original.model_copy(update=LOOPBACK)
    yield app
    app.state.settings = original


@pytest.fixture
def site() -> Iterator[SiteServer]:
    with SiteServer(docs_site()) as server:
        yield server


@pytest.fixture
async def owner(app: Any, owner_engine: Any) -> AsyncIterator[dict[str, Any]]:
    tenant = await make_tenant(app, "Crawls", roles=("owner", "viewer"))
    await raise_job_cap(owner_engine, tenant.id)
    return {
        "tenant": tenant,
        "headers": bearer_headers(app, tenant.owner),
        "viewer": bearer_headers(app, tenant.users["viewer"]),
    }


async def wait_crawl(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    crawl_id: str,
    timeout: float = 30,  # noqa: ASYNC109
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        crawl = (await client.get(f"/api/v1/crawls/{crawl_id}", headers=headers)).json()
        if crawl["status"] in ("succeeded", "failed", "cancelled"):
            return crawl  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, crawl
        await asyncio.sleep(0.05)


async def test_crawl_from_request_to_exports(
    permissive: Any, client: httpx.AsyncClient, site: SiteServer, owner: dict[str, Any]
) -> None:
    headers = owner["headers"]
    body = {
        "url": site.url + "/",
        "title": "Widget docs",
        "delay_ms": 0,
        "formats": ["markdown", "html", "json", "zip"],
        "save_as_documents": True,
        "headers": {"X-Docs-Token": "s3cret-value"},
    }
    answer = await client.post("/api/v1/crawls", json=body, headers=headers)
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    assert accepted["status"] == "queued"
    assert accepted["job"]["type"] == "web.crawl"
    assert accepted["job_id"] == accepted["job"]["id"]
    assert accepted["options"]["header_names"] == ["X-Docs-Token"]
    assert "s3cret-value" not in answer.text
    assert answer.headers["location"].endswith(f"/api/v1/crawls/{accepted['id']}")
    sealed = await run_sql(permissive, "SELECT headers_ciphertext FROM crawls")
    assert sealed[0][0]
    assert "s3cret" not in sealed[0][0]

    async with running_worker(permissive, **LOOPBACK):
        crawl = await wait_crawl(client, headers, accepted["id"])
        await wait_for_job(client, headers, accepted["job_id"])
    assert crawl["status"] == "succeeded", crawl
    assert crawl["stats"]["pages_fetched"] == 8
    assert crawl["stats"]["pages_failed"] == 4
    assert crawl["stats"]["pages_skipped"] == 5
    assert crawl["stats"]["bytes"] > 0
    assert crawl["stats"]["duration_ms"] > 0
    assert "s3cret-value" not in str(crawl)
    assert sorted(e["format"] for e in crawl["exports"]) == ["html", "json", "markdown", "zip"]
    seen = Counter(site.paths())
    assert all(n == 1 for n in seen.values()), seen
    assert {r.headers.get("x-docs-token") for r in site.requests} == {"s3cret-value"}
    assert not any(p.startswith("/private/") for p in seen)

    base = f"/api/v1/crawls/{crawl['id']}"
    failed = (await client.get(f"{base}/pages?status=error", headers=headers)).json()
    assert failed["total"] == 4
    assert {p["status_code"] for p in failed["items"]} == {200, 404, 500, None}
    found = (await client.get(f"{base}/pages?q=install.html&sort=url", headers=headers)).json()
    install = next(p for p in found["items"] if p["url"].endswith("/docs/install.html"))
    assert install["status"] == "ok"
    assert install["document_id"] is not None
    assert len(install["content_sha256"]) == 64
    assert "markdown" not in install
    detail = (await client.get(f"{base}/pages/{install['id']}", headers=headers)).json()
    assert detail["markdown"].startswith("# Installing Widget")
    assert "FOOTER-MARKER" not in detail["markdown"]
    keyset = (await client.get(f"{base}/pages?limit=5", headers=headers)).json()
    assert len(keyset["items"]) == 5
    assert keyset["next_cursor"]

    logs = (await client.get(f"/api/v1/jobs/{crawl['job_id']}/logs", headers=headers)).json()
    failures = [line["message"] for line in logs["items"] if line["message"].startswith("Page")]
    assert len(failures) == 4

    markdown = await client.get(f"{base}/exports/markdown", headers=headers)
    assert markdown.status_code == 200
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert 'filename="site.md"' in markdown.headers["content-disposition"]
    assert markdown.text.startswith("# Widget docs\n\n## Contents\n")
    assert "[guide](#page-docs-guide-html)" in markdown.text
    partial = await client.get(
        f"{base}/exports/markdown", headers={**headers, "Range": "bytes=0-9"}
    )
    assert partial.status_code == 206
    assert partial.content == markdown.content[:10]
    archive = await client.get(f"{base}/exports/zip", headers=headers)
    names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    assert "index.md" in names

    documents = (
        await client.get(f"/api/v1/documents?tag=crawl:{crawl['id']}", headers=headers)
    ).json()
    assert documents["total"] == 8

    # Conversion from the stored pages: a new export, nothing fetched again.
    before = len(site.requests)
    await client.delete(f"{base}/exports/html", headers=headers)
    assert (await client.get(f"{base}/exports/html", headers=headers)).status_code == 404
    job = await client.post(f"{base}/exports", json={"format": "html"}, headers=headers)
    assert job.status_code == 202, job.text
    async with running_worker(permissive, **LOOPBACK):
        await wait_for_job(client, headers, job.json()["id"])
    page = await client.get(f"{base}/exports/html", headers=headers)
    assert page.status_code == 200
    assert page.text.startswith("<!DOCTYPE html>")
    assert len(site.requests) == before

    actions = await run_sql(
        permissive, "SELECT action FROM audit_events WHERE resource_type = 'crawl' ORDER BY 1"
    )
    assert {row[0] for row in actions} >= {
        "crawl.created",
        "crawl.succeeded",
        "crawl.export_requested",
        "crawl.export_deleted",
    }
    usage = (await client.get("/api/v1/tenant", headers=headers)).json()["usage"]
    assert usage["storage_bytes"] > 0


async def test_wait_mode(
    permissive: Any, client: httpx.AsyncClient, site: SiteServer, owner: dict[str, Any]
) -> None:
    headers = owner["headers"]
    small = {"url": site.url + "/docs/install.html", "max_depth": 0, "delay_ms": 0}
    async with running_worker(permissive, **LOOPBACK):
        answer = await client.post("/api/v1/crawls?wait=10", json=small, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "succeeded"
        assert answer.json()["stats"]["pages_fetched"] == 1
    slow = {"url": site.url + "/docs/slow.html", "max_depth": 0}  # 3 s to answer
    async with running_worker(permissive, **{**LOOPBACK, "crawl_timeout_seconds": 5}):
        answer = await client.post("/api/v1/crawls?wait=1", json=slow, headers=headers)
        assert answer.status_code == 202
        assert answer.json()["status"] in ("queued", "running")
    bad = await client.post("/api/v1/crawls?wait=31", json=small, headers=headers)
    assert bad.status_code == 422


def slow_site(delay: float) -> Any:
    """The documentation site with every page held back `delay` seconds."""
    inner = docs_site()

    def serve(path: str, base: str) -> Reply | None:
        reply = inner(path, base)
        if reply is None or path in ("/robots.txt",) or path.startswith("/sitemap"):
            return reply
        return Reply(reply.status, reply.body, reply.content_type, reply.headers, delay)

    return serve


async def test_cancel_within_a_second_then_retry_without_refetch(
    permissive: Any, client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    headers = owner["headers"]
    with SiteServer(slow_site(0.3)) as server:
        body = {"url": server.url + "/", "delay_ms": 0, "concurrency": 2}
        crawl = (await client.post("/api/v1/crawls", json=body, headers=headers)).json()
        base = f"/api/v1/crawls/{crawl['id']}"
        async with running_worker(permissive, **PATIENT):
            while (await client.get(f"{base}/pages", headers=headers)).json()["total"] < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            cancelled = await client.post(f"{base}/cancel", headers=headers)
            assert cancelled.status_code == 200, cancelled.text
            asked = time.monotonic()
            crawl = await wait_crawl(client, headers, crawl["id"], timeout=5)
            assert crawl["status"] == "cancelled"
            stopped = time.monotonic() - asked
            requests_then = len(server.requests)
            await asyncio.sleep(0.5)
            assert len(server.requests) == requests_then  # nothing fetched after the stop
        assert stopped < 1.5, stopped
        job = (await client.get(f"/api/v1/jobs/{crawl['job_id']}", headers=headers)).json()
        assert job["status"] == "cancelled"
        stored = (await client.get(f"{base}/pages?page_size=100", headers=headers)).json()
        assert 2 <= stored["total"] < 17
        kept = {
            p["url"].removeprefix(server.url) for p in stored["items"] if p["status"] != "error"
        }
        assert (await client.post(f"{base}/cancel", headers=headers)).status_code == 409

        retried = await client.post(f"{base}/retry", headers=headers)
        assert retried.status_code == 202, retried.text
        assert retried.json()["status"] == "queued"
        async with running_worker(permissive, **PATIENT):
            crawl = await wait_crawl(client, headers, crawl["id"])
        assert crawl["status"] == "succeeded"
        listing = (await client.get(f"{base}/pages?page_size=100", headers=headers)).json()
        assert crawl["stats"]["pages_fetched"] == 9, "\n".join(  # the slow page is in time
            f"{p['url']} {p['status']} {p['depth']} {p['error']}" for p in listing["items"]
        )
        pages = Counter(p for p in server.paths() if not p.startswith(("/robots", "/sitemap")))
        # Pages stored before the cancel were not fetched again (failed pages
        # are: a retry retries them; so are fetches the cancel cut short).
        assert all(pages[path] == 1 for path in kept if path in pages), (kept, pages)
        assert (await client.post(f"{base}/retry", headers=headers)).status_code == 409


async def test_a_worker_restart_resumes_without_refetching(
    permissive: Any, client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    headers = owner["headers"]
    with SiteServer(slow_site(0.3)) as server:
        body = {"url": server.url + "/", "delay_ms": 0, "concurrency": 2}
        crawl = (await client.post("/api/v1/crawls", json=body, headers=headers)).json()
        base = f"/api/v1/crawls/{crawl['id']}"
        # No grace at shutdown: the worker stops mid-crawl, as when it is killed.
        async with running_worker(permissive, **PATIENT, job_shutdown_timeout_seconds=0):
            while (await client.get(f"{base}/pages", headers=headers)).json()["total"] < 3:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        # The worker stopped mid-crawl: the job went back to the queue.
        job = (await client.get(f"/api/v1/jobs/{crawl['job_id']}", headers=headers)).json()
        assert job["status"] == "queued", job
        stored = (await client.get(f"{base}/pages?page_size=100", headers=headers)).json()
        kept = {p["url"].removeprefix(server.url) for p in stored["items"]}
        assert len(kept) >= 3
        async with running_worker(permissive, **PATIENT):
            crawl = await wait_crawl(client, headers, crawl["id"])
    assert crawl["status"] == "succeeded"
    assert crawl["stats"]["pages_fetched"] == 9  # the slow page is in time here
    pages = Counter(p for p in server.paths() if not p.startswith(("/robots", "/sitemap")))
    # Stored pages were not fetched again; only fetches the stop cut short were.
    assert all(pages[path] == 1 for path in kept if path in pages), (kept, pages)
    assert sum(n - 1 for n in pages.values()) <= 2  # at most `concurrency` in flight


async def test_validate_and_estimate(
    permissive: Any, client: httpx.AsyncClient, site: SiteServer, owner: dict[str, Any]
) -> None:
    headers = owner["headers"]
    answer = await client.post(
        "/api/v1/crawls/validate",
        json={"url": site.url.upper().replace("HTTP", "http") + "/"},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result == {
        "valid": True,
        "url": site.url + "/",
        "problems": [],
        "reachable": True,
        "status_code": 200,
        "content_type": "text/html",
        "robots": {"allowed": True, "crawl_delay_ms": 100},
    }
    blocked = await client.post(
        "/api/v1/crawls/validate", json={"url": site.url + "/private/secret.html"}, headers=headers
    )
    assert blocked.json()["valid"] is False
    assert blocked.json()["problems"][0]["code"] == "disallowed_by_robots"
    bad = (
        await client.post(
            "/api/v1/crawls/validate",
            json={"url": "ftp://example.com/", "max_depth": 11, "concurrency": 0},
            headers=headers,
        )
    ).json()
    assert bad["valid"] is False
    assert {p["field"] for p in bad["problems"]} == {"max_depth", "concurrency"}
    unsafe = (
        await client.post(
            "/api/v1/crawls/validate", json={"url": "ftp://example.com/"}, headers=headers
        )
    ).json()
    assert unsafe["problems"] == [
        {"field": "url", "code": "unsafe_url", "message": "The URL must use https or http"}
    ]
    assert not unsafe["reachable"]

    estimate = await client.post(
        "/api/v1/crawls/estimate", json={"url": site.url + "/", "delay_ms": 0}, headers=headers
    )
    assert estimate.status_code == 200, estimate.text
    assert estimate.json() == {
        "estimated_pages": 3,  # the sitemap's install and orphan pages, and the start
        "method": "sitemap",
        "sitemap_pages": 2,
        "linked_pages": 11,  # in scope, robots allowing, the start page not counted
        "estimated_seconds": 0.3,
    }
    linked = (
        await client.post(
            "/api/v1/crawls/estimate",
            json={"url": site.url + "/", "respect_robots": False, "max_depth": 0},
            headers=headers,
        )
    ).json()
    assert linked["method"] == "links"
    assert linked["estimated_pages"] == 1


async def test_refused_targets_and_limits(
    app: Any, client: httpx.AsyncClient, site: SiteServer, owner: dict[str, Any]
) -> None:
    headers = owner["headers"]

    async def refused(body: dict[str, Any]) -> dict[str, Any]:
        answer = await client.post("/api/v1/crawls", json=body, headers=headers)
        assert answer.status_code == 422, answer.text
        return answer.json()  # type: ignore[no-any-return]

    # Private targets with WEBHOOK_ALLOW_PRIVATE_TARGETS off (the default).
    assert (await refused({"url": site.url + "/"}))["code"] == "unsafe_url"
    assert (await refused({"url": "http://localhost/"}))["code"] == "unsafe_url"
    assert (await refused({"url": "http://169.254.169.254/latest/"}))["code"] == "unsafe_url"
    validated = (
        await client.post("/api/v1/crawls/validate", json={"url": site.url + "/"}, headers=headers)
    ).json()
    assert validated["valid"] is False
    assert validated["problems"][0]["code"] == "unsafe_url"
    assert (await refused({"url": "ftp://example.com/"}))["code"] == "unsafe_url"
    assert (await refused({"url": "file:///etc/passwd"}))["code"] == "unsafe_url"
    assert (await refused({"url": "https://user:pw@example.com/"}))["code"] == "unsafe_url"
    assert site.requests == []

    original = app.state.settings
    app.state.settings = original.model_copy(update=LOOPBACK)
    try:
        over = await refused({"url": site.url + "/", "max_pages": 501})  # free plan: 500
        assert over["code"] == "validation_error"
        assert over["errors"][0]["loc"] == ["body", "max_pages"]
        bad_headers = await refused({"url": site.url + "/", "headers": {"Host": "x"}})
        assert bad_headers["code"] == "validation_error"
        many = {f"X-H{i}": "v" for i in range(11)}
        assert (await refused({"url": site.url + "/", "headers": many}))["code"] == (
            "validation_error"
        )
        assert (await refused({"url": site.url + "/", "formats": ["pdf"]}))["code"] == (
            "validation_error"
        )
    finally:
        app.state.settings = original
    assert await run_sql(app, "SELECT count(*) FROM crawls") == [(0,)]


async def test_permissions_isolation_delete_and_restore(
    permissive: Any, client: httpx.AsyncClient, site: SiteServer, owner: dict[str, Any]
) -> None:
    headers, viewer = owner["headers"], owner["viewer"]
    body = {"url": site.url + "/docs/install.html", "max_depth": 0, "delay_ms": 0}
    assert (await client.post("/api/v1/crawls", json=body, headers=viewer)).status_code == 403
    crawl = (await client.post("/api/v1/crawls", json=body, headers=headers)).json()
    base = f"/api/v1/crawls/{crawl['id']}"
    assert (await client.delete(base, headers=headers)).status_code == 409  # still queued
    async with running_worker(permissive, **LOOPBACK):
        await wait_crawl(client, headers, crawl["id"])
    listed = (await client.get("/api/v1/crawls?status=succeeded&q=install", headers=viewer)).json()
    assert [c["id"] for c in listed["items"]] == [crawl["id"]]
    assert (await client.get(f"{base}/exports", headers=viewer)).status_code == 200
    assert (await client.delete(base, headers=viewer)).status_code == 403

    other = await make_tenant(permissive, "Other crawls")
    stranger = bearer_headers(permissive, other.owner)
    for path in (base, f"{base}/pages", f"{base}/exports", f"{base}/exports/markdown"):
        answer = await client.get(path, headers=stranger)
        assert answer.status_code == 404, (path, answer.status_code)
    assert (await client.post(f"{base}/cancel", headers=stranger)).status_code == 404
    assert (await client.get("/api/v1/crawls", headers=stranger)).json()["total"] == 0

    assert (await client.delete(base, headers=headers)).status_code == 204
    assert (await client.get(base, headers=headers)).status_code == 404
    assert (await client.get("/api/v1/crawls", headers=headers)).json()["total"] == 0
    assert (
        await client.get("/api/v1/crawls?include_deleted=true", headers=viewer)
    ).status_code == 403
    deleted = (await client.get("/api/v1/crawls?include_deleted=true", headers=headers)).json()
    assert deleted["total"] == 1
    restored = await client.post(f"{base}/restore", headers=headers)
    assert restored.status_code == 200
    assert restored.json()["deleted_at"] is None


async def test_a_crawl_that_fetches_nothing_fails_with_events(
    permissive: Any, client: httpx.AsyncClient, site: SiteServer, owner: dict[str, Any]
) -> None:
    body = {"url": site.url + "/missing.html", "max_depth": 0}
    crawl = (await client.post("/api/v1/crawls", json=body, headers=owner["headers"])).json()
    async with running_worker(permissive, **LOOPBACK):
        finished = await wait_crawl(client, owner["headers"], crawl["id"])
    assert finished["status"] == "failed"
    assert "No page could be fetched" in finished["error"]
    rows = await run_sql(
        permissive,
        "SELECT action FROM audit_events WHERE resource_id = :id ORDER BY created_at",
        id=crawl["id"],
    )
    assert [r[0] for r in rows] == ["crawl.created", "crawl.failed"]
    bus = event_bus()
    assert bus is not None
    events = await bus.recent(owner["tenant"].id, None)
    crawl_events = [e["type"] for e in events if e["type"].startswith("crawl.")]
    assert crawl_events == ["crawl.started", "crawl.failed"]
    assert next(e for e in events if e["type"] == "crawl.failed")["data"]["id"] == crawl["id"]


async def test_admin_purge_removes_deleted_crawls_and_their_files(
    permissive: Any, client: httpx.AsyncClient, site: SiteServer, owner: dict[str, Any]
) -> None:
    headers = owner["headers"]
    body = {"url": site.url + "/docs/install.html", "max_depth": 0, "formats": ["markdown"]}
    crawl = (await client.post("/api/v1/crawls", json=body, headers=headers)).json()
    async with running_worker(permissive, **LOOPBACK):
        await wait_crawl(client, headers, crawl["id"])
    keys = await run_sql(permissive, "SELECT storage_key FROM crawl_exports")
    storage = get_storage(permissive.state.settings)
    assert await storage.size(keys[0][0]) is not None
    assert (
        await client.delete(f"/api/v1/crawls/{crawl['id']}", headers=headers)
    ).status_code == 204

    root = await make_tenant(permissive, "Platform", superadmin=True)
    settings = permissive.state.settings
    permissive.state.settings = settings.model_copy(update={"soft_delete_retention_days": 0})
    try:
        purged = await client.post(
            "/api/v1/admin/purge", headers=bearer_headers(permissive, root.owner)
        )
    finally:
        permissive.state.settings = settings
    assert purged.status_code == 200, purged.text
    assert purged.json()["purged"]["crawls"] == 1
    assert await run_sql(permissive, "SELECT count(*) FROM crawl_pages") == [(0,)]
    for _ in range(50):
        if await storage.size(keys[0][0]) is None:
            break
        await asyncio.sleep(0.05)
    assert await storage.size(keys[0][0]) is None


async def test_an_export_past_the_quota_fails_its_job_and_keeps_nothing(
    permissive: Any, client: httpx.AsyncClient, site: SiteServer, owner: dict[str, Any]
) -> None:
    """An export is storage like any other: past the tenant's quota its job
    fails for good, with the quota in its error, and no file is kept; the
    export it would have replaced is not counted twice."""
    headers = owner["headers"]
    body = {"url": site.url + "/docs/install.html", "max_depth": 0, "formats": ["markdown"]}
    crawl = (await client.post("/api/v1/crawls", json=body, headers=headers)).json()
    async with running_worker(permissive, **LOOPBACK):
        assert (await wait_crawl(client, headers, crawl["id"]))["status"] == "succeeded"
    base = f"/api/v1/crawls/{crawl['id']}"
    usage = (await client.get("/api/v1/tenant", headers=headers)).json()["usage"]
    await run_sql(
        permissive,
        "UPDATE tenants SET limits = jsonb_build_object('storage_bytes', CAST(:n AS bigint)) "
        "WHERE id = :id",
        n=usage["storage_bytes"] + 10,
        id=owner["tenant"].id,
    )

    async def export(fmt: str) -> dict[str, Any]:
        job = await client.post(f"{base}/exports", json={"format": fmt}, headers=headers)
        assert job.status_code == 202, job.text
        async with running_worker(permissive, **LOOPBACK):
            return await wait_for_job(client, headers, job.json()["id"])

    again = await export("markdown")  # replaces itself: no more bytes than before
    assert again["status"] == "succeeded", again
    refused = await export("html")
    assert refused["status"] == "failed"
    assert "storage quota" in refused["error"]
    assert refused["attempts"] == 1
    assert (await client.get(f"{base}/exports/html", headers=headers)).status_code == 404
    keys = await run_sql(permissive, "SELECT storage_key FROM crawl_exports")
    assert len(keys) == 1
    root = get_storage(permissive.state.settings).root  # type: ignore[attr-defined]
    folder = root / "tenants" / str(owner["tenant"].id) / "crawls"
    assert sorted(str(p.relative_to(root)) for p in folder.rglob("*") if p.is_file()) == [
        keys[0][0]
    ]
