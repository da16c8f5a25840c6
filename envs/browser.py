"""The browser backend: Playwright drives a real Chromium.

Before each observation, a script stamps every element with `data-shop-id` (and `data-shop-hidden` on what is not
rendered) and copies live form state (typed values, checked boxes, selected options) into attributes. The page is then
serialised and simplified; actions find their element by its `data-shop-id`, never by fuzzy text.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from importlib import resources
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Page, Playwright, Route, async_playwright
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from . import forms
from .chromium import launch_kwargs
from .errors import ActionFailed, DriverCrashed
from .origin import OriginPolicy
from .simplify import Element

log = logging.getLogger(__name__)


def _script(name: str) -> str:
    """A JavaScript file shipped beside this module (package data), minus its leading `//` comment lines."""
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    return "\n".join(line for line in text.splitlines() if not line.startswith("//")).strip()


ANNOTATE_JS = _script("annotate.js")
"""Evaluated after each load: stamps `data-shop-id`s, marks hidden elements, returns the HTML."""

ABANDON_TIMEOUT_S = 5.0  # at most this long to reopen the page an abandoned action started from

_CRASH_MARKERS = ("has been closed", "Target closed", "crashed", "Browser closed", "Connection closed")


def _is_crash(exc: BaseException) -> bool:
    return isinstance(exc, PlaywrightError) and any(m in str(exc) for m in _CRASH_MARKERS)


REFRESH_TARGETS_JS = _script("refresh_targets.js")


class SharedBrowser:
    """One Chromium shared by many drivers (each has its own context, so its own cookies). Relaunches after a crash."""

    def __init__(self, headless: bool = True, **launch_options):
        self.headless = headless
        self.launch_options = launch_options
        # A unique tag on the command line lets a test (or an operator) find exactly this browser's processes.
        self.tag = f"--shop-r1-browser={uuid.uuid4().hex}"
        self._pw: Playwright | None = None
        self._browser: Browser | None = None
        self._lock = asyncio.Lock()
        self.launches = 0

    async def get(self) -> Browser:
        async with self._lock:
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            if self._pw is None:
                self._pw = await async_playwright().start()
            kwargs = launch_kwargs(headless=self.headless, **self.launch_options)
            kwargs["args"] = [*kwargs["args"], self.tag]
            if not self.headless:
                kwargs["args"] = [a for a in kwargs["args"] if a != "--headless"]
            self._browser = await self._pw.chromium.launch(**kwargs)
            self.launches += 1
            return self._browser

    async def close(self) -> None:
        async with self._lock:
            if self._browser is not None:
                try:
                    await self._browser.close()
                except PlaywrightError:
                    pass
                self._browser = None
            if self._pw is not None:
                await self._pw.stop()
                self._pw = None


class BrowserDriver:
    """One visitor (one browser context) in a real Chromium."""

    name = "browser"

    def __init__(
        self,
        policy: OriginPolicy,
        timeout_s: float = 15.0,
        browser: SharedBrowser | None = None,
        java_script: bool = True,
        trace_path: str | Path | None = None,
        viewport: tuple[int, int] = (1280, 900),
    ):
        self.policy = policy
        self.timeout_ms = timeout_s * 1000
        self.shared = browser or SharedBrowser()
        self._owns_browser = browser is None
        self.java_script = java_script
        self.trace_path = Path(trace_path) if trace_path else None
        self.viewport = viewport
        self.context: BrowserContext | None = None
        self.page: Page | None = None
        self.url = "about:blank"
        self._cookies: list = []
        self._blocked: list[str] = []
        self._opening_page = False
        self.document_url = "about:blank"  # the URL of the last document the server sent to the main frame
        self.last_timing: dict[str, float] = {}

    # --- lifecycle -------------------------------------------------------------------------------------------------
    async def start(self) -> None:
        if self.context is None:
            await self._open_context()

    async def _open_context(self, cookies: list | None = None) -> None:
        browser = await self.shared.get()
        ctx = await browser.new_context(
            accept_downloads=False, java_script_enabled=self.java_script,
            viewport={"width": self.viewport[0], "height": self.viewport[1]},
        )
        ctx.set_default_timeout(self.timeout_ms)
        ctx.set_default_navigation_timeout(self.timeout_ms)
        await ctx.route("**/*", self._route)
        ctx.on("page", self._on_page)
        ctx.on("request", self._on_request)
        ctx.on("response", self._on_response)
        if cookies:
            await ctx.add_cookies(cookies)
        if self.trace_path is not None:
            await ctx.tracing.start(screenshots=True, snapshots=True)
        self.context = ctx
        await self._new_page()

    async def _new_page(self) -> None:
        assert self.context is not None
        self._opening_page = True
        try:
            self.page = await self.context.new_page()
        finally:
            self._opening_page = False

    async def _route(self, route: Route) -> None:
        url = route.request.url
        inline = url.startswith(("data:", "blob:", "about:")) and not route.request.is_navigation_request()
        if self.policy.allows(url) or inline:
            await route.continue_()
        else:
            if self._main_frame_navigation(route.request):  # not a popup's or a frame's: those are not the shopper's
                self._blocked.append(url)
            await route.abort("blockedbyclient")

    def _on_page(self, page: Page) -> None:
        """Close popups. They are the page's doing, not the shopper's: the next action is not blamed for them, and
        whatever they request is still held to the origin by the route."""
        if not self._opening_page and page is not self.page:
            log.info("closing a popup to %s", page.url)
            asyncio.ensure_future(page.close())

    def _main_frame_navigation(self, request) -> bool:
        try:
            return (request.is_navigation_request() and self.page is not None
                    and request.frame == self.page.main_frame)
        except PlaywrightError:  # a request with no frame (a service worker's)
            return False

    def _on_request(self, request) -> None:
        """Every hop of a navigation, redirects included (the route never sees redirect hops): note those that left."""
        if self._main_frame_navigation(request) and not self.policy.allows(request.url):
            self._blocked.append(request.url)

    def _on_response(self, response) -> None:
        request = response.request
        if self._main_frame_navigation(request) and not 300 <= response.status < 400:
            self.document_url = response.url

    async def _close_context(self) -> None:
        ctx, self.context, self.page = self.context, None, None
        if ctx is None:
            return
        try:
            if self.trace_path is not None:
                self.trace_path.parent.mkdir(parents=True, exist_ok=True)
                await ctx.tracing.stop(path=str(self.trace_path))
            await ctx.close()
        except PlaywrightError:
            pass

    async def new_session(self) -> None:
        """A fresh context: no cookies, no history."""
        await self._close_context()
        self._cookies = []
        await self._open_context()
        self.url = "about:blank"

    async def close(self) -> None:
        await self._close_context()
        if self._owns_browser:
            await self.shared.close()

    async def recover(self) -> None:
        """Relaunch after a crash, restore the visitor's cookies and reload the last URL."""
        old, self.context, self.page = self.context, None, None
        if old is not None:
            try:
                await asyncio.wait_for(old.close(), ABANDON_TIMEOUT_S)
            except (PlaywrightError, TimeoutError):
                pass
        await self._open_context(self._cookies)
        if self.url.startswith("http"):
            try:
                assert self.page is not None
                await self.page.goto(self.url, wait_until="load")
            except PlaywrightError as exc:
                log.warning("could not restore %s after a crash: %s", self.url, exc)

    # --- observation -----------------------------------------------------------------------------------------------
    async def snapshot(self) -> tuple[str, str]:
        page = self._page()
        for attempt in range(4):
            try:
                # Stamps the DOM and returns its serialisation. A page whose script never yields would hold this
                # forever: past the timeout the page counts as dead, and `recover()` reopens the last good URL.
                try:
                    html = await asyncio.wait_for(page.evaluate(ANNOTATE_JS), self.timeout_ms / 1000)
                except TimeoutError:
                    raise DriverCrashed(f"the page did not answer within {self.timeout_ms / 1000:g}s") from None
                self._cookies = await page.context.cookies()
                break
            except PlaywrightError as exc:
                if _is_crash(exc) or page.is_closed():
                    raise DriverCrashed(str(exc)) from exc
                if attempt == 3:
                    raise
                # The page navigated under us (a late load, a script): wait for it to settle and read it again.
                try:
                    await page.wait_for_load_state("load")
                except PlaywrightError:
                    pass
        if page.url.startswith("chrome-error:") or (page.url.startswith("http") and not self.policy.allows(page.url)):
            left = page.url  # a script or a meta refresh moved the page after its load: show the last good page
            await self.abandon()
            raise ActionFailed("blocked_origin", f"blocked: the page went to {left[:200]!r}, outside the allowed "
                                                 f"origin(s) {', '.join(sorted(self.policy.origins))}")
        self.url = page.url
        return self.url, html

    async def screenshot(self) -> bytes | None:
        try:
            return await self._page().screenshot(type="png")
        except PlaywrightError as exc:
            log.warning("screenshot failed: %s", exc)
            return None

    def _page(self) -> Page:
        if self.page is None or self.page.is_closed():
            raise DriverCrashed("the page is closed")
        return self.page

    # --- actions ---------------------------------------------------------------------------------------------------
    async def goto(self, url: str) -> None:
        """Open `url`. Fails (and leaves about:blank) when any hop of its redirect chain, a script or a meta refresh
        takes the page off the allowed origins, or when it ends on the browser's error page."""
        blocked = self.policy.check(url)
        if blocked:
            raise ActionFailed("blocked_origin", blocked)
        self._blocked.clear()
        t0 = time.perf_counter()
        await self._navigate(lambda: self._page().goto(url, wait_until="load"), url)
        self.last_timing = {"action": 0.0, "navigation": (time.perf_counter() - t0) * 1000}
        left = await self._left_origin()
        if left is not None:
            await self._blank()
            raise ActionFailed("blocked_origin", f"blocked: {url[:200]!r} led to {left[:200]!r}, outside the allowed "
                                                 f"origin(s) {', '.join(sorted(self.policy.origins))}")

    async def _blank(self) -> None:
        try:
            await asyncio.wait_for(self._page().goto("about:blank"), ABANDON_TIMEOUT_S)
        except (PlaywrightError, TimeoutError):
            await self.abandon()
        self.url = self.document_url = "about:blank"

    async def abandon(self) -> None:
        """Give up on whatever the page is doing (a load that never ends, a script that never yields): close it and
        reopen the last page the shopper saw, in the same context (cookies kept), within ABANDON_TIMEOUT_S."""
        old, self.page = self.page, None
        try:
            if old is not None:
                await asyncio.wait_for(old.close(run_before_unload=False), ABANDON_TIMEOUT_S)
            await asyncio.wait_for(self._new_page(), ABANDON_TIMEOUT_S)
            if self.url.startswith("http") and self.policy.allows(self.url):
                await asyncio.wait_for(self._page().goto(self.url, wait_until="load"), ABANDON_TIMEOUT_S)
        except (PlaywrightError, TimeoutError) as exc:
            log.warning("could not reopen %s after abandoning an action: %s", self.url, exc)

    async def click(self, element: Element) -> None:
        target = forms.navigation_target(element.node, self.url)
        loc = self._page().locator(f'[data-shop-id="{element.dom_id}"]')
        if forms.tag(element.node) == "option":
            select = loc.locator("xpath=ancestor::select[1]")
            value = forms._option_value(element.node)
            await self._act(lambda: select.select_option(value=value), None)
        else:
            await self._act(lambda: loc.click(), target)

    async def type_and_submit(self, element: Element, text: str) -> None:
        target = forms.navigation_target(element.node, self.url, submit=True)
        loc = self._page().locator(f'[data-shop-id="{element.dom_id}"]')

        async def fill_and_enter():
            await loc.fill(text)
            await loc.press("Enter")

        await self._act(fill_and_enter, target)

    async def _act(self, do, target: str | None) -> None:
        """Run `do()`; when it should load a page (`target`), wait for the load, a download or a failure."""
        if target is not None:
            blocked = self.policy.check(target)
            if blocked:
                raise ActionFailed("blocked_origin", blocked)
        page = self._page()
        before = page.url
        self._blocked.clear()
        waiters: list[asyncio.Future] = []
        if target is not None:
            waiters = [asyncio.ensure_future(page.wait_for_event(ev, timeout=0)) for ev in ("load", "download")]
            waiters.append(asyncio.ensure_future(page.wait_for_event(
                "requestfailed", predicate=lambda r: r.is_navigation_request(), timeout=0)))
        t0 = time.perf_counter()
        try:
            try:
                await do()
                action_ms = (time.perf_counter() - t0) * 1000
                if waiters:
                    done, _ = await asyncio.wait(waiters, timeout=self.timeout_ms / 1000,
                                                 return_when=asyncio.FIRST_COMPLETED)
                    if not done:
                        await self._stop_loading(before)
                        raise ActionFailed("navigation_timeout", f"no page loaded within {self.timeout_ms / 1000:g}s")
                    if waiters[1] in done:
                        raise ActionFailed("navigation_error", f"{target} is a download; downloads are not allowed")
                    if waiters[2] in done and not self._blocked:
                        failed = waiters[2].result()
                        await self._restore(before)
                        blocked = self.policy.check(failed.url)
                        if blocked:  # a redirect out of the origin (Playwright does not route redirect hops)
                            raise ActionFailed("blocked_origin", blocked)
                        raise ActionFailed("navigation_error", f"loading {target} failed: {failed.failure}")
                await page.wait_for_load_state("load")
            finally:
                for w in waiters:
                    w.cancel()
                await asyncio.gather(*waiters, return_exceptions=True)
        except PlaywrightTimeout:
            await self._stop_loading(before)
            raise ActionFailed("navigation_timeout", f"no page loaded within {self.timeout_ms / 1000:g}s") from None
        except PlaywrightError as exc:
            if _is_crash(exc) or page.is_closed():
                raise DriverCrashed(str(exc)) from exc
            raise ActionFailed("navigation_error", str(exc).splitlines()[0]) from None
        total = (time.perf_counter() - t0) * 1000
        self.last_timing = {"action": action_ms, "navigation": max(0.0, total - action_ms)}
        left = await self._left_origin()
        if left is not None:  # a redirect, a script or a pending meta refresh tried to leave: go back
            await self._restore(before)
            raise ActionFailed("blocked_origin", f"blocked: {left[:200]!r} is outside the allowed origin(s)")

    async def _left_origin(self) -> str | None:
        """The off-origin URL the page went to or is about to go to after a load, or None when it stays."""
        page = self._page()
        for _ in range(2):
            if self._blocked:
                return self._blocked[0]
            if page.url.startswith("chrome-error:") or not self.policy.allows(page.url):
                return page.url
            # Chromium may start a `<meta http-equiv=refresh>` only after the load event: read its target now.
            try:
                targets = await page.evaluate(REFRESH_TARGETS_JS)
            except PlaywrightError:  # the page is navigating right now: let it land, then look again
                try:
                    await page.wait_for_load_state("load")
                except PlaywrightError:
                    pass
                continue
            return next((t for t in targets if t.startswith("http") and not self.policy.allows(t)), None)
        return None

    async def _stop_loading(self, before: str) -> None:
        """Abandon a slow load and go back to the page the action started from (never `window.stop()`: evaluating
        anything on a page whose load hangs can hang as well)."""
        self.url = before
        await self.abandon()

    async def _navigate(self, go, url: str) -> None:
        try:
            await go()
        except PlaywrightTimeout:
            raise ActionFailed("navigation_timeout", f"{url} did not load within {self.timeout_ms / 1000:g}s") from None
        except PlaywrightError as exc:
            if _is_crash(exc) or (self.page is not None and self.page.is_closed()):
                raise DriverCrashed(str(exc)) from exc
            if self._blocked:
                raise ActionFailed("blocked_origin", f"blocked: navigation to {self._blocked[0][:200]!r}") from None
            raise ActionFailed("navigation_error", str(exc).splitlines()[0]) from None

    async def _restore(self, url: str) -> None:
        if url.startswith("http") and self.policy.allows(url):
            try:
                await self._page().goto(url, wait_until="load")
            except PlaywrightError as exc:
                log.warning("could not return to %s: %s", url, exc)
