"""The interactive docs as a person uses them, in headless Chromium against a
real server on 127.0.0.1: Swagger UI's "Authorize" (the OAuth2 password form,
then an API key) and "Try it out", and ReDoc listing every operation.

The browser resolves no host but 127.0.0.1 (as on a machine with no route to
the internet), and every request the pages make is recorded: one to another
host fails the test. Screenshots are written to `test-artifacts/docs/`
(or `$DOCS_SCREENSHOT_DIR`).

Chromium is the system's (Debian's `chromium`, which `.ci/run` installs, or
`$CHROMIUM_PATH`); Playwright drives it and downloads no browser of its own.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from backend.settings import Settings
from tests.factories import PASSWORD, TenantFixture, make_api_key, make_tenant
from tests.support.server import ROOT, clean_env, serving

CHROMIUM = (
    os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
)
# Skipped on a developer's machine without Chromium; under CI (`CI` set, as
# .ci/run is run) a missing Chromium fails instead.
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="no Chromium: install Debian's `chromium` (as .ci/run does) or set CHROMIUM_PATH",
)
playwright_api = pytest.importorskip("playwright.async_api")
expect = playwright_api.expect
pytestmark = [pytestmark, pytest.mark.slow]

SCREENSHOTS = Path(os.environ.get("DOCS_SCREENSHOT_DIR") or ROOT / "test-artifacts" / "docs")
TIMEOUT_MS = 60_000
# ReDoc's sidebar credit asks for the Redocly logo from Redocly's CDN; the
# pages' same-origin Content-Security-Policy stops it in the browser (it never
# reaches the network) and ReDoc hides the image.
REFUSED_BY_POLICY = {"https://cdn.redoc.ly/redoc/logo-mini.svg"}
# Collects what the Content-Security-Policy refused, before any page script runs.
RECORD_REFUSALS = """
window.__refused = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__refused.push(event.blockedURI);
});
"""


@dataclass
class Traffic:
    """Every request a browser context made, and any to another host."""

    base: str
    seen: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def route(self, route: Any) -> None:
        url = route.request.url
        self.seen.append(url)
        if urlsplit(url).netloc != urlsplit(self.base).netloc:
            self.outside.append(url)
            await route.abort()
        else:
            await route.continue_()


@pytest.fixture(scope="module")
def server(database_url: str, redis_url: str, settings: Settings) -> Iterator[str]:
    """`dossier serve` (uvicorn) on 127.0.0.1, on this run's database."""
    env = clean_env(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        REDIS_KEY_PREFIX=settings.redis_key_prefix,
        LOG_LEVEL="WARNING",
    )
    with serving(env) as (base, _):
        yield base


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    if CHROMIUM is None:
        pytest.fail("CI runs the browser test: .ci/run installs Debian's `chromium`")
    async with playwright_api.async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            # Every name but 127.0.0.1 fails to resolve: no route out.
            args=["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
        )
        yield chromium
        await chromium.close()


@pytest.fixture(scope="module")
def screenshots() -> Path:
    """The folder the screenshots are written to, for people to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
async def tenant(app: Any) -> TenantFixture:
    return await make_tenant(app, "Docs")


async def open_page(browser: Any, base: str, path: str) -> tuple[Any, Any, Traffic]:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    traffic = Traffic(base)
    await context.route("**/*", traffic.route)
    await context.add_init_script(RECORD_REFUSALS)
    page = await context.new_page()
    page.on("pageerror", lambda error: traffic.errors.append(str(error)))
    await page.goto(f"{base}{path}")
    return context, page, traffic


async def refused(page: Any) -> set[str]:
    return set(await page.evaluate("window.__refused"))


def operation_id(base: str, method: str, path: str) -> str:
    schema = httpx.get(f"{base}/openapi.json", timeout=10).json()
    return str(schema["paths"][path][method]["operationId"])


async def authorize(page: Any, scheme: str, fill: dict[str, str]) -> None:
    """Swagger UI's "Authorize" dialog: fill one scheme's form, apply, close."""
    await page.locator(".auth-wrapper button.authorize").click()
    dialog = page.locator(".modal-ux")
    form = dialog.locator(".auth-container").filter(has_text=scheme)
    for selector, value in fill.items():
        await form.locator(selector).fill(value)
    await form.locator("button.authorize").click()
    # Authorised: the form turns into the scheme's "Logout".
    await expect(form.locator("button", has_text="Logout")).to_be_visible()
    await dialog.locator("button.btn-done").first.click()
    await expect(page.locator(".auth-wrapper button.authorize.locked")).to_be_visible()


async def sign_out(page: Any, scheme: str) -> None:
    await page.locator(".auth-wrapper button.authorize").click()
    dialog = page.locator(".modal-ux")
    form = dialog.locator(".auth-container").filter(has_text=scheme)
    await form.locator("button", has_text="Logout").click()
    await dialog.locator("button.btn-done").first.click()
    await expect(page.locator(".auth-wrapper button.authorize.unlocked")).to_be_visible()


async def try_it_out(page: Any, tag: str, operation: str, shows: str) -> None:
    """Expand an operation, "Try it out", "Execute": a 200 showing `shows`."""
    block = page.locator(f"#operations-{tag}-{operation}")
    # Deep links (the address's `#/tag/operation`) may have opened it already.
    if "is-open" not in (await block.get_attribute("class") or ""):
        await block.locator(".opblock-summary").first.click()
    await block.locator("button.try-out__btn").click()
    await block.locator("button.execute").click()
    answer = block.locator(".live-responses-table tr.response").first
    await expect(answer.locator(".response-col_status")).to_have_text("200")
    await expect(answer.locator(".response-col_description")).to_contain_text(shows)
    await block.scroll_into_view_if_needed()


async def test_swagger_ui_authorize_by_password_then_by_api_key_and_try_it_out(
    app: Any, browser: Any, server: str, screenshots: Path, tenant: TenantFixture
) -> None:
    email = tenant.owner.email
    key = await make_api_key(app, tenant.id, scopes=["tenant:read"])
    me = operation_id(server, "get", "/api/v1/auth/me")
    read_tenant = operation_id(server, "get", "/api/v1/tenant")
    context, page, traffic = await open_page(browser, server, "/docs")
    try:
        await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Dossier")
        await authorize(
            page,
            "OAuth2PasswordBearer",
            {"#oauth_username": email, "#oauth_password": PASSWORD},
        )
        # persistAuthorization: the token is kept for the next visit.
        kept = await page.evaluate("localStorage.getItem('authorized')")
        assert "OAuth2PasswordBearer" in kept
        assert "access_token" in kept
        await try_it_out(page, "auth", me, email)
        await page.screenshot(path=screenshots / "swagger-ui-password-auth-me.png")

        await sign_out(page, "OAuth2PasswordBearer")
        await authorize(page, "APIKeyHeader", {"#api_key_value": key.key})
        await try_it_out(page, "tenant", read_tenant, tenant.slug)
        await page.screenshot(path=screenshots / "swagger-ui-api-key-tenant.png")

        assert f"{server}/api/v1/auth/token" in traffic.seen
        assert traffic.outside == []
        assert await refused(page) == set()
        assert traffic.errors == []
    finally:
        await context.close()


async def test_redoc_lists_every_operation(browser: Any, server: str, screenshots: Path) -> None:
    schema = httpx.get(f"{server}/openapi.json", timeout=10).json()
    operations = {
        operation["operationId"]
        for item in schema["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    }
    context, page, traffic = await open_page(browser, server, "/redoc")
    try:
        me_id = operation_id(server, "get", "/api/v1/auth/me")
        me = page.locator(f'[id="operation/{me_id}"]')
        await expect(me).to_contain_text("/api/v1/auth/me")
        shown = await page.locator('[id^="operation/"]').evaluate_all(
            "elements => elements.map(element => element.id.slice('operation/'.length))"
        )
        assert set(shown) == operations
        await expect(page.locator("[role=menuitem]").first).to_be_visible()
        await page.screenshot(path=screenshots / "redoc.png")
        print(f"\nReDoc lists {len(shown)} operations; screenshots in {screenshots}")
        assert traffic.outside == []
        assert await refused(page) <= REFUSED_BY_POLICY
        assert traffic.errors == []
    finally:
        await context.close()
