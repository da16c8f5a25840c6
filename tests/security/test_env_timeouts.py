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


# -- ShopEnv's last-resort deadline (4 * timeout_s + 30 by default): a call that outlives the env's own timeouts ------
# The env's own timeout is set far above the deadline, so the step really hangs (on a server that never answers) until
# the deadline ends it; that is the case the deadline exists for: something hanging despite timeout_s.

LONG_TIMEOUT_S = 60.0  # the env's own bound, never reached here
DEADLINE_S = 1.5


def test_default_deadline_is_4_timeouts_plus_30():
    with ShopEnv("http://127.0.0.1:9/", backend="http", config=EnvConfig(timeout_s=5)) as env:
        assert env._deadline() == 50
    with pytest.raises(ValueError, match="deadline_s"):
        ShopEnv("http://127.0.0.1:9/", backend="http", deadline_s=0)


@pytest.mark.parametrize("link", ["never", "trickle"])
def test_step_past_the_deadline_is_an_invalid_step_not_an_exception(hostile, link):
    config = EnvConfig(timeout_s=LONG_TIMEOUT_S, max_steps=5)
    with ShopEnv(hostile.url + "/", backend="http", config=config, deadline_s=DEADLINE_S) as env:
        before, _ = env.reset()
        (obs, reward, terminated, truncated, info), took = _click(env, link)
        assert DEADLINE_S <= took < DEADLINE_S + 2, f"Expect the deadline to end the step, actually: {took:.1f}s"
        assert info["valid"] is False and info["error_kind"] == "navigation_timeout", info
        assert "deadline" in info["error"] and obs.last_action_error == info["error"]
        assert (reward, terminated, truncated) == (0.0, False, False)
        # The page is left as it was: same URL, same page, same names.
        assert obs.url == before.url and obs.html == before.html and obs.names == before.names
        assert env.driver.url == before.url
        (obs, _, _, _, info), _ = _click(env, "plain")
        assert info["valid"] and obs.url.endswith("/plain"), f"Expect the session to go on, actually: {info}"


def test_overrun_on_the_last_step_truncates(hostile):
    config = EnvConfig(timeout_s=LONG_TIMEOUT_S, max_steps=1)
    with ShopEnv(hostile.url + "/", backend="http", config=config, deadline_s=DEADLINE_S) as env:
        env.reset()
        obs, _, terminated, truncated, info = env.step({"type": "click", "name": "never"})
        assert info["error_kind"] == "navigation_timeout" and truncated and not terminated
        assert info["outcome"] == "truncated"


def test_reset_past_the_deadline_raises_connection_error(hostile):
    config = EnvConfig(timeout_s=LONG_TIMEOUT_S)
    with ShopEnv(hostile.url + "/never", backend="http", config=config, deadline_s=DEADLINE_S) as env:
        t0 = time.perf_counter()
        with pytest.raises(ConnectionError, match=r"start page .*/never.*deadline of 1\.5s"):
            env.reset()
        assert time.perf_counter() - t0 < DEADLINE_S + 2
        obs, _ = env.reset(options={"url": hostile.url + "/plain"})
        assert obs.url.endswith("/plain"), "Expect the next reset() to work after an overrun"


@pytest.mark.browser
def test_browser_step_past_the_deadline_is_an_invalid_step(hostile):
    config = EnvConfig(timeout_s=LONG_TIMEOUT_S)
    with ShopEnv(hostile.url + "/", backend="browser", config=config, deadline_s=DEADLINE_S) as env:
        before, _ = env.reset()
        (obs, _, terminated, _, info), took = _click(env, "never")
        # The deadline, then reopening the page the step started from (a few seconds at most on loopback).
        assert took < DEADLINE_S + 8, f"Expect the deadline to end the step, actually: {took:.1f}s"
        assert info["valid"] is False and info["error_kind"] == "navigation_timeout", info
        assert obs.url == before.url and obs.names == before.names and not terminated
        (obs, _, _, _, info), _ = _click(env, "plain")
        assert info["valid"] and obs.url.endswith("/plain"), f"Expect the session to go on, actually: {info}"
