"""The crawler's job types.

* `web.crawl` (`{crawl_id}`): runs the crawl, storing pages in batches (one
  transaction per BATCH_PAGES pages or per BATCH_SECONDS, whichever comes
  first, and whatever is left when the crawl stops, even by a worker
  shutdown; one row per URL, so a crawl re-run after a worker restart or a
  retry skips the pages already stored), reports progress with the page
  count at most every PROGRESS_SECONDS, logs a line per failed page, stops
  within a second of a cancel (a watcher polls for it every half second),
  then builds the requested exports from the stored pages and, if asked,
  saves the pages as documents.
* `web.crawl_export` (`{crawl_id, format}`): (re)builds one export file from
  the stored pages; nothing is fetched again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

from backend.audit.models import ActorType
from backend.crawls.exports import SPECS, ExportFormat, ExportPage, build_export
from backend.crawls.extract import Extracted, extract
from backend.crawls.fetcher import Fetcher
from backend.crawls.frontier import Crawler, PageOutcome
from backend.crawls.models import CrawlStatus
from backend.crawls.service import CRAWL_JOB, EXPORT_JOB, JobActor, crawl_options, crawl_service
from backend.jobs.context import JobCancelled, JobContext, LeaseLost, quota_fails_the_job
from backend.jobs.types import PermanentJobError, job_type
from backend.kit.storage import commit_after_commit, key_for
from backend.tenants.storage_quota import QuotaExceeded

CANCEL_POLL_SECONDS = 0.5
BATCH_PAGES = 50  # pages stored per transaction at most
BATCH_SECONDS = 0.1  # a page waits at most about this long to be stored
PROGRESS_SECONDS = 0.2  # progress is reported at most this often during a crawl

CRAWL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "crawl_id": {"type": "string", "format": "uuid"},
        "actor_type": {"type": "string", "enum": [t.value for t in ActorType]},
    },
    "required": ["crawl_id"],
    "additionalProperties": False,
}
EXPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "crawl_id": {"type": "string", "format": "uuid"},
        "format": {"type": "string", "enum": [f.value for f in ExportFormat]},
    },
    "required": ["crawl_id", "format"],
    "additionalProperties": False,
}


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def store_export(ctx: JobContext, crawl_id: UUID, title: str, fmt: ExportFormat) -> int:
    """Build `fmt` from the stored pages and record it; its size."""
    async with ctx.transaction() as session:
        rows = await crawl_service.pages_for_export(session, crawl_id)
    pages = [
        ExportPage(r.url, r.title or "", r.depth, r.markdown or "", tuple(r.links or ()))
        for r in rows
    ]
    data = await ctx.run_blocking(build_export, fmt, title, pages)
    key = key_for("tenants", ctx.job.tenant_id, "crawls", crawl_id, "exports", uuid4().hex)
    staged = await ctx.storage.put_stream(
        key, _one_chunk(data), content_type=SPECS[fmt].content_type
    )
    async with ctx.transaction() as session:
        commit_after_commit(session, ctx.storage, staged)  # discarded if this fails
        with quota_fails_the_job():
            await crawl_service.store_export(
                session,
                ctx.settings,
                crawl_id,
                fmt,
                key=key,
                size=staged.size,
                sha256=staged.sha256,
            )
    return int(staged.size)


async def _save_documents(ctx: JobContext, crawl_id: UUID) -> int:
    if ctx.job.created_by is None:
        return 0
    actor = JobActor(ctx.job.created_by, ActorType(ctx.payload.get("actor_type", "user")))
    async with ctx.transaction() as session:
        page_ids = await crawl_service.page_ids_without_document(session, crawl_id)
    saved = 0
    for page_id in page_ids:
        try:
            async with ctx.transaction() as session:
                if await crawl_service.save_page_as_document(
                    session, ctx.settings, actor, crawl_id, page_id
                ):
                    saved += 1
        except QuotaExceeded:
            await ctx.log("Storage quota reached: the remaining pages were not saved", "warning")
            break
    return saved


async def _crawl(ctx: JobContext, crawl_id: UUID) -> dict[str, Any]:
    async with ctx.transaction() as session:
        run = await crawl_service.begin_run(session, ctx.settings, crawl_id)
    if run is None:
        return {"crawl_id": str(crawl_id), "skipped": "The crawl is gone or already finished"}
    crawl, known, headers = run
    if crawl.job_id != ctx.job.id:
        raise PermanentJobError("This crawl is run by another job")
    options = crawl_options(crawl)
    if known:
        await ctx.log(f"Resuming: {len(known)} pages already stored are not fetched again")
    interrupted: list[BaseException] = []
    done = len(known)

    async def extractor(
        body: bytes, url: str, content_type: str | None, charset: str | None
    ) -> Extracted:
        return await ctx.run_blocking(extract, body, url, content_type, charset)

    batch: list[PageOutcome] = []
    flushing = asyncio.Lock()
    clock = asyncio.get_running_loop().time
    last_flush = last_progress = clock()

    async def report() -> None:
        nonlocal last_progress
        last_progress = clock()
        try:
            await ctx.progress(min(95.0, 95.0 * done / options.max_pages), f"{done} pages")
        except (JobCancelled, LeaseLost) as exc:
            interrupted.append(exc)
            crawler.stop()

    async def flush() -> None:
        """Store the pages handed over so far in one transaction, then log
        their failures and (at most every PROGRESS_SECONDS) report progress."""
        nonlocal done, last_flush
        async with flushing:
            pages = batch[:]
            del batch[:]
            last_flush = clock()
            if pages:
                try:
                    async with ctx.transaction() as session:
                        await crawl_service.store_pages(session, crawl_id, pages)
                except BaseException:
                    batch[:0] = pages  # kept for the flush at the end
                    raise
                done += len(pages)
                for page in pages:
                    if page.status == "error":
                        await ctx.log(f"Page failed: {page.url}: {page.error}", "warning")
            if pages and clock() - last_progress >= PROGRESS_SECONDS:
                await report()

    async def on_page(page: PageOutcome) -> None:
        batch.append(page)
        # A full batch is stored now; while a flush runs, fetching goes on
        # unless pages pile up (then this fetcher waits its turn).
        if len(batch) >= BATCH_PAGES and (not flushing.locked() or len(batch) >= 4 * BATCH_PAGES):
            await flush()

    async def watch() -> None:
        """Poll for a cancel, and store pages that waited BATCH_SECONDS (a
        slow site's pages are not held back until a batch fills)."""
        polled = clock()
        while True:
            await asyncio.sleep(BATCH_SECONDS)
            if batch and clock() - last_flush >= BATCH_SECONDS:
                try:
                    await flush()
                except Exception as exc:
                    interrupted.append(exc)
                    crawler.stop()
                    return
            if clock() - polled < CANCEL_POLL_SECONDS:
                continue
            polled = clock()
            try:
                await ctx.check_cancelled()
            except (JobCancelled, LeaseLost) as exc:
                interrupted.append(exc)
                crawler.stop()
                return

    fetcher = Fetcher(ctx.settings, headers=headers, max_connections=options.concurrency)
    crawler = Crawler(options, fetcher, on_page, known=known, extractor=extractor)
    await ctx.progress(0, "crawling")
    watcher = asyncio.create_task(watch())
    try:
        stats = await crawler.run()
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await fetcher.aclose()
        # Pages fetched are stored before the job ends, however it ends (a
        # worker shutdown cancels this task: the write is shielded), so a
        # resumed crawl does not fetch them again.
        await asyncio.shield(flush())
    if not interrupted:
        await report()  # the final page count
    async with ctx.transaction() as session:
        totals = await crawl_service.record_stats(
            session, crawl_id, queued=stats.pages_queued, duration_ms=stats.duration_ms
        )
    if interrupted:
        raise interrupted[0]
    if totals["pages_fetched"] == 0:
        raise PermanentJobError("No page could be fetched (see the crawl's pages for why)")

    title = crawl.title or crawl.url
    exports = []
    for fmt in crawl.options.get("formats", []):
        await ctx.progress(96, f"export {fmt}")
        size = await store_export(ctx, crawl_id, title, ExportFormat(fmt))
        exports.append({"format": fmt, "size": size})
    saved = 0
    if crawl.options.get("save_as_documents"):
        await ctx.progress(98, "saving documents")
        saved = await _save_documents(ctx, crawl_id)
    async with ctx.transaction() as session:
        await crawl_service.finish(session, crawl_id, CrawlStatus.SUCCEEDED)
    return {"crawl_id": str(crawl_id), **totals, "exports": exports, "documents": saved}


async def _finish(ctx: JobContext, crawl_id: UUID, status: CrawlStatus, error: str) -> None:
    """Record how the crawl ended. Shielded: the worker cancels a job's task
    when a cancel or shutdown arrives, and that must not cut this write."""

    async def write() -> None:
        async with ctx.transaction() as session:
            await crawl_service.finish(session, crawl_id, status, error[:2000])

    await asyncio.shield(write())


@job_type(
    CRAWL_JOB,
    "Crawl a documentation site into Markdown pages and exports (queued by POST /crawls)",
    schema=CRAWL_SCHEMA,
)
async def crawl_site(ctx: JobContext) -> dict[str, Any]:
    crawl_id = UUID(ctx.payload["crawl_id"])
    try:
        return await _crawl(ctx, crawl_id)
    except JobCancelled:
        await _finish(ctx, crawl_id, CrawlStatus.CANCELLED, "Cancelled")
        raise
    except asyncio.CancelledError:
        if ctx.cancel_requested:
            await _finish(ctx, crawl_id, CrawlStatus.CANCELLED, "Cancelled")
        raise  # a worker shutdown: the job is queued again and resumes
    except LeaseLost:
        raise
    except PermanentJobError as exc:
        await _finish(ctx, crawl_id, CrawlStatus.FAILED, str(exc))
        raise
    except Exception as exc:
        if ctx.job.attempt >= ctx.job.max_attempts:
            await _finish(ctx, crawl_id, CrawlStatus.FAILED, str(exc) or type(exc).__name__)
        raise


@job_type(
    EXPORT_JOB,
    "Build one export of a finished crawl from its stored pages"
    " (queued by POST /crawls/{id}/exports)",
    schema=EXPORT_SCHEMA,
)
async def export_crawl(ctx: JobContext) -> dict[str, Any]:
    crawl_id = UUID(ctx.payload["crawl_id"])
    fmt = ExportFormat(ctx.payload["format"])
    async with ctx.transaction() as session:
        crawl = await crawl_service.get(session, crawl_id, include_deleted=True)
    await ctx.progress(10, f"export {fmt}")
    size = await store_export(ctx, crawl_id, crawl.title or crawl.url, fmt)
    return {"crawl_id": str(crawl_id), "format": fmt.value, "size": size}
