"""Findings 3, 4 and 12: every timeout is real on both backends, and a page past the size cap is refused clearly."""

from __future__ import annotations

import time

import pytest

from envs.env import AsyncShopEnv, EnvConfig, ShopEnv

TIMEOUT_S = 2.0


def _click(env, name: str):
    t0 = time.perf_counter()
    out = env.step({"type": "click", "name": name})
    return out, time.perf_counter() - t0


@pytest.mark.parametrize("link", ["never", "trickle"])
def test_http_step_is_bounded_in_total(hostile, link):
    with ShopEnv(hostile.url + "/", backend="http", config=EnvConfig(timeout_s=TIMEOUT_S)) as env:
        env.reset()
        (obs, reward, terminated, truncated, info), took = _click(env, link)
        assert took < TIMEOUT_S + 1.5, f"Expect the step bounded by timeout_s={TIMEOUT_S}, actually: {took:.1f}s"
        assert info["valid"] is False and info["error_kind"] == "navigation_timeout", info
        assert obs.url == hostile.url + "/" and not terminated and not truncated
        (obs, _, _, _, info), _ = _click(env, "plain")
        assert info["valid"] and obs.url.endswith("/plain"), "Expect the session to go on after a timeout"


def test_http_page_past_the_cap_is_refused(hostile):
    with ShopEnv(hostile.url + "/", backend="http", config=EnvConfig(timeout_s=10)) as env:
        env.reset()
        obs, _, _, _, info = env.step({"type": "click", "name": "huge"})
        assert info["error_kind"] == "page_too_large" and "page limit" in info["error"], info
        assert obs.url == hostile.url + "/" and "plain" in obs.names


@pytest.mark.browser
@pytest.mark.parametrize("link", ["never", "trickle"])
def test_browser_step_is_bounded_in_total(hostile, link):
    with ShopEnv(hostile.url + "/", backend="browser", config=EnvConfig(timeout_s=TIMEOUT_S)) as env:
        env.reset()
        (obs, _, terminated, _, info), took = _click(env, link)
        # The action gets timeout_s; reopening the page it started from gets at most browser.ABANDON_TIMEOUT_S more.
        assert took < TIMEOUT_S + 6, f"Expect the step bounded near timeout_s={TIMEOUT_S}, actually: {took:.1f}s"
        assert info["valid"] is False and info["error_kind"] == "navigation_timeout", info
        assert obs.url == hostile.url + "/" and "plain" in obs.names and not terminated
        (obs, _, _, _, info), _ = _click(env, "plain")
        assert info["valid"] and obs.url.endswith("/plain"), f"Expect the session to go on, actually: {info}"


@pytest.mark.browser
def test_browser_reset_on_a_never_answering_page_fails_clearly(hostile):
    with ShopEnv(hostile.url + "/never", backend="browser", config=EnvConfig(timeout_s=TIMEOUT_S)) as env:
        t0 = time.perf_counter()
        with pytest.raises(ConnectionError, match="start page"):
            env.reset()
        assert time.perf_counter() - t0 < TIMEOUT_S + 6
        obs, _ = env.reset(options={"url": hostile.url + "/plain"})
        assert obs.url.endswith("/plain"), "Expect the next reset() to work, actually a broken driver"


async def test_a_big_page_is_simplified_off_the_event_loop(hostile):
    """While one env simplifies a 5 MB page, the loop keeps ticking for the others."""
    import asyncio

    env = AsyncShopEnv(hostile.url + "/", backend="http", config=EnvConfig(timeout_s=10))
    try:
        await env.reset()
        big = "<html><body>" + "<p>word</p>" * 400_000 + "</body></html>"
        env.driver.html = big
        gaps: list[float] = []

        async def ticker():
            last = time.perf_counter()
            while True:
                await asyncio.sleep(0.01)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        task = asyncio.create_task(ticker())
        await env._observe(None, env._info())
        task.cancel()
        assert gaps and max(gaps) < 0.5, f"Expect the loop to keep ticking, actually a {max(gaps or [0]):.2f}s stall"
    finally:
        await env.close()
