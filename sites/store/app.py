"""The store web app: server-rendered HTML (FastAPI + Jinja2) that works with JavaScript disabled.

URL map (see the routers for details):

    GET  /                          home: search bar, departments, featured products
    GET  /search?q=&department=&brand=&price_min=&price_max=&min_rating=&sort=&page=
    GET  /product/{asin}?{group}={value-slug}&from=/search?...
    POST /cart/add                  asin, quantity, option_{group}, from  -> 303 /cart?added={line}
    POST /buy-now                   same fields                           -> 303 /checkout
    GET  /cart                      lines, quantities, subtotal
    POST /cart/update               line_id, quantity                     -> 303 /cart
    POST /cart/remove               line_id                               -> 303 /cart
    GET  /checkout                  prefilled shipping form
    POST /checkout                  shipping fields                       -> 303 /order/{order_id}
    GET  /order/{order_id}          confirmation (only for the session that placed it)
    GET  /api/analytics/sessions    JSON: sessions with event counts
    GET  /api/analytics/sessions/{sid}   JSON: one session's events in order
    GET  /api/products?offset=&limit=    JSON: a page of the product export, in catalog order
    GET  /img/{asin}.svg            generated product image
    GET  /static/...                vendored CSS and icons
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .analytics import Analytics
from .catalog import Catalog
from .routers import analytics_api, assets, cart, home, product, products_api, search
from .state import StateStore
from .web import (
    MAX_QUERY_CHARS,
    STATIC_DIR,
    DelayMiddleware,
    PageError,
    SessionMiddleware,
    get_variant_spec,
    render,
    search_url,
    track,
)

log = logging.getLogger(__name__)

ERROR_TITLES = {
    400: "Something is wrong with that request",
    404: "Page not found",
    405: "That action isn't available here",
    413: "That request is too large",
    422: "Something is wrong with that request",
    500: "Something went wrong on our side",
}
FEATURED_COUNT = 8


def _friendly_validation_errors(exc: RequestValidationError) -> list[str]:
    """One sentence per invalid parameter: which one, what was wrong, and the value that came (shortened)."""
    messages = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ()) if part not in ("query", "path", "body", "form")]
        name = ".".join(loc) or "request"
        given = err.get("input")
        shown = ""
        if isinstance(given, str | int | float) and not isinstance(given, bool):
            text = str(given)
            shown = f" (got “{text[:40]}{'…' if len(text) > 40 else ''}”)"
        msg = str(err.get("msg", "is invalid"))
        messages.append(f"“{name}”: {msg[:1].lower() + msg[1:]}{shown}.")
    return messages[:10]


def _error_page(request: Request, status: int, messages: list[str],
                links: list[tuple[str, str]] | None = None) -> HTMLResponse:
    if getattr(request.state, "sid", None):
        track(request, "error", {"status": status, "messages": messages[:3]})
    return render(request, "error.html", status_code=status, status=status,
                  title=ERROR_TITLES.get(status, "Something is wrong with that request"), messages=messages,
                  links=links or [])


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def http_exception_handler(request: Request, exc: StarletteHTTPException) -> Response:
    """HTTP errors as a friendly HTML page with the right status (JSON under /api/)."""
    if _wants_json(request):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
    detail = exc.detail if isinstance(exc.detail, str) else ""
    if exc.status_code == 404 and (not detail or detail == "Not Found"):
        detail = "We couldn't find the page you asked for."
    elif exc.status_code == 405:
        detail = "That address doesn't accept this kind of request. Use the buttons on the page instead."
    links = exc.links if isinstance(exc, PageError) else []
    response = await run_in_threadpool(_error_page, request, exc.status_code, [detail] if detail else [], links)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def validation_exception_handler(request: Request, exc: RequestValidationError) -> Response:
    """Invalid query/path/form values: a 422 page that says which parameter and why (not a JSON traceback)."""
    if _wants_json(request):
        return JSONResponse({"detail": _friendly_validation_errors(exc)}, status_code=422)
    links = []
    if request.url.path == "/search" and request.query_params.get("q"):
        q = " ".join(request.query_params["q"].split())[:MAX_QUERY_CHARS]
        links.append((f"Search for “{q[:60]}” without the other settings", search_url({"q": q})))
    return await run_in_threadpool(_error_page, request, 422, _friendly_validation_errors(exc), links)


async def server_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    if _wants_json(request):
        return JSONResponse({"detail": "internal error"}, status_code=500)
    try:
        return render(request, "error.html", status_code=500, status=500, title=ERROR_TITLES[500],
                      messages=["Please try again, or go back to the home page."], links=[])
    except Exception:  # the page itself cannot be drawn: answer plainly
        log.exception("could not render the error page")
        return HTMLResponse("<!doctype html><title>Error</title><h1>Something went wrong on our side</h1>"
                            '<p><a href="/">Back to the home page</a></p>', status_code=500)


def close_app(app: FastAPI) -> None:
    """Flush the event log and close the state databases. Idempotent; the app must not serve afterwards."""
    app.state.analytics.close()
    app.state.store.close()


def create_app(catalog_path: str | Path, variant: str = "a", state_path: str | Path | None = None,
               analytics_access: str = "open", analytics_token: str | None = None,
               page_delay: float | None = None) -> FastAPI:
    """The store app for one catalog and one variant (`sites.store.variants`: a, b, or a known-effect variant).

    The catalog is opened (read-only) here and shared; departments and featured products are computed once.
    `state_path` is a SQLite file for sessions, carts, orders and analytics; None keeps them in memory.
    `analytics_access` is 'open', 'token' (needs `analytics_token`) or 'off': who may read /api/analytics
    (`analytics_api.access_mode` picks it from the listening host).
    `page_delay` overrides the variant's page delay in seconds (`slow` answers 1.5 s later; tests use less).
    """
    if analytics_access not in ("open", "token", "off") or (analytics_access == "token") != bool(analytics_token):
        raise ValueError("Expect analytics_access 'open' or 'off' without a token, or 'token' with one; actually: "
                         f"{analytics_access!r} with {'a' if analytics_token else 'no'} token")
    spec = get_variant_spec(variant, delay_s=page_delay)
    catalog = Catalog(catalog_path)
    store = StateStore(state_path)
    analytics = Analytics(state_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("store up: catalog %s (%d products), variant %s", catalog.path, len(catalog), spec.name)
        yield
        # Flush, don't close: the same app object may be started again (TestClient blocks, a restarted server).
        # Whoever owns the app closes it for good with `close_app`.
        analytics.flush()

    app = FastAPI(title="ShopR1 store", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.catalog = catalog
    app.state.store = store
    app.state.analytics = analytics
    app.state.variant = spec
    app.state.analytics_access = analytics_access
    app.state.analytics_token = analytics_token
    app.state.departments = catalog.departments()
    app.state.featured = catalog.featured(FEATURED_COUNT)
    image_dir = catalog.meta.get("image_dir")
    app.state.image_dir = (catalog.path.parent / image_dir).resolve() if image_dir else None

    for module in (home, search, product, cart, analytics_api, products_api, assets):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    handlers: dict[Any, Any] = {
        StarletteHTTPException: http_exception_handler,
        RequestValidationError: validation_exception_handler,
        Exception: server_error_handler,
    }
    for exc_type, handler in handlers.items():
        app.add_exception_handler(exc_type, handler)
    app.add_middleware(DelayMiddleware)
    app.add_middleware(SessionMiddleware)
    return app
