"""Recording a human shopper: a (headed) browser in which a person shops, written as a schema-v1 trace.

Each page the person sees is annotated and simplified exactly as the env does (`envs.browser.ANNOTATE_JS`, then
`envs.simplify.simplify(page.content())`), so the recorded observations and element names are the ones a policy
would see. An init script reports the person's actions to Python (`page.expose_binding`):

- a **click** (capture phase) on an element: the element and its ancestors' `data-shop-id`s are sent, and the first
  that names an interactable of the simplified page becomes `{"type": "click", "name": ...}`. Clicks that are not
  actions are dropped (in the page, so they do not use up a rationale): into a text box (focusing it), on text or
  blank space, on a `<select>` (choosing an option is reported by its `change` as a click on the option, which is
  how the env picks options);
- **Enter in a text input**: `{"type": "type_and_submit", "name": <input>, "text": <its value>}`; the click the
  browser then fires on the form's default button is not recorded twice. Pressing a submit button of a form in
  which the person typed into exactly one text box is recorded the same way (the paper's `type_and_submit` is
  "type, then submit"); any other form `submit` falls back to the focused input or the submitter.

Rationales: by default none (`rationale` is null). With `ask_rationale=True` a small "Why?" box floats in the
page's corner (in a shadow root, kept out of the observation and of the element names); whatever the person wrote
there when they act becomes that step's rationale, and the box is cleared; what is in the box when they close the
tab becomes the rationale of the final `terminate`.

The session ends when the person reaches an order confirmation (`success_url`, outcome `purchase`) or closes the
tab or the browser (a final `terminate` step, outcome `terminate`). Navigation that is not a click or a submit (the
address bar, Back/Forward) is not in the paper's action space: it is not recorded (a warning is logged), and a
replay of such a session will diverge there.

Steps are written one action behind (a step's `next_url` is known once the next page has loaded).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, Page, ViewportSize
from playwright.async_api import Error as PlaywrightError

from agent.runtime.trace import EndRecord, SessionHeader, StepRecord, TraceWriter, now_iso
from envs.browser import ANNOTATE_JS, SharedBrowser
from envs.simplify import Element, SimplifiedPage, simplify

__all__ = ["Recorder", "record"]

log = logging.getLogger(__name__)

BINDING = "__shopR1Record"
OVERLAY_ID = "shop-r1-recorder"
_OVERLAY_HTML = re.compile(rf'<div id="{OVERLAY_ID}"[^>]*>\s*</div>')

RECORDER_JS = "\n".join(line for line in resources.files(__package__).joinpath("recorder.js").read_text(
    encoding="utf-8").splitlines() if not line.startswith("//"))
"""Injected into every page of a recording (package data `agent/record/recorder.js`)."""


@dataclass
class _Snapshot:
    """One page as the person saw it (and the env would)."""

    doc: str
    index: int
    url: str
    title: str
    page: SimplifiedPage
    by_id: dict[str, Element]
    ready: float
    screenshot: str | None


@dataclass
class _Action:
    snap: _Snapshot
    action: dict[str, Any]
    rationale: str | None
    at: float


class Recorder:
    """A recording session. `await start()`, let the person shop, `await wait()` (or `await stop()`).

    Tests drive `recorder.page` with Playwright and call `await recorder.settle()` after each action, so that the
    next page is annotated before they act on it (a person is never that fast).
    """

    def __init__(
        self,
        site_url: str,
        out_dir: str | Path,
        *,
        headless: bool = False,
        session_id: str | None = None,
        persona: dict[str, Any] | None = None,
        intent: str | dict[str, Any] | None = None,
        ask_rationale: bool = False,
        screenshots: bool = False,
        success_url: str = r"/order/[^/?#]+",
        viewport: tuple[int, int] = (1280, 900),
    ):
        self.site_url = site_url
        self.out_dir = Path(out_dir)
        self.headless = headless
        self.session_id = session_id or f"human-{datetime.now(UTC):%Y%m%d-%H%M%S}"
        self.persona = persona or {"persona_id": "human", "name": "Human tester"}
        self.intent = {"text": intent} if isinstance(intent, str) else (intent or {"text": "(not stated)"})
        self.ask_rationale = ask_rationale
        self.screenshots = screenshots
        self.success = re.compile(success_url)
        self.viewport = viewport
        self.outcome: str | None = None
        self.steps = 0
        self._browser = SharedBrowser(headless=headless)
        self._context: BrowserContext | None = None
        self._page: Page | None = None
        self._writer: TraceWriter | None = None
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._snaps: dict[str, _Snapshot] = {}
        self._order: list[str] = []
        self._pending: _Action | None = None
        self._draft: tuple[str, str] | None = None  # (doc, text) of the "Why?" box not yet sent with an action
        self._busy = False
        self._task: asyncio.Task | None = None
        self._ended = asyncio.Event()

    @property
    def page(self) -> Page:
        if self._page is None:
            raise RuntimeError("the recorder is not started; call start() first")
        return self._page

    @property
    def path(self) -> Path:
        return self.out_dir / "sessions" / f"{self.session_id}.jsonl"

    # --- lifecycle -------------------------------------------------------------------------------------------------
    async def start(self) -> Page:
        """Open the browser on the site and start recording."""
        if self.path.exists():
            raise FileExistsError(f"{self.path} exists; pick another --session-id or --out")
        self._write_run_json()
        self._writer = TraceWriter(self.out_dir, self.session_id)
        self._writer.write(SessionHeader(
            session_id=self.session_id, persona=self.persona, intent=self.intent, site=self.site_url,
            policy="human", backend="browser", recorder={"ask_rationale": self.ask_rationale},
        ))
        browser = await self._browser.get()
        size: ViewportSize = {"width": self.viewport[0], "height": self.viewport[1]}
        self._context = await browser.new_context(viewport=size if self.headless else None,
                                                  no_viewport=not self.headless)
        await self._context.expose_binding(BINDING, self._on_binding)
        script = (RECORDER_JS.replace("%ANNOTATE%", ANNOTATE_JS.strip())
                  .replace("%ASK%", json.dumps(self.ask_rationale))
                  .replace("%OVERLAY%", OVERLAY_ID).replace("%BINDING%", BINDING))
        await self._context.add_init_script(script)
        self._context.on("page", self._on_new_page)
        self._context.on("close", lambda _ctx: self._queue.put_nowait(("close", None)))
        self._page = await self._context.new_page()
        self._page.on("load", lambda _page: self._queue.put_nowait(("load", None)))
        self._page.on("close", lambda _page: self._queue.put_nowait(("close", None)))
        self._task = asyncio.ensure_future(self._run())
        await self._page.goto(self.site_url, wait_until="load")
        log.info("recording session %s on %s into %s", self.session_id, self.site_url, self.path)
        return self._page

    async def wait(self) -> str:
        """Wait until the session ends (purchase, or the person closed the tab or browser); return the outcome."""
        await self._ended.wait()
        await self._shutdown()
        return self.outcome or "terminate"

    async def stop(self, error: str | None = None) -> str:
        """End the session now (as if the person closed the tab) unless it has ended; close the browser."""
        if not self._ended.is_set() and self._task is not None and not self._task.done():
            self._queue.put_nowait(("close", error))
            try:
                await asyncio.wait_for(self._ended.wait(), 15)
            except TimeoutError:
                log.warning("the recorder did not finish within 15 s; the trace may lack its end line")
        await self._shutdown()
        return self.outcome or "terminate"

    async def settle(self, timeout: float = 15.0) -> None:
        """Wait until the page in the tab is loaded and recorded, and every reported action has been handled."""
        deadline = time.monotonic() + timeout
        while not self._ended.is_set():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the recorder did not settle within {timeout:g}s")
            try:
                await self.page.wait_for_load_state("load")
                doc = await self.page.evaluate("() => window.__shopR1Doc || null")
            except PlaywrightError:
                doc = None
            await asyncio.sleep(0.05)  # let binding calls already in flight arrive
            if doc in self._snaps and self._queue.empty() and not self._busy:
                return

    async def __aenter__(self) -> Recorder:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    # --- events ----------------------------------------------------------------------------------------------------
    async def _on_binding(self, source: dict[str, Any], payload: dict[str, Any]) -> None:
        if source.get("page") is self._page and isinstance(payload, dict):
            self._queue.put_nowait(("action", payload))

    def _on_new_page(self, page: Page) -> None:
        if self._page is not None and page is not self._page:
            log.warning("a new tab was opened (%s); only the first tab is recorded, closing it", page.url)
            asyncio.ensure_future(page.close())

    async def _run(self) -> None:
        while not self._ended.is_set():
            kind, payload = await self._queue.get()
            self._busy = True
            try:
                if kind == "load":
                    await self._on_load()
                elif kind == "action":
                    await self._on_action(payload)
                elif kind == "close":
                    await self._drain()
                    await self._finish("terminate", payload)
            except Exception:  # a recorder bug must not lose the session: log it and keep recording
                log.exception("recorder: handling %s failed", kind)
            finally:
                self._busy = False

    async def _drain(self) -> None:
        """Handle actions already reported (binding calls arrive a moment after the page events)."""
        await asyncio.sleep(0.15)
        while not self._queue.empty():
            kind, payload = self._queue.get_nowait()
            if kind == "action":
                await self._on_action(payload)

    async def _on_load(self) -> None:
        snap = await self._snapshot()
        if snap is None:
            return
        if self.success.search(snap.url):
            await self._drain()
            await self._finish("purchase")

    async def _snapshot(self) -> _Snapshot | None:
        """Annotate and simplify the page in the tab (once per document)."""
        page = self.page
        for _ in range(4):
            try:
                doc = await page.evaluate("() => window.__shopR1Doc || null")
                if doc is None or doc in self._snaps:
                    return self._snaps.get(doc) if doc else None
                await page.evaluate(ANNOTATE_JS)
                html = await page.content()
                url = page.url
                if await page.evaluate("() => window.__shopR1Doc || null") != doc:
                    continue  # navigated meanwhile
                break
            except PlaywrightError as exc:
                if page.is_closed():
                    return None
                log.debug("snapshot retry: %s", exc)
                try:
                    await page.wait_for_load_state("load")
                except PlaywrightError:
                    return None
        else:
            return None
        if not url.startswith(("http://", "https://")):
            return None
        simple = simplify(_OVERLAY_HTML.sub("", html))
        index = len(self._order)
        shot = await self._screenshot(index) if self.screenshots else None
        snap = _Snapshot(doc=doc, index=index, url=url, title=simple.title, page=simple,
                         by_id={e.dom_id: e for e in simple.elements.values() if e.dom_id is not None},
                         ready=time.perf_counter(), screenshot=shot)
        self._snaps[doc] = snap
        self._order.append(doc)
        log.debug("page %d: %s (%d names)", index, url, len(simple.elements))
        return snap

    async def _screenshot(self, index: int) -> str | None:
        rel = Path("screenshots") / self.session_id / f"{index:03d}.png"
        try:
            png = await self.page.screenshot(type="png")
        except PlaywrightError as exc:
            log.warning("screenshot failed: %s", exc)
            return None
        (self.out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (self.out_dir / rel).write_bytes(png)
        return rel.as_posix()

    async def _on_action(self, payload: dict[str, Any]) -> None:
        doc = payload.get("doc")
        if payload.get("kind") == "draft":  # the "Why?" box as typed so far: the rationale of a final terminate
            why = payload.get("rationale")
            self._draft = (doc, why) if isinstance(doc, str) and isinstance(why, str) and why else None
            return
        snap = self._snaps.get(doc) if isinstance(doc, str) else None
        if snap is None:
            snap = await self._snapshot()  # acted before the load event: still on that page?
            if snap is None or snap.doc != doc:
                log.warning("dropped a %s on a page that was never recorded (%s)", payload.get("kind"),
                            payload.get("url"))
                return
        action = self._to_action(snap, payload)
        if action is None:
            return
        why = payload.get("rationale")
        if self._pending is not None and snap.index > self._pending.snap.index + 1:
            log.warning("page %s was reached without a recorded click or submit (address bar, Back?); "
                        "a replay will diverge there", self._snaps[self._order[self._pending.snap.index + 1]].url)
        self._flush(next_doc=snap.doc)
        self._draft = None
        self._pending = _Action(snap=snap, action=action, rationale=why if isinstance(why, str) else None,
                                at=time.perf_counter())
        log.info("step %d: %s", self.steps + 1, json.dumps(action))

    @staticmethod
    def _to_action(snap: _Snapshot, payload: dict[str, Any]) -> dict[str, Any] | None:
        ids = [str(i) for i in payload.get("ids") or []]
        element = next((snap.by_id[i] for i in ids if i in snap.by_id), None)
        kind = payload.get("kind")
        if element is None:
            log.debug("ignored a %s on an unnamed element", kind)
            return None
        if kind == "type_and_submit":
            if element.kind != "input":
                return None
            return {"type": "type_and_submit", "name": element.name, "text": str(payload.get("text", ""))}
        if element.kind == "input":
            return None  # a click into a text box focuses it; typing and Enter is the action
        return {"type": "click", "name": element.name}

    def _flush(self, next_doc: str | None) -> None:
        """Write the pending step. Its next page: the same page if the next action is on it, else the page loaded
        after it (if any)."""
        pending, self._pending = self._pending, None
        if pending is None or self._writer is None:
            return
        snap = pending.snap
        if next_doc == snap.doc or snap.index + 1 >= len(self._order):
            next_url = snap.url
        else:
            next_url = self._snaps[self._order[snap.index + 1]].url
        self.steps += 1
        self._writer.write(StepRecord(
            step=self.steps, url=snap.url, title=snap.title, observation=snap.page.html, rationale=pending.rationale,
            action=pending.action, valid=True, timing_ms={"human": (pending.at - snap.ready) * 1000},
            screenshot=snap.screenshot, next_url=next_url,
        ))

    async def _finish(self, outcome: str, error: str | None = None) -> None:
        if self._ended.is_set() or self._writer is None:
            return
        self._flush(next_doc=None)
        last = self._snaps[self._order[-1]] if self._order else None
        if outcome == "terminate" and last is not None:
            self.steps += 1
            why = self._draft[1] if self._draft and self._draft[0] == last.doc else None
            self._writer.write(StepRecord(
                step=self.steps, url=last.url, title=last.title, observation=last.page.html, rationale=why,
                action={"type": "terminate"}, valid=True, screenshot=last.screenshot, next_url=last.url,
            ))
        self._writer.write(EndRecord(
            outcome=outcome, steps=self.steps, error=error, final_url=last.url if last else None,
            final_screenshot=last.screenshot if last else None, trace_ms=self._writer.write_ms,
        ))
        self._writer.close()
        self.outcome = outcome
        self._ended.set()
        log.info("session %s ended: %s after %d steps (%s)", self.session_id, outcome, self.steps, self.path)

    async def _shutdown(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._context is not None:
            try:
                await self._context.close()
            except PlaywrightError:
                pass
            self._context = None
        await self._browser.close()
        if self._writer is not None:
            self._writer.close()

    def _write_run_json(self) -> None:
        run_json = self.out_dir / "run.json"
        if run_json.exists():
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        run_json.write_text(json.dumps({
            "config": {"site": self.site_url, "backend": "browser", "screenshots": self.screenshots},
            "policy": {"name": "human"}, "recorded": True, "started_at": now_iso(),
        }, indent=2))


def record(
    site_url: str,
    out_dir: str | Path,
    headless: bool = False,
    *,
    session_id: str | None = None,
    intent: str | None = None,
    ask_rationale: bool = False,
    screenshots: bool = True,
) -> Path:
    """Open a browser on `site_url`, record the person shopping until they buy or close it; return the trace path."""

    async def main() -> Path:
        rec = Recorder(site_url, out_dir, headless=headless, session_id=session_id, intent=intent,
                       ask_rationale=ask_rationale, screenshots=screenshots)
        await rec.start()
        try:
            await rec.wait()
        finally:
            await rec.stop(error=None if rec.outcome else "recording interrupted")
        return rec.path

    return asyncio.run(main())
