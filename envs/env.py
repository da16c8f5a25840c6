"""The shopping environment: `reset()` → `(obs, info)`, `step(action)` → 5-tuple.

One implementation (`AsyncShopEnv`) serves both backends; `ShopEnv` is its synchronous face and a `gymnasium.Env`
(registered as `shop_r1/Store-v0`, see `envs.registration`).

- `terminated`: the shopper bought something (the URL matches `success_url`) or chose `terminate`.
- `truncated`: the step budget ran out.
- `reward`: 1.0 on a purchase, else 0.0. Training computes its own rewards from the actions.
- An invalid action never raises: the page stays as it was, `info["valid"]` is False and `info["error"]` says why.
- `timeout_s` bounds each action in total (connect, headers, body, scripts); one that runs out is an invalid step
  (`navigation_timeout`), the env returns to the page the action started from, and the session goes on.
- `ShopEnv` also holds each call to a last-resort deadline (`deadline_s`, by default `4 * timeout_s + 30`) in case
  something hangs anyway: a `step()` past it is an invalid step (`navigation_timeout`) on the page it started from,
  and a `reset()` past it raises `ConnectionError` with the reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import gymnasium as gym

from .actions import ActionError, Click, Terminate, TypeAndSubmit, parse_action
from .driver import Driver
from .errors import ActionFailed, DriverCrashed
from .observation import ElementRef, ErrorKind, Observation, StepInfo
from .origin import OriginPolicy
from .simplify import MAX_PAGE_CHARS, SimplifiedPage, SimplifyConfig, simplify
from .spaces import ActionSpace, ObservationSpace

Backend = Literal["browser", "http"]
StepResult = tuple[Observation, float, bool, bool, StepInfo]
"""`step()`'s (observation, reward, terminated, truncated, info)."""
T = TypeVar("T")
THREAD_SIMPLIFY_CHARS = 200_000  # pages larger than this are simplified on a worker thread, off the event loop
OVERRUN_RESTORE_S = 20.0  # after a call outlives ShopEnv's deadline: at most timeout_s + this to get back

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EnvConfig:
    """Settings of one env. Defaults suit the local store."""

    max_steps: int = 30
    """Step budget; reaching it ends the episode as truncated."""
    timeout_s: float = 15.0
    """Timeout of every navigation and action."""
    screenshots: bool = False
    """Attach a PNG screenshot to each observation (browser backend only)."""
    success_url: str = r"/order/[^/?#]+"
    """A regex on the URL: reaching a matching page is a purchase (the store's order confirmation)."""
    java_script: bool = True
    """Run the site's scripts (browser backend). The store works either way."""

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise ValueError(f"Expect max_steps >= 1, actually: {self.max_steps}")
        if self.timeout_s <= 0:
            raise ValueError(f"Expect timeout_s > 0, actually: {self.timeout_s}")
        re.compile(self.success_url)


def make_driver(backend: Backend, policy: OriginPolicy, config: EnvConfig, browser: Any = None,
                trace_path: str | Path | None = None) -> Driver:
    """The backend's driver: `HttpDriver` or `BrowserDriver` (`browser`: a shared `BrowserPool`, else its own)."""
    if backend == "http":
        from .http import HttpDriver

        return HttpDriver(policy, timeout_s=config.timeout_s)
    if backend == "browser":
        from .browser import BrowserDriver

        return BrowserDriver(policy, timeout_s=config.timeout_s, browser=browser, java_script=config.java_script,
                             trace_path=trace_path)
    raise ValueError(f"Expect backend 'browser' or 'http', actually: {backend!r}")


def _crash_message(exc: BaseException) -> str:
    first = (str(exc).splitlines() or [""])[0][:200]
    return f"the browser died ({first}); relaunched and restored the last page"


class AsyncShopEnv:
    """A shopper's session on one site, over a real browser (`backend="browser"`) or plain HTTP (`"http"`)."""

    def __init__(
        self,
        url: str,
        backend: Backend = "browser",
        config: EnvConfig | None = None,
        simplify_config: SimplifyConfig | None = None,
        *,
        browser: Any = None,
        trace_path: str | Path | None = None,
        allowed_origins: tuple[str, ...] = (),
    ):
        self.start_url = url
        self.backend = backend
        self.config = config or EnvConfig()
        self.simplify_config = simplify_config
        self.policy = OriginPolicy.for_url(url, *allowed_origins)
        self.driver: Driver = make_driver(backend, self.policy, self.config, browser=browser, trace_path=trace_path)
        self._page: SimplifiedPage | None = None
        self._obs: Observation | None = None
        self._steps = 0
        self._done = False
        self._closed = False
        self._success = re.compile(self.config.success_url)

    @property
    def observation(self) -> Observation | None:
        return self._obs

    async def reset(self, *, seed: int | None = None,
                    options: dict[str, Any] | None = None) -> tuple[Observation, StepInfo]:
        """Start a new visitor (fresh cookies) on the start URL, or on `options["url"]` (same origin only)."""
        if self._closed:
            raise RuntimeError("reset() on a closed env")
        url = (options or {}).get("url", self.start_url)
        await self.driver.start()
        await self.driver.new_session()
        self._steps, self._done = 0, False
        info = self._info()
        try:
            async with asyncio.timeout(self.config.timeout_s):
                await self.driver.goto(url)
        except ActionFailed as exc:
            raise ConnectionError(f"cannot open the start page {url}: {exc.message}") from None
        except TimeoutError:
            await self.driver.abandon()
            raise ConnectionError(f"cannot open the start page {url}: it did not load within "
                                  f"{self.config.timeout_s:g}s") from None
        info["timing_ms"].update(self.driver.last_timing)
        obs = await self._observe(None, info, starting=True, load_s=self._load_s(info))
        return obs, info

    async def step(self, action: Any) -> StepResult:
        """Carry out one action. Never raises for a bad action: see `info["valid"]` and `info["error"]`."""
        if self._obs is None or self._closed:
            raise RuntimeError("call reset() before step()")
        if self._done:
            raise RuntimeError("the episode has ended; call reset()")
        self._steps += 1
        info = self._info()
        t0 = time.perf_counter()
        error: str | None = None
        try:
            act = parse_action(action)
            info["action"] = act.model_dump()
            if isinstance(act, Terminate):
                self._done = True
                info["outcome"] = "terminate"
                info["timing_ms"]["total"] = (time.perf_counter() - t0) * 1000
                return self._obs, 0.0, True, False, info
            try:
                async with asyncio.timeout(self.config.timeout_s):
                    await self._act(act)
            except TimeoutError:
                await self.driver.abandon()
                raise ActionFailed("navigation_timeout",
                                   f"the action did not finish within {self.config.timeout_s:g}s") from None
            info["timing_ms"].update(self.driver.last_timing)
        except ActionError as exc:
            error = self._fail(info, "invalid_action", str(exc))
        except ActionFailed as exc:
            error = self._fail(info, exc.kind, exc.message)
        except DriverCrashed as exc:
            error = self._fail(info, "browser_crashed", _crash_message(exc))
            await self._recover(info)
        obs = await self._observe(error, info, load_s=self._load_s(info))
        # A purchase is a confirmation page the server sent, not a URL a script wrote (history.pushState).
        terminated = bool(self._success.search(obs.url)) and obs.url == self.driver.document_url
        if terminated:
            info["outcome"] = "purchase"
        truncated = not terminated and self._steps >= self.config.max_steps
        if truncated:
            info["outcome"] = "truncated"
        self._done = terminated or truncated
        info["timing_ms"]["total"] = (time.perf_counter() - t0) * 1000
        return obs, 1.0 if terminated else 0.0, terminated, truncated, info

    async def _act(self, act: Click | TypeAndSubmit) -> None:
        assert self._page is not None
        element = self._page.elements.get(act.name)
        if element is None:
            raise ActionFailed("unknown_name", f"no element named {act.name!r} on this page")
        if isinstance(act, Click):
            if element.kind == "input":
                raise ActionFailed("not_clickable", f"{act.name!r} is a text input: use type_and_submit")
            await self.driver.click(element)
        else:
            if element.kind != "input":
                raise ActionFailed("not_input", f"{act.name!r} is not a text input: use click")
            await self.driver.type_and_submit(element, act.text)

    def _fail(self, info: StepInfo, kind: ErrorKind, message: str) -> str:
        info["valid"], info["error"], info["error_kind"] = False, message, kind
        return message

    async def _recover(self, info: StepInfo) -> None:
        await self.driver.recover()
        info["recovered"] = True

    @staticmethod
    def _load_s(info: StepInfo) -> float | None:
        """How long the visitor waited for the page: the driver's action and navigation time, in seconds."""
        timing = info["timing_ms"]
        if "navigation" not in timing:
            return None
        return (timing.get("action", 0.0) + timing["navigation"]) / 1000

    async def _observe(self, error: str | None, info: StepInfo, starting: bool = False,
                       load_s: float | None = None) -> Observation:
        t0 = time.perf_counter()
        try:
            try:
                url, html = await self.driver.snapshot()
            except ActionFailed as exc:  # the page left the origin after it loaded; the driver went back
                if starting:
                    raise ConnectionError(f"cannot open the start page {self.start_url}: {exc.message}") from None
                self._fail(info, exc.kind, exc.message)
                error = error or info["error"]
                url, html = await self.driver.snapshot()
        except DriverCrashed as exc:
            if info.get("recovered"):
                raise
            self._fail(info, "browser_crashed", _crash_message(exc))
            error = error or info["error"]
            await self._recover(info)
            url, html = await self.driver.snapshot()
        t1 = time.perf_counter()
        if len(html) > MAX_PAGE_CHARS:
            self._fail(info, "page_too_large", f"the page has {len(html):,} characters; only the first "
                                               f"{MAX_PAGE_CHARS:,} are shown")
            error = error or info["error"]
            html = html[:MAX_PAGE_CHARS]
        if len(html) > THREAD_SIMPLIFY_CHARS:  # a big page must not stall every other session on this loop
            page = await asyncio.to_thread(simplify, html, self.simplify_config)
        else:
            page = simplify(html, self.simplify_config)
        t2 = time.perf_counter()
        shot = await self.driver.screenshot() if self.config.screenshots else None
        info["timing_ms"].update(observe=(t1 - t0) * 1000, simplify=(t2 - t1) * 1000)
        self._page = page
        self._obs = Observation(
            url=url, title=page.title, html=page.html,
            elements=tuple(ElementRef(e.name, e.kind) for e in page.elements.values()),
            screenshot=shot, last_action_error=error, load_s=load_s,
        )
        return self._obs

    def _info(self) -> StepInfo:
        return {"step": self._steps, "valid": True, "error": None, "error_kind": None, "recovered": False,
                "outcome": None, "backend": self.backend, "timing_ms": {}}

    def _overrun_result(self, message: str, info: StepInfo | None = None) -> StepResult:
        """The step tuple for a step that outlived ShopEnv's deadline: invalid, on the last page the shopper saw."""
        assert self._obs is not None
        info = info or self._info()
        self._fail(info, "navigation_timeout", message)
        if self._obs.last_action_error != message:
            self._obs = dataclasses.replace(self._obs, last_action_error=message)
        truncated = self._steps >= self.config.max_steps
        if truncated:
            info["outcome"] = "truncated"
        self._done = truncated
        return self._obs, 0.0, False, truncated, info

    async def _abandon_overrun(self) -> None:
        """After a call was cancelled past ShopEnv's deadline: give up whatever the driver was doing."""
        try:
            async with asyncio.timeout(OVERRUN_RESTORE_S):
                await self.driver.abandon()
        except Exception as exc:  # a timeout or a dead browser: the next call recovers or fails clearly
            log.warning("could not abandon an overrun call: %r", exc)

    async def _recover_overrun(self, message: str) -> StepResult:
        """After ShopEnv's deadline cancelled a step: back to the page the step started from, observed afresh when
        that works within `timeout_s + OVERRUN_RESTORE_S`, else the last observation as it was."""
        assert self._obs is not None
        obs, page = self._obs, self._page
        info = self._info()
        try:
            async with asyncio.timeout(self.config.timeout_s + OVERRUN_RESTORE_S):
                await self.driver.abandon()
                if self.driver.url != obs.url:  # the action got through and something after it hung
                    await self.driver.goto(obs.url)
                await self._observe(message, info)
        except Exception as exc:  # a timeout, a failed reload, a dead browser: keep the last observation
            log.warning("could not reobserve %s after an overrun step: %r", obs.url, exc)
            self._obs, self._page = obs, page
        return self._overrun_result(message, info)

    async def close(self) -> None:
        """Release the page and, if this env owns it, the browser. Calling it twice is harmless."""
        if self._closed:
            return
        self._closed = True
        await self.driver.close()


class _LoopThread:
    """A private event loop on a daemon thread, so synchronous code can drive the async env."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="shop-r1-env", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
        if not self.thread.is_alive() and not self.loop.is_closed():
            self.loop.close()


class ShopEnv(gym.Env[Observation, Any]):
    """The synchronous env, a `gymnasium.Env`. Same arguments and behaviour as `AsyncShopEnv`.

    - `observation_space`: every `Observation` (`envs.spaces.ObservationSpace`).
    - `action_space`: the paper's three actions as dicts, JSON strings or action models (`envs.spaces.ActionSpace`);
      `env.action_space.sample(mask=obs)` draws an action that is valid on the page `obs`.
    - No render modes: `Observation.html` is what the shopper sees; `EnvConfig(screenshots=True)` attaches a PNG.

    >>> env = ShopEnv("http://127.0.0.1:8000/", backend="http")          # doctest: +SKIP
    >>> obs, info = env.reset()                                           # doctest: +SKIP
    >>> obs, reward, terminated, truncated, info = env.step(
    ...     {"type": "type_and_submit", "name": "search_input", "text": "running shoes"})  # doctest: +SKIP
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, url: str, backend: Backend = "browser", config: EnvConfig | None = None, *,
                 deadline_s: float | None = None, render_mode: str | None = None, **kwargs):
        """`deadline_s`: the last-resort bound of one `reset()` or `step()` (None: `4 * timeout_s + 30`). The env's
        own timeouts fire first; this only catches a call that hangs anyway."""
        if render_mode is not None:
            raise ValueError(f"Expect render_mode None (ShopEnv has no render modes), actually: {render_mode!r}")
        if deadline_s is not None and deadline_s <= 0:
            raise ValueError(f"Expect deadline_s > 0, actually: {deadline_s}")
        self.observation_space = ObservationSpace()
        self.action_space = ActionSpace()
        self.config = config or EnvConfig()
        self.deadline_s = deadline_s
        self._closed = True  # until the inner env exists, close() has nothing to release
        self._loop = _LoopThread()

        async def make() -> AsyncShopEnv:
            return AsyncShopEnv(url, backend, self.config, **kwargs)

        try:
            self._env = self._loop.run(make())
        except BaseException:
            self._loop.stop()
            raise
        self._closed = False

    @property
    def observation(self) -> Observation | None:
        return self._env.observation

    @property
    def driver(self) -> Driver:
        return self._env.driver

    def _deadline(self) -> float:
        if self.deadline_s is not None:
            return self.deadline_s
        return self.config.timeout_s * 4 + 30  # the env's own timeouts fire first; this only guards against hangs

    def _outer_limit(self) -> float:
        """How long the calling thread waits in all: the deadline, the recovery after it, and a margin. Only a loop
        blocked by synchronous code gets this far."""
        return self._deadline() + self.config.timeout_s + OVERRUN_RESTORE_S + 10

    def reset(self, *, seed: int | None = None,  # type: ignore[override]  # info is a StepInfo, a dict
              options: dict[str, Any] | None = None) -> tuple[Observation, StepInfo]:
        """Start a new visitor (fresh cookies) on the start URL, or on `options["url"]` (same origin only); past the
        deadline, a `ConnectionError` with the reason.

        What a seed means here: the site serves every new visitor the same pages, so the first observation does
        not depend on it. `seed` seeds `self.np_random` (Gymnasium's contract) for code that draws from it; the
        env itself draws nothing at random. Who the shopper is and what they want come from the agent, not the env.
        """
        super().reset(seed=seed)
        limit = self._deadline()
        url = (options or {}).get("url", self._env.start_url)
        message = f"cannot open the start page {url}: reset() did not finish within the env's deadline of {limit:g}s"

        async def bounded() -> tuple[Observation, StepInfo]:
            try:
                return await asyncio.wait_for(self._env.reset(seed=seed, options=options), limit)
            except TimeoutError:
                await self._env._abandon_overrun()
                raise ConnectionError(message) from None

        future = asyncio.run_coroutine_threadsafe(bounded(), self._loop.loop)
        try:
            return future.result(self._outer_limit())
        except TimeoutError:
            if future.done():  # the call itself raised a TimeoutError (it should not): still the reset failed
                raise ConnectionError(f"cannot open the start page {url}: {future.exception()!r}") from None
            future.cancel()
            raise ConnectionError(message) from None

    def step(self, action: Any) -> StepResult:  # type: ignore[override]
        """As `AsyncShopEnv.step`. Never raises for a bad action or a hang: a step past the deadline is an invalid
        step (`navigation_timeout`) on the page it started from."""
        limit = self._deadline()
        message = f"the action did not finish within the env's deadline of {limit:g}s"

        async def bounded() -> StepResult:
            try:
                return await asyncio.wait_for(self._env.step(action), limit)
            except TimeoutError:
                return await self._env._recover_overrun(message)

        future = asyncio.run_coroutine_threadsafe(bounded(), self._loop.loop)
        try:
            return future.result(self._outer_limit())
        except TimeoutError:
            if future.done():
                raise
            future.cancel()  # the loop is stuck: answer from the last observation, without it
            log.error("the env's event loop did not answer within %gs", self._outer_limit())
            return self._env._overrun_result(message)

    def close(self) -> None:
        """Release the page, the browser (if this env owns it) and the event loop. Calling it twice is harmless."""
        if self._closed:
            return
        self._closed = True
        try:
            self._loop.run(self._env.close(), 60)
        finally:
            self._loop.stop()
