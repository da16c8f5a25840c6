"""The browser-less backend: httpx follows links and submits forms the way a browser would.

For server-rendered sites (like our store) it gives the same observations as the browser backend, an order of
magnitude faster, which is what training rollouts need. It cannot run JavaScript.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import httpx

from . import forms
from .errors import ActionFailed
from .origin import OriginPolicy
from .simplify import MAX_PAGE_CHARS, Element

MAX_REDIRECTS = 10
HTML_TYPES = ("text/html", "application/xhtml+xml")


def _normalize(url: str) -> str:
    """As a browser shows it: an empty path is `/`."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/")) if not parts.path else url


async def _read_capped(resp: httpx.Response, url: str) -> bytes:
    """The body, refused (`page_too_large`) once it passes MAX_PAGE_CHARS bytes: nothing past the cap is read."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.aiter_bytes():
        size += len(chunk)
        if size > MAX_PAGE_CHARS:
            raise ActionFailed("page_too_large", f"{url[:200]} is larger than the {MAX_PAGE_CHARS:,}-byte page limit")
        chunks.append(chunk)
    return b"".join(chunks)


class HttpDriver:
    """One visitor (one cookie jar) on one site, over HTTP."""

    name = "http"

    def __init__(self, policy: OriginPolicy, timeout_s: float = 15.0, user_agent: str = "shop-r1/0.1 (http backend)"):
        self.policy = policy
        self.timeout_s = timeout_s
        self.user_agent = user_agent
        self.client: httpx.AsyncClient | None = None
        self.url = "about:blank"
        self.html = ""
        self.last_timing: dict[str, float] = {}

    async def start(self) -> None:
        if self.client is None:
            self.client = httpx.AsyncClient(timeout=self.timeout_s, headers={"user-agent": self.user_agent})

    async def new_session(self) -> None:
        """Forget cookies: the next request comes from a new visitor."""
        await self.start()
        assert self.client is not None
        self.client.cookies.clear()
        self.url, self.html = "about:blank", ""

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    async def recover(self) -> None:
        """Nothing to relaunch over HTTP; reconnects happen per request."""

    async def snapshot(self) -> tuple[str, str]:
        return self.url, self.html

    async def screenshot(self) -> bytes | None:
        return None

    # --- navigation ------------------------------------------------------------------------------------------------
    async def goto(self, url: str) -> None:
        t0 = time.perf_counter()
        await self._request("GET", url)
        self.last_timing = {"action": 0.0, "navigation": (time.perf_counter() - t0) * 1000}

    @property
    def document_url(self) -> str:
        """The URL of the last page the server sent (over HTTP, always the current one)."""
        return self.url

    async def abandon(self) -> None:
        """After a timed-out action: nothing to undo, the page only changes when a response has been read whole."""

    async def _request(self, method: str, url: str, data: list[tuple[str, str]] | None = None) -> None:
        """Request `url` and follow redirects, within `timeout_s` in total (httpx's own timeouts are per read, so a
        server that trickles bytes would otherwise hold the step for as long as it likes)."""
        try:
            async with asyncio.timeout(self.timeout_s):
                await self._follow(method, url, data)
        except TimeoutError:
            raise ActionFailed("navigation_timeout", f"{url[:200]} did not load within {self.timeout_s:g}s") from None

    async def _follow(self, method: str, url: str, data: list[tuple[str, str]] | None) -> None:
        assert self.client is not None, "call start() first"
        for _ in range(MAX_REDIRECTS + 1):
            blocked = self.policy.check(url)
            if blocked:
                raise ActionFailed("blocked_origin", blocked)
            try:
                body = urlencode(data).encode() if data is not None else None
                headers = {"content-type": "application/x-www-form-urlencoded"} if body is not None else None
                request = self.client.build_request(method, url, content=body, headers=headers)
                resp = await self.client.send(request, stream=True, follow_redirects=False)
                try:
                    if resp.is_redirect and "location" in resp.headers:
                        url = urljoin(url, resp.headers["location"])
                        if resp.status_code in (301, 302, 303):
                            method, data = "GET", None
                        continue
                    ctype = resp.headers.get("content-type", "text/html").split(";")[0].strip().lower()
                    if ctype not in HTML_TYPES:
                        raise ActionFailed("navigation_error",
                                           f"{url} is not a page ({ctype}); downloads are not followed")
                    raw = await _read_capped(resp, url)
                finally:
                    await resp.aclose()
            except httpx.TimeoutException:
                raise ActionFailed("navigation_timeout", f"{url} timed out after {self.timeout_s}s") from None
            except httpx.HTTPError as exc:
                raise ActionFailed("navigation_error", f"navigation to {url} failed: {exc}") from None
            self.url, self.html = _normalize(str(resp.url)), raw.decode(resp.encoding or "utf-8", "replace")
            return
        raise ActionFailed("navigation_error", f"more than {MAX_REDIRECTS} redirects from {url}")

    # --- actions ---------------------------------------------------------------------------------------------------
    async def click(self, element: Element) -> None:
        t0 = time.perf_counter()
        node, kind = element.node, forms.input_type(element.node)
        tag = forms.tag(node)
        href = forms.attr(node, "href") if tag == "a" else None
        if href is not None:
            href = href.strip()
            if href.lower().startswith("javascript:"):
                raise ActionFailed("needs_javascript", f"{element.name!r} runs a script; the http backend cannot")
            if href.startswith("#") or not href:
                return  # same-document link: nothing changes
            await self._request("GET", urljoin(self.url, href))
        elif kind in ("checkbox", "radio"):
            forms.check(node)
            self._reserialize(node)
        elif tag == "option":
            forms.select_option(node)
            self._reserialize(node)
        elif tag in ("select", "summary") or kind in ("reset", "button"):
            return  # opening a select or pressing a scriptless button changes nothing without JavaScript
        elif tag in ("button", "input") and kind in ("submit", "image"):
            form = forms.form_owner(node)
            if form is not None:
                sub = forms.submission(form, node, self.url)
                await self._request(sub.method, sub.url, sub.data)
        else:
            raise ActionFailed("needs_javascript", f"{element.name!r} ({tag}) only works with JavaScript")
        self.last_timing = {"action": 0.0, "navigation": (time.perf_counter() - t0) * 1000}

    async def type_and_submit(self, element: Element, text: str) -> None:
        t0 = time.perf_counter()
        node = element.node
        forms.fill(node, text)
        form = forms.form_owner(node)
        if form is None:
            self._reserialize(node)  # Enter outside a form submits nothing; the typed text stays
        else:
            sub = forms.submission(form, forms.default_button(form), self.url)
            await self._request(sub.method, sub.url, sub.data)
        self.last_timing = {"action": 0.0, "navigation": (time.perf_counter() - t0) * 1000}

    def _reserialize(self, node) -> None:
        self.html = forms.serialize(forms.root(node))
