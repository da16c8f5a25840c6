"""Plumbing shared by the store's routers: the variant dependency, templates, dependencies, sessions and safe URLs."""

from __future__ import annotations

import asyncio
import logging
import math
import re
import zlib
from collections.abc import Mapping
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, quote_from_bytes, urlencode, urlsplit

import jinja2
from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .analytics import Analytics
from .catalog import Catalog
from .models import Product, SortKey
from .state import StateStore
from .variants import VARIANTS as VARIANTS  # re-exported: variants are defined in `variants`
from .variants import Variant
from .variants import get_variant_spec as get_variant_spec

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"

STORE_NAME = "ShopR1"
SESSION_COOKIE = "shop_sid"
_SID_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")
MAX_QUERY_CHARS = 500  # longer search text is cut before it reaches the search engine and the page
MAX_ASIN_CHARS = 64


class PageError(HTTPException):
    """An HTTP error shown as a friendly page, with links that help the visitor carry on: [(text, href), ...]."""

    def __init__(self, status_code: int, detail: str, links: list[tuple[str, str]] | None = None):
        super().__init__(status_code, detail)
        self.links = links or []


# -- dependencies -------------------------------------------------------------------------------------------------

def get_catalog(request: Request) -> Catalog:
    return request.app.state.catalog


def get_state(request: Request) -> StateStore:
    return request.app.state.store


def get_analytics(request: Request) -> Analytics:
    return request.app.state.analytics


def get_variant(request: Request) -> Variant:
    return request.app.state.variant


def get_sid(request: Request) -> str:
    """The visitor's session id, set by `SessionMiddleware`."""
    return request.state.sid


CatalogDep = Annotated[Catalog, Depends(get_catalog)]
StateDep = Annotated[StateStore, Depends(get_state)]
AnalyticsDep = Annotated[Analytics, Depends(get_analytics)]
VariantDep = Annotated[Variant, Depends(get_variant)]
SidDep = Annotated[str, Depends(get_sid)]


def request_path(request: Request) -> str:
    """The path with its query string, as the visitor requested it."""
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def track(request: Request, type: str, payload: dict[str, Any] | None = None) -> None:
    """Record an analytics event under this visitor's analytics id (HEAD requests are not visits and record nothing).

    The event log never sees the session cookie: its ids identify visitors but open nothing.
    """
    if request.method == "HEAD":
        return
    request.app.state.analytics.record(request.state.visitor, request.app.state.variant.name, type,
                                       request_path(request), payload)


def page_view(request: Request) -> None:
    """Router dependency of every HTML route: log a page view (GET only)."""
    store: StateStore = request.app.state.store
    if request.method == "GET":
        request.state.previous_page = store.swap_memo(request.state.sid, "page", request.url.path)
        track(request, "page_view", {})


# -- sessions -----------------------------------------------------------------------------------------------------

_ASCII_INT = re.compile(r"[0-9]{1,12}")


def ascii_int(raw: str | None) -> int | None:
    """`raw` as a whole number when it is 1 to 12 ASCII digits (surrounding spaces allowed), else None.

    Stricter than `str.isdigit`/`int`, which accept '²' (and then fail) or '٣', '+3' and '1_0'.
    """
    text = (raw or "").strip(" \t")
    return int(text) if _ASCII_INT.fullmatch(text) else None


def valid_sid(value: str | None) -> bool:
    """Whether `value` has the shape of a session id the server issues (it may still be unknown or expired)."""
    return value is not None and _SID_RE.fullmatch(value) is not None


class SessionMiddleware:
    """Gives every visitor a server-issued random session id in an HttpOnly, SameSite=Lax cookie; sets security headers.

    A pure ASGI middleware (no request body buffering). The cookie is honoured only when it names a live session the
    server issued (`StateStore.open_session`); anything else (a made-up id, an expired one, junk) gets a fresh session
    and a new cookie. A query string with raw non-UTF-8 bytes is percent-encoded (Starlette's `request.url` would fail
    on it).
    """

    def __init__(self, app: ASGIApp, cookie: str = SESSION_COOKIE):
        self.app = app
        self.cookie = cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        for name, value in scope.get("headers", ()):
            if name == b"cookie":
                try:
                    jar = SimpleCookie(value.decode("latin-1"))
                except Exception:  # a malformed Cookie header is the visitor's problem, not a 500
                    continue
                if self.cookie in jar:
                    given = jar[self.cookie].value
        query = scope.get("query_string", b"")
        try:
            query.decode("utf-8")
        except UnicodeDecodeError:  # raw non-UTF-8 bytes (a client that did not percent-encode): encode them for it
            scope["query_string"] = quote_from_bytes(query, safe="&=+%;/?:@,$!*'()~").encode("ascii")
        app_state = scope["app"].state
        session = await run_in_threadpool(app_state.store.open_session, given if valid_sid(given) else None,
                                          app_state.variant.name)
        state = scope.setdefault("state", {})
        state["sid"], state["visitor"] = session.sid, session.visitor

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if session.fresh:
                    headers.append("set-cookie", f"{self.cookie}={session.sid}; Path=/; HttpOnly; SameSite=Lax")
                headers.setdefault("x-content-type-options", "nosniff")
                headers.setdefault("referrer-policy", "same-origin")
                headers.setdefault("content-security-policy",
                                   "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self';"
                                   " frame-ancestors 'none'; base-uri 'none'")
            await send(message)

        await self.app(scope, receive, send_with_headers)


class DelayMiddleware:
    """Answers every page `app.state.variant.delay_s` seconds later (the `slow` variant); assets and the API at once.

    The wait is an `asyncio.sleep`: other visitors are served meanwhile, as on a slow backend.
    """

    _UNDELAYED = ("/static/", "/img/", "/api/")

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            delay = scope["app"].state.variant.delay_s
            if delay > 0 and not scope.get("path", "").startswith(self._UNDELAYED):
                await asyncio.sleep(delay)
        await self.app(scope, receive, send)


# -- URLs ---------------------------------------------------------------------------------------------------------

SEARCH_PARAM_ORDER = ("q", "department", "brand", "price_min", "price_max", "min_rating", "sort", "page")
REFINEMENT_PARAMS = ("department", "brand", "price_min", "price_max", "min_rating")


def fmt_number(x: float | int) -> str:
    """25.0 -> '25', 24.5 -> '24.5': the short form used in URLs and labels."""
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    if isinstance(x, float):
        return f"{x:.2f}".rstrip("0").rstrip(".")
    return str(x)


def search_url(params: Mapping[str, Any], **changes: Any) -> str:
    """The /search URL for `params` with `changes` applied (None removes a parameter). Defaults are left out."""
    merged = {**params, **changes}
    items: list[tuple[str, str]] = []
    for key in SEARCH_PARAM_ORDER:
        value = merged.get(key)
        if value is None or value == "" or (key == "sort" and value == "relevance") or (key == "page" and value == 1):
            continue
        items.append((key, fmt_number(value) if isinstance(value, int | float) else str(value)))
    return "/search?" + urlencode(items) if items else "/search"


def slug(text: str, sep: str = "-") -> str:
    """Lower-case word characters joined by `sep`: 'Navy Blue' -> 'navy-blue'."""
    return sep.join(re.findall(r"\w+", text.lower()))


def option_key(group: str) -> str:
    """The query/form parameter name of an option group: 'Item Size' -> 'item_size'."""
    return slug(group, "_") or "option"


def product_url(asin: str, selection: Mapping[str, str] | None = None, back: str | None = None,
                groups: Mapping[str, list[str]] | None = None) -> str:
    """/product/{asin} with the chosen options (as value slugs) and the results page to go back to."""
    items: list[tuple[str, str]] = []
    for group, value in (selection or {}).items():
        if groups is None or group in groups:
            items.append((option_key(group), slug(value) or value))
    if back:
        items.append(("from", back))
    url = f"/product/{quote(asin, safe='')}"
    return f"{url}?{urlencode(items)}" if items else url


def resolve_option(values: list[str], given: str) -> str | None:
    """The option value that `given` names: the exact value, else the one whose slug matches. None if none does."""
    if given in values:
        return given
    wanted = slug(given)
    if not wanted:
        return None
    for value in values:
        if slug(value) == wanted:
            return value
    lowered = given.casefold()
    return next((v for v in values if v.casefold() == lowered), None)


def safe_back_path(value: str | None) -> str | None:
    """`value` if it is a same-site results or home path ('/search?...' or '/'), else None: never an open redirect."""
    if not value or len(value) > 4096 or any(ord(c) < 32 or c == "\\" for c in value):
        return None
    if not value.startswith("/") or value.startswith("//"):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme or parts.netloc or parts.path not in ("/", "/search"):
        return None
    return value


# -- presentation helpers -----------------------------------------------------------------------------------------

def money(x: float) -> str:
    return f"${x:,.2f}"


def star_text(rating: float) -> str:
    """Five characters of stars for display, rounded to the nearest whole star: 4.3 -> '★★★★☆'."""
    full = max(0, min(5, math.floor(rating + 0.5)))
    return "★" * full + "☆" * (5 - full)


def initials(title: str) -> str:
    words = [w for w in re.findall(r"[^\W_]+", title) if w]
    letters = "".join(w[0] for w in words[:2]).upper()
    return letters or "?"


DEPARTMENT_COLOURS = (
    ("#dbeafe", "#1e3a8a"), ("#dcfce7", "#14532d"), ("#fef3c7", "#78350f"), ("#fce7f3", "#831843"),
    ("#ede9fe", "#4c1d95"), ("#e0f2fe", "#0c4a6e"), ("#ffedd5", "#7c2d12"), ("#f1f5f9", "#0f172a"),
    ("#ccfbf1", "#134e4a"), ("#fee2e2", "#7f1d1d"),
)


def department_colours(department: str) -> tuple[str, str]:
    """A (background, foreground) pair that is stable for a department name."""
    return DEPARTMENT_COLOURS[zlib.crc32(department.encode("utf-8", "replace")) % len(DEPARTMENT_COLOURS)]


# -- templates ----------------------------------------------------------------------------------------------------

SORT_LABELS: dict[SortKey, str] = {
    "relevance": "Relevance",
    "price_asc": "Price: Low to High",
    "price_desc": "Price: High to Low",
    "rating": "Avg. Customer Review",
}

PRICE_BUCKETS: tuple[tuple[float | None, float | None, str], ...] = (
    (None, 25, "Under $25"),
    (25, 50, "$25 to $50"),
    (50, 100, "$50 to $100"),
    (100, 200, "$100 to $200"),
    (200, None, "$200 & above"),
)
RATING_STEPS = (4, 3, 2, 1)


def _make_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,  # every template is HTML: all interpolated text is escaped
        auto_reload=False,  # compiled once, never re-stat'ed
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.globals.update(
        STORE_NAME=STORE_NAME, search_url=search_url, product_url=product_url, money=money, star_text=star_text,
        fmt_number=fmt_number, option_key=option_key, slug=slug, SORT_LABELS=SORT_LABELS,
        PRICE_BUCKETS=PRICE_BUCKETS, RATING_STEPS=RATING_STEPS, image_url=image_url,
    )
    return env


def image_url(product: Product) -> str:
    return f"/img/{quote(product.asin, safe='')}.svg"


templates = _make_env()


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a page with the context every page needs (variant, cart count, search box text)."""
    app_state = request.app.state
    sid = getattr(request.state, "sid", None)
    base = {
        "request_path": request.url.path,
        "variant": app_state.variant,
        "cart_count": app_state.store.cart_count(sid) if sid else 0,
        "q": "",
        "page_name": template.removesuffix(".html"),
    }
    html = templates.get_template(template).render({**base, **context})
    return HTMLResponse(html, status_code=status_code)
