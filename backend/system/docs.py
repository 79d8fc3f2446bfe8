"""The interactive API docs, served whole by Dossier: `/docs` (Swagger UI),
`/redoc` (ReDoc) and the JavaScript, CSS and favicon they load, so that both
pages work on a machine with no route to the internet.

The built assets are those the `fastapi-offline` package ships (Swagger UI
5.x, ReDoc 2.x, a favicon), served from its installed files under
`/docs/assets/`. No page here names an outside address: no CDN, no Google
Fonts (ReDoc falls back to the system's fonts), no online spec validator.
Each page also carries a Content-Security-Policy that lets the browser load
nothing from another origin, whatever the bundles might try: ReDoc's sidebar
credit, for one, asks for the Redocly logo from Redocly's CDN; the browser
refuses and ReDoc hides the image.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

SWAGGER_UI_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
ASSETS_URL = "/docs/assets"
# (package, folder) of the built assets, as StaticFiles reads them.
ASSETS_PACKAGE = ("fastapi_offline", "static")
SWAGGER_JS = "swagger-ui-bundle.js"
SWAGGER_CSS = "swagger-ui.css"
REDOC_JS = "redoc.standalone.js"
FAVICON = "favicon.png"

SWAGGER_UI_PARAMETERS: dict[str, Any] = {
    # "Authorize" survives a reload (Swagger UI keeps it in localStorage).
    "persistAuthorization": True,
    # Swagger UI would otherwise send the description to an online validator.
    "validatorUrl": None,
    "displayRequestDuration": True,
}

# Everything from this origin only. Inline code stays allowed (the pages start
# their bundle inline), as do `data:` and `blob:` (icons inlined in the CSS,
# ReDoc's search worker) and `eval` (none of the flows the browser test runs
# needs it; allowed so that no corner of the bundles breaks): the policy is
# about where the pages reach, not a hardening of the pages themselves.
SAME_ORIGIN_ONLY = "default-src 'self' 'unsafe-inline' 'unsafe-eval' data: blob:"

router = APIRouter(include_in_schema=False)


def _same_origin_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = SAME_ORIGIN_ONLY
    return page


def _asset(request: Request, name: str) -> str:
    return f"{request.scope.get('root_path', '')}{ASSETS_URL}/{name}"


def _openapi_url(request: Request) -> str:
    return f"{request.scope.get('root_path', '')}{request.app.openapi_url}"


@router.get(SWAGGER_UI_URL)
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI on the app's OpenAPI description; "Authorize" offers the
    OAuth2 password form (the description's `tokenUrl`) and the `X-API-Key`."""
    return _same_origin_only(
        get_swagger_ui_html(
            openapi_url=_openapi_url(request),
            title=f"{request.app.title} - Swagger UI",
            swagger_js_url=_asset(request, SWAGGER_JS),
            swagger_css_url=_asset(request, SWAGGER_CSS),
            swagger_favicon_url=_asset(request, FAVICON),
            oauth2_redirect_url=f"{request.scope.get('root_path', '')}{OAUTH2_REDIRECT_URL}",
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )
    )


@router.get(OAUTH2_REDIRECT_URL)
async def swagger_ui_oauth2_redirect() -> HTMLResponse:
    """Where Swagger UI's redirect-based OAuth2 flows land (inline page)."""
    return _same_origin_only(get_swagger_ui_oauth2_redirect_html())


@router.get(REDOC_URL)
async def redoc(request: Request) -> HTMLResponse:
    return _same_origin_only(
        get_redoc_html(
            openapi_url=_openapi_url(request),
            title=f"{request.app.title} - ReDoc",
            redoc_js_url=_asset(request, REDOC_JS),
            redoc_favicon_url=_asset(request, FAVICON),
            with_google_fonts=False,
        )
    )


def mount_docs(app: FastAPI) -> None:
    """Adds the docs pages and their assets to `app`, which must be built with
    FastAPI's own CDN-loading pages switched off (`docs_url=None`,
    `redoc_url=None`)."""
    if app.docs_url is not None or app.redoc_url is not None:
        raise RuntimeError("build the app with docs_url=None and redoc_url=None")
    app.include_router(router)
    app.mount(ASSETS_URL, StaticFiles(packages=[ASSETS_PACKAGE]), name="docs-assets")
